"""The embedded default backend: a Meta-World v3 task with calibrated multi-view RGB-D cameras.

Wraps one Meta-World environment (MuJoCo), renders the camera rig, exposes the contract's observation,
and executes :class:`KeyframeAction` targets through Meta-World's own delta-position actions.
Per-episode variation (object and goal positions) comes from the episode seed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from cortico.envs.gl_backend import configure_gl_backend

configure_gl_backend()

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from metaworld.env_dict import ALL_V3_ENVIRONMENTS  # noqa: E402

from cortico.envs.cameras import get_camera, resolve_cameras  # noqa: E402
from cortico.envs.contract import KeyframeAction, KeyframeOutcome, Observation  # noqa: E402
from cortico.envs.keyframe_servo import ServoConfig, servo_to_keyframe  # noqa: E402
from cortico.envs.mujoco_renderer import MultiViewRenderer, RenderOptions  # noqa: E402
from cortico.envs.task_catalog import get_task  # noqa: E402

logger = logging.getLogger(__name__)

ARM_JOINTS = tuple(f"right_j{i}" for i in range(7))
FINGER_JOINTS = ("r_close", "l_close")
# Meta-World never terminates on its own; this is far beyond any expert episode (<= 500 steps).
_METAWORLD_PATH_LIMIT = 100_000


_CONTACT_DISTANCE = 1e-3  # metres: MuJoCo contacts closer than this count as touching


def _subtree_mask(model: mujoco.MjModel, root: int) -> np.ndarray:
    """``(nbody,)`` True for ``root`` and the bodies below it."""
    mask = np.zeros(model.nbody, dtype=bool)
    mask[root] = True
    for body in range(root + 1, model.nbody):  # MuJoCo numbers a parent before its children
        mask[body] = mask[model.body_parentid[body]]
    return mask


def _wxyz_to_xyzw(quat: np.ndarray) -> np.ndarray:
    return np.array([quat[1], quat[2], quat[3], quat[0]], dtype=np.float64)


class MetaWorldEnv:
    """One Meta-World task behind the cortico observation/action contract.

    Args:
        task: task name (see ``cortico envs list``), e.g. ``"drawer-open"``.
        cameras: camera names (default: front, left_shoulder, right_shoulder, wrist).
        image_size: square image size in pixels.
        render_options: rendering quality switches.
        max_episode_steps: low-level control steps after which an episode is over.
        servo: keyframe controller settings.
    """

    def __init__(
        self,
        task: str,
        *,
        cameras: str | list[str] | tuple[str, ...] | None = None,
        image_size: int = 128,
        render_options: RenderOptions | None = None,
        max_episode_steps: int = 500,
        servo: ServoConfig | None = None,
    ) -> None:
        self.spec = get_task(task)
        self.task = self.spec.name
        self.camera_names = resolve_cameras(cameras)
        self.max_episode_steps = max_episode_steps
        self.servo = servo or ServoConfig()

        env = ALL_V3_ENVIRONMENTS[self.spec.metaworld_name]()
        # Full (goal-observable) state, fresh random object/goal placement per seed, as MT benchmarks do.
        env._partially_observable = False
        if "sawyer_observation_space" in env.__dict__:
            del env.sawyer_observation_space
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env._set_task_called = True
        env.max_path_length = _METAWORLD_PATH_LIMIT
        self._env = env
        self.model: mujoco.MjModel = env.model
        self.data: mujoco.MjData = env.data
        self.control_dt = float(self.model.opt.timestep * env.frame_skip)

        model = self.model
        self._arm_qpos = np.array([model.jnt_qposadr[model.joint(name).id] for name in ARM_JOINTS])
        self._arm_dof = np.array([model.jnt_dofadr[model.joint(name).id] for name in ARM_JOINTS])
        self._finger_qpos = np.array([model.jnt_qposadr[model.joint(name).id] for name in FINGER_JOINTS])
        self._hand_body = model.body("hand").id
        self._mocap_id = int(model.body_mocapid[model.body("mocap").id])
        # Bodies of the robot (the arm's subtree and the mocap) and of its gripper, for hand_in_contact().
        self._robot_bodies = _subtree_mask(model, model.body("base").id) | (model.body_mocapid >= 0)
        self._gripper_bodies = _subtree_mask(model, model.body("right_hand").id)

        self._renderer = MultiViewRenderer(
            model, self.data, [get_camera(name) for name in self.camera_names], image_size, render_options
        )
        self.image_size = image_size
        self._rng = np.random.default_rng()
        self._steps = 0
        self._gripper_open = True
        self._success = False
        self._instruction = self.spec.instructions[0]
        self._seed: int | None = None
        # One reset so that every task attribute (goal, target sites) exists before the first episode.
        self._env.seed(0)
        self._last_state, _ = self._env.reset()
        self._tcp_offset = self.tcp_position - self.data.mocap_pos[self._mocap_id]
        self._hide_helper_sites()

    # ----------------------------------------------------------------------------------------- episode
    def reset(self, *, seed: int | None = None, instruction: str | None = None) -> Observation:
        """Place objects and goal for ``seed``, draw an instruction (unless given) and observe."""
        if seed is None:
            seed = int(self._rng.integers(0, 2**31 - 1))
        if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
            raise ValueError("instruction must be a non-empty string (or None to draw one of the task's)")
        self._seed = int(seed)
        self._env.seed(self._seed)
        self._env.reset()
        self._last_state = self._settled_state()
        rng = np.random.default_rng([self._seed, 1])
        self._instruction = instruction or str(rng.choice(self.spec.instructions))
        self._steps = 0
        self._gripper_open = True
        self._success = False
        self._tcp_offset = self.tcp_position - self.data.mocap_pos[self._mocap_id]
        return self.observe()

    def _settled_state(self) -> np.ndarray:
        """The state vector after the kinematics have caught up with reset's placement of the objects.

        Several tasks (window, drawer, dial, faucet, lever) move bodies in ``reset_model`` without a
        ``mj_forward``, so the state Meta-World returns and the first render showed the object where the
        previous episode had left it (up to 20 cm off). The physics are unchanged: a step recomputes the same.
        """
        mujoco.mj_forward(self.model, self.data)
        current = self._env._get_curr_obs_combined_no_goal()
        self._env._prev_obs = current.copy()  # reset's convention: the previous frame repeats the current one
        return np.asarray(self._env._get_obs(), dtype=np.float64)

    @property
    def seed(self) -> int | None:
        """Seed of the current episode."""
        return self._seed

    @property
    def instruction(self) -> str:
        """Instruction of the current episode."""
        return self._instruction

    @property
    def steps(self) -> int:
        """Low-level control steps taken in this episode."""
        return self._steps

    @property
    def success(self) -> bool:
        """Whether the task's success condition held after the last step."""
        return self._success

    @property
    def episode_over(self) -> bool:
        """True once the episode's step budget is spent."""
        return self._steps >= self.max_episode_steps

    # ------------------------------------------------------------------------------------ proprioception
    @property
    def state(self) -> np.ndarray:
        """Meta-World's 39-number state vector (privileged: scripted experts read it, policies must not)."""
        return self._last_state.copy()

    @property
    def tcp_position(self) -> np.ndarray:
        """World position of the tool centre point (midway between the fingertips)."""
        return np.asarray(self._env.tcp_center, dtype=np.float64).copy()

    @property
    def reachable_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned box the tool centre point can be commanded to (Meta-World's mocap limits)."""
        return self._env.mocap_low + self._tcp_offset, self._env.mocap_high + self._tcp_offset

    @property
    def tcp_offset(self) -> np.ndarray:
        """Offset from the mocap body to the tool centre point (measured at reset; the hand never rotates)."""
        return self._tcp_offset.copy()

    @property
    def action_scale(self) -> float:
        """Metres the mocap moves per unit of delta action and step."""
        return float(self._env.action_scale)

    def gripper_pose(self) -> np.ndarray:
        """``(7,)`` tool-centre position + hand orientation quaternion (xyzw)."""
        quat = _wxyz_to_xyzw(self.data.xquat[self._hand_body])
        return np.concatenate([self.tcp_position, quat])

    def proprioception(self) -> dict[str, np.ndarray | float]:
        """The non-visual part of an observation (cheap: no rendering)."""
        return {
            "gripper_pose": self.gripper_pose(),
            "gripper_open": 1.0 if self._gripper_open else 0.0,
            "joint_positions": self.data.qpos[self._arm_qpos].copy(),
            "joint_velocities": self.data.qvel[self._arm_dof].copy(),
            "gripper_joint_positions": self.data.qpos[self._finger_qpos].copy(),
            "time": self._steps * self.control_dt,
        }

    def hand_in_contact(self) -> bool:
        """Whether the gripper touches anything that is not the robot: an object, a handle, the table.

        Demonstrations record it per step; a keyframe reached through contact is labelled ``ignore_collision``.
        """
        count = self.data.ncon
        if count == 0:
            return False
        contacts = self.data.contact
        first = self.model.geom_bodyid[contacts.geom1[:count]]
        second = self.model.geom_bodyid[contacts.geom2[:count]]
        grip, robot = self._gripper_bodies, self._robot_bodies
        between = (grip[first] & ~robot[second]) | (grip[second] & ~robot[first])
        return bool(np.any(between & (contacts.dist[:count] <= _CONTACT_DISTANCE)))

    # ------------------------------------------------------------------------------------------ vision
    def observe(self, cameras: Sequence[str] | None = None) -> Observation:
        """Render every camera (or only ``cameras``: cheaper for a per-step memory) into the contract's observation."""
        self._place_target_markers()
        cameras = self._renderer.render(self.data, cameras)
        proprio = self.proprioception()
        return Observation(
            cameras=cameras,
            gripper_pose=proprio["gripper_pose"],
            gripper_open=proprio["gripper_open"],
            joint_positions=proprio["joint_positions"],
            joint_velocities=proprio["joint_velocities"],
            time=proprio["time"],
            instruction=self._instruction,
            task=self.task,
            gripper_joint_positions=proprio["gripper_joint_positions"],
            extras={"state": self.state},
        )

    def _place_target_markers(self) -> None:
        # Meta-World writes goal positions into data.site_xpos, which every mj_forward resets to the model's
        # default; put them back right before rendering so the markers show the true goal.
        for name, position in self._env._target_site_config:
            self.data.site(name).xpos = np.asarray(position)[:3]

    def _hide_helper_sites(self) -> None:
        # Only goal markers stay visible; Meta-World's helper sites (on the arm, fingertips, objects) are
        # debugging aids that a vision policy should not rely on.
        targets = {name for name, _ in self._env._target_site_config}
        for site_id in range(self.model.nsite):
            if self.model.site(site_id).name not in targets:
                self.model.site_rgba[site_id, 3] = 0.0

    # ----------------------------------------------------------------------------------------- control
    def step_delta(self, action: np.ndarray) -> np.ndarray:
        """One low-level Meta-World step: ``[dx, dy, dz, grab]`` in [-1, 1]; grab > 0 closes the gripper.

        Returns the new 39-number state vector.
        """
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (4,) or not np.isfinite(action).all():
            raise ValueError(f"a Meta-World action is 4 finite numbers [dx, dy, dz, grab], got {action!r}")
        if self.episode_over:
            raise RuntimeError(f"the episode is over ({self.max_episode_steps} steps); call reset()")
        state, _, _, _, info = self._env.step(np.clip(action, -1.0, 1.0).astype(np.float32))
        self._last_state = state
        self._steps += 1
        self._gripper_open = bool(action[3] <= 0.0)
        self._success = self._success or bool(info.get("success", 0.0))
        return state

    def mocap_position(self) -> np.ndarray:
        """Current position of the mocap body that drags the hand."""
        return self.data.mocap_pos[self._mocap_id].copy()

    def execute(self, action: KeyframeAction, on_step: Callable[[MetaWorldEnv], None] | None = None) -> KeyframeOutcome:
        """Move the tool centre point to the keyframe, then set the gripper (RLBench's MoveArmThenGripper).

        Meta-World's Sawyer keeps a fixed gripper orientation, so the quaternion is not executed. Moves are
        straight lines; one that may not ignore collisions and is blocked goes over the obstacle once
        (:func:`~cortico.envs.keyframe_servo.servo_to_keyframe`). ``on_step`` is called after every
        low-level step (e.g. to record video).
        """
        result = servo_to_keyframe(self, action, self.servo, on_step)
        return KeyframeOutcome(
            observation=self.observe(),
            success=self._success,
            reached=result.reached,
            steps=result.steps,
            position_error=result.position_error,
            message=result.message,
        )

    def close(self) -> None:
        """Free the renderer and the simulator."""
        self._renderer.close()
        self._env.close()

    def __enter__(self) -> MetaWorldEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
