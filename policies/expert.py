"""An expert-backed keyframe policy for the embedded simulator (tests, demos, the ROS path).

It runs Meta-World's scripted expert in a private copy of the task with the episode's seed, extracts the
keyframes, and hands them out one by one. It sees the privileged simulator state, so it is a reference for
the rest of the loop (controller, ROS bridge, agent), not a learned policy.
"""

from __future__ import annotations

from cortico.envs.contract import KeyframeAction, Observation
from cortico.envs.expert_demos import record_expert_episode
from cortico.envs.metaworld_backend import MetaWorldEnv


class ExpertKeyframePolicy:
    """Replays the scripted expert's keyframes for one (task, seed) episode.

    Args:
        task: the embedded task.
        seed: the episode seed the environment was reset with.
        require_success: refuse a seed on which the scripted expert fails (else replay its failed attempt).
    """

    def __init__(self, task: str, seed: int, require_success: bool = True) -> None:
        env = MetaWorldEnv(task, cameras=["front"], image_size=32)
        try:
            record = record_expert_episode(env, seed, store="keyframes")
        finally:
            env.close()
        if not record.success and (require_success or not record.keyframes):
            raise RuntimeError(f"the scripted expert fails {task} with seed {seed}; no keyframes to replay")
        self.task, self.seed, self.expert_succeeded = task, seed, bool(record.success)
        self.actions = record.keyframe_actions()
        self._next = 0

    def act(self, observation: Observation | None = None, instruction: str | None = None) -> KeyframeAction:
        """The next expert keyframe (the last one again once all are used)."""
        action = self.actions[min(self._next, len(self.actions) - 1)]
        self._next += 1
        return action

    def reset(self) -> None:
        """Start again from the first keyframe."""
        self._next = 0

    @property
    def remaining(self) -> int:
        """Keyframes not handed out yet."""
        return max(0, len(self.actions) - self._next)


class SimulatorExpert:
    """The scripted expert as a policy for any embedded task: the agent announces each episode's task and seed.

    It is a reference that sees privileged simulator state (see the module doc) and knows every embedded task.
    """

    def __init__(self) -> None:
        self._episode: ExpertKeyframePolicy | None = None

    def begin_episode(self, task: str, seed: int) -> None:
        """Plan the expert's keyframes for the episode the environment was just reset to.

        On the rare seeds where the scripted expert itself fails, its failed attempt is replayed, so the
        command fails the way a policy would.
        """
        self._episode = ExpertKeyframePolicy(task, seed, require_success=False)

    def act(self, observation: Observation | None = None, instruction: str | None = None) -> KeyframeAction:
        """The next expert keyframe of the current episode."""
        if self._episode is None:
            raise RuntimeError("the simulator expert needs begin_episode(task, seed) before act()")
        return self._episode.act(observation, instruction)
