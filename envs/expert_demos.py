"""Scripted expert demonstrations on the embedded suite, recorded in the contract's terms.

The expert (Meta-World's scripted policy for the task) drives the simulator from the privileged state;
every step's proprioception and physics state are recorded; keyframes are extracted with the PerAct/RVT
heuristic; images are rendered afterwards, only for successful episodes and only for the stored steps
(all steps, or the first step plus the keyframes), by restoring the recorded physics state.
"""

from __future__ import annotations

import warnings

import mujoco
import numpy as np
from metaworld.policies import ENV_POLICY_MAP

from cortico.envs.episode import CameraSequence, EpisodeRecord
from cortico.envs.keyframes import KeyframeConfig, extract_keyframes
from cortico.envs.metaworld_backend import MetaWorldEnv

STORE_MODES = ("all", "keyframes")
# Meta-World's experts never pause, so path corners are added to the PerAct/RVT heuristic.
EXPERT_KEYFRAMES = KeyframeConfig(waypoint_tolerance=0.02)
_PHYSICS_STATE = mujoco.mjtState.mjSTATE_INTEGRATION


# Meta-World's reach experts drive the hand to the goal, but these tasks succeed when the tool centre point
# (between the fingertips, ~4.5 cm below the hand) is within 5 cm of it, so their demos ended on the border of
# the success region (4.0-4.8 cm; BENCHMARKS.md, rollout traces). Their expert is shown the goal moved by the
# hand-to-TCP offset, which brings the tool centre point, not the hand, to the goal.
TCP_GOAL_TASKS = frozenset({"reach-v3", "reach-wall-v3"})
# Bumped when the experts' demos change; a dataset records it, so a collection never mixes two revisions.
# 2: the reach experts aim the tool centre point; 3: the first observation after reset is settled; 4: the gripper's
# contacts are recorded and label the keyframes' ignore_collision; 5: a keyframe is labelled ignore_collision
# when the move there touched something for at least 0.1 s (a touch that only ends a move no longer counts).
EXPERT_REVISION = 5


class ScriptedExpert:
    """Meta-World's scripted policy for a task, reading the privileged state vector."""

    def __init__(self, metaworld_name: str) -> None:
        self._policy = ENV_POLICY_MAP[metaworld_name]()
        self._aims_tcp = metaworld_name in TCP_GOAL_TASKS

    def act(self, state: np.ndarray, tcp: np.ndarray | None = None) -> np.ndarray:
        """The expert's ``[dx, dy, dz, grab]`` action for ``state``.

        ``tcp``, the tool centre point (``env.tcp_position``), is needed by the tasks of :data:`TCP_GOAL_TASKS`.
        """
        if self._aims_tcp:
            if tcp is None:
                raise ValueError("this task's expert aims the tool centre point at the goal: pass tcp=env.tcp_position")
            state = np.array(state, dtype=np.float64)
            state[-3:] += state[:3] - np.asarray(tcp, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the experts warn about their own gains
            return np.asarray(self._policy.get_action(state), dtype=np.float64)


def record_expert_episode(
    env: MetaWorldEnv,
    seed: int,
    *,
    store: str = "all",
    keyframe_config: KeyframeConfig | None = None,
    instruction: str | None = None,
    steps_after_success: int = 10,
) -> EpisodeRecord:
    """Run the scripted expert for one seeded episode and record it.

    Args:
        env: the task's environment (its cameras and image size define the recorded images).
        seed: episode seed (object and goal placement, instruction choice).
        store: ``"all"`` renders every step; ``"keyframes"`` renders the first step and the keyframes.
        keyframe_config: keyframe heuristic settings.
        instruction: override the drawn instruction.
        steps_after_success: the expert keeps going this many steps after the task first succeeds, so
            the last keyframe lies well inside the success region rather than on its border.

    Returns:
        The record; ``record.success`` is False when the expert failed (no images are rendered then; the
        keyframes of the failed attempt are still extracted).
    """
    if store not in STORE_MODES:
        raise ValueError(f"unknown store mode {store!r}; accepted: {', '.join(STORE_MODES)}")
    env.reset(seed=seed, instruction=instruction)
    expert = ScriptedExpert(env.spec.metaworld_name)
    state = env.state
    proprio = [env.proprioception()]
    states = [state]
    physics = [_physics_state(env)]
    contact = [env.hand_in_contact()]
    actions = []
    remaining = steps_after_success
    while remaining > 0 and not env.episode_over:
        remaining -= env.success
        action = expert.act(state, env.tcp_position)
        state = env.step_delta(action)
        actions.append(action)
        proprio.append(env.proprioception())
        states.append(state)
        physics.append(_physics_state(env))
        contact.append(env.hand_in_contact())

    record = EpisodeRecord(
        task=env.task,
        instruction=env.instruction,
        seed=int(seed),
        success=env.success,
        control_dt=env.control_dt,
        gripper_pose=np.stack([p["gripper_pose"] for p in proprio]),
        gripper_open=np.array([p["gripper_open"] for p in proprio], dtype=np.float32),
        joint_positions=np.stack([p["joint_positions"] for p in proprio]),
        joint_velocities=np.stack([p["joint_velocities"] for p in proprio]),
        gripper_joint_positions=np.stack([p["gripper_joint_positions"] for p in proprio]),
        time=np.array([p["time"] for p in proprio]),
        state=np.stack(states),
        actions=np.asarray(actions, dtype=np.float32).reshape(-1, 4),
        keyframes=[],
        frame_steps=np.zeros(0, dtype=np.int64),
        hand_contact=np.array(contact, dtype=bool),
    )
    record.keyframes = extract_keyframes(  # of a failed attempt too (the expert policy can replay it)
        record.gripper_open,
        record.joint_velocities,
        keyframe_config or EXPERT_KEYFRAMES,
        positions=record.gripper_pose[:, :3],
        gripper_joint_positions=record.gripper_joint_positions,
    )
    if not record.success:
        return record
    if store == "all":
        record.frame_steps = np.arange(record.num_steps)
    else:
        record.frame_steps = np.array(sorted({0, *record.keyframes}), dtype=np.int64)
    record.cameras = render_steps(env, [physics[i] for i in record.frame_steps])
    return record


def _physics_state(env: MetaWorldEnv) -> np.ndarray:
    size = mujoco.mj_stateSize(env.model, _PHYSICS_STATE)
    buffer = np.empty(size)
    mujoco.mj_getState(env.model, env.data, buffer, _PHYSICS_STATE)
    return buffer


def render_steps(env: MetaWorldEnv, physics_states: list[np.ndarray]) -> dict[str, CameraSequence]:
    """Render the env's cameras at each recorded physics state (the env is left at the last one)."""
    frames: dict[str, list] = {name: [] for name in env.camera_names}
    for buffer in physics_states:
        mujoco.mj_setState(env.model, env.data, buffer, _PHYSICS_STATE)
        mujoco.mj_forward(env.model, env.data)
        for name, frame in env.observe().cameras.items():
            frames[name].append(frame)
    return {
        name: CameraSequence(
            rgb=np.stack([f.rgb for f in seq]),
            depth=np.stack([f.depth for f in seq]),
            intrinsics=np.stack([f.intrinsics for f in seq]),
            extrinsics=np.stack([f.extrinsics for f in seq]),
        )
        for name, seq in frames.items()
    }
