"""The embedded task catalogue: every Meta-World v3 task, its suites, objects and instruction paraphrases.

The paraphrases were written for this project. One is drawn per episode (deterministically from the
episode seed), travels in every observation and is stored in the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from cortico.registry import UnknownNameError


@dataclass(frozen=True)
class TaskSpec:
    """One manipulation task of the embedded suite.

    Attributes:
        name: cortico's task name, e.g. ``"drawer-open"``.
        metaworld_name: the Meta-World environment name, e.g. ``"drawer-open-v3"``.
        objects: the task-relevant objects, main object first (used by QA generators and the gaze model).
        instructions: natural-language paraphrases of the task, all equivalent.
    """

    name: str
    metaworld_name: str
    objects: tuple[str, ...]
    instructions: tuple[str, ...]


# name -> (objects, paraphrases)
_TASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "assembly": (
        ("ring", "peg"),
        (
            "put the ring onto the peg",
            "slide the round nut down over the peg",
            "pick up the ring and place it on the post",
            "assemble the ring onto the peg",
            "fit the nut over the vertical peg",
        ),
    ),
    "basketball": (
        ("ball", "hoop"),
        (
            "dunk the ball into the hoop",
            "pick up the ball and drop it through the basket",
            "score a basket with the ball",
            "put the ball in the hoop",
            "lift the ball and place it into the net",
        ),
    ),
    "bin-picking": (
        ("cube", "bin"),
        (
            "move the cube from one bin to the other",
            "pick the block out of the left bin and put it in the right bin",
            "transfer the cube into the target bin",
            "take the cube and drop it into the other container",
        ),
    ),
    "box-close": (
        ("lid", "box"),
        (
            "close the box with its lid",
            "put the lid on the box",
            "pick up the lid and cover the box",
            "place the cover onto the box",
        ),
    ),
    "button-press-topdown": (
        ("button",),
        (
            "press the button from above",
            "push the button down",
            "press down on the button from the top",
            "push the top button",
            "hit the button with a downward press",
        ),
    ),
    "button-press-topdown-wall": (
        ("button", "wall"),
        (
            "press the button from above, behind the wall",
            "reach over the wall and push the button down",
            "push down the button that sits behind the low wall",
            "press the top of the button past the wall",
        ),
    ),
    "button-press": (
        ("button",),
        (
            "press the button on the front of the box",
            "push the button forward",
            "push the button in from the front",
            "press the button horizontally",
        ),
    ),
    "button-press-wall": (
        ("button", "wall"),
        (
            "press the button behind the wall",
            "reach past the wall and push the button in",
            "push the button that is hidden behind the small wall",
            "press the button on the far side of the wall",
        ),
    ),
    "coffee-button": (
        ("coffee machine", "button"),
        (
            "press the button on the coffee machine",
            "start the coffee machine",
            "push the coffee maker's button",
            "make coffee by pressing the machine's button",
        ),
    ),
    "coffee-pull": (
        ("mug", "coffee machine"),
        (
            "pull the mug away from the coffee machine",
            "take the cup out from under the coffee maker",
            "slide the mug out of the coffee machine",
            "remove the coffee cup from the machine",
        ),
    ),
    "coffee-push": (
        ("mug", "coffee machine"),
        (
            "push the mug under the coffee machine",
            "slide the cup into the coffee maker",
            "move the mug beneath the spout of the coffee machine",
            "put the coffee cup under the machine",
        ),
    ),
    "dial-turn": (
        ("dial",),
        (
            "turn the dial",
            "rotate the knob",
            "spin the dial around",
            "twist the dial a quarter turn",
        ),
    ),
    "disassemble": (
        ("ring", "peg"),
        (
            "take the ring off the peg",
            "lift the nut off the post",
            "remove the ring from the peg",
            "pull the round nut up and off the peg",
        ),
    ),
    "door-close": (
        ("door",),
        (
            "close the door",
            "shut the door",
            "push the door closed",
            "swing the door shut",
        ),
    ),
    "door-lock": (
        ("door", "lock"),
        (
            "lock the door",
            "turn the door lock down",
            "rotate the lock on the door to lock it",
            "secure the door by turning its lock",
        ),
    ),
    "door-open": (
        ("door",),
        (
            "open the door",
            "pull the door open",
            "swing the door open by its handle",
            "grab the handle and open the door",
            "open up the door",
        ),
    ),
    "door-unlock": (
        ("door", "lock"),
        (
            "unlock the door",
            "turn the door lock up",
            "rotate the lock on the door to unlock it",
            "release the door's lock",
        ),
    ),
    "hand-insert": (
        ("block", "hole"),
        (
            "push the block into the hole",
            "insert the block into the opening in the table",
            "slide the cube into the hole",
            "put the block down the hole",
        ),
    ),
    "drawer-close": (
        ("drawer",),
        (
            "close the drawer",
            "push the drawer shut",
            "slide the drawer closed",
            "shut the drawer",
            "push the drawer back in",
        ),
    ),
    "drawer-open": (
        ("drawer",),
        (
            "open the drawer",
            "pull the drawer open",
            "slide the drawer out",
            "pull out the drawer by its handle",
            "open up the drawer",
        ),
    ),
    "faucet-open": (
        ("faucet",),
        (
            "turn the faucet on",
            "open the tap",
            "rotate the faucet handle to open it",
            "turn on the water",
        ),
    ),
    "faucet-close": (
        ("faucet",),
        (
            "turn the faucet off",
            "close the tap",
            "rotate the faucet handle to close it",
            "turn off the water",
        ),
    ),
    "hammer": (
        ("hammer", "nail"),
        (
            "hammer the nail in",
            "pick up the hammer and drive the nail",
            "use the hammer to hit the nail",
            "knock the nail into the wall with the hammer",
        ),
    ),
    "handle-press-side": (
        ("handle",),
        (
            "press the handle down from the side",
            "push the side handle down",
            "press down the lever from the side",
            "push the handle down, approaching from the side",
        ),
    ),
    "handle-press": (
        ("handle",),
        (
            "press the handle down",
            "push the handle down",
            "press down on the handle",
            "push the lever handle to the bottom",
        ),
    ),
    "handle-pull-side": (
        ("handle",),
        (
            "pull the handle up from the side",
            "lift the side handle",
            "raise the handle, approaching from the side",
            "pull up the lever from the side",
        ),
    ),
    "handle-pull": (
        ("handle",),
        (
            "pull the handle up",
            "lift the handle",
            "raise the handle to the top",
            "pull up on the handle",
        ),
    ),
    "lever-pull": (
        ("lever",),
        (
            "pull the lever up",
            "raise the lever",
            "lift the lever arm",
            "swing the lever upwards",
        ),
    ),
    "peg-insert-side": (
        ("peg", "hole"),
        (
            "insert the peg into the hole from the side",
            "pick up the peg and push it sideways into the hole",
            "put the peg into the side hole",
            "slide the peg into the opening on the side of the box",
        ),
    ),
    "pick-place-wall": (
        ("puck", "wall"),
        (
            "pick up the puck and place it on the target behind the wall",
            "move the puck over the wall to the goal",
            "lift the puck over the wall and put it at the target",
            "carry the puck across the wall to the marked spot",
        ),
    ),
    "pick-out-of-hole": (
        ("peg", "hole"),
        (
            "pick the peg out of the hole",
            "pull the peg out of the hole and lift it to the target",
            "take the peg out of its hole",
            "lift the peg up and out of the hole",
        ),
    ),
    "reach": (
        ("goal",),
        (
            "reach the goal",
            "move the gripper to the target",
            "touch the goal point with the gripper",
            "put the gripper at the marked spot",
            "go to the target position",
        ),
    ),
    "push-back": (
        ("puck",),
        (
            "push the puck back to the goal",
            "slide the puck backwards onto the target",
            "push the puck towards the robot, onto the goal",
            "move the puck back to the marked spot",
        ),
    ),
    "push": (
        ("puck",),
        (
            "push the puck to the goal",
            "slide the puck onto the target",
            "push the puck to the marked spot",
            "shove the puck over to the goal",
            "move the puck to the target by pushing it",
        ),
    ),
    "pick-place": (
        ("puck",),
        (
            "pick up the puck and place it at the goal",
            "move the puck to the target in the air",
            "grasp the puck and put it at the marked spot",
            "lift the puck and carry it to the goal",
            "pick the puck up and place it on the target",
        ),
    ),
    "plate-slide": (
        ("plate", "goal"),
        (
            "slide the plate into the goal",
            "push the plate forward into the net",
            "slide the plate onto the target",
            "shove the plate into the goal area",
        ),
    ),
    "plate-slide-side": (
        ("plate", "goal"),
        (
            "slide the plate sideways into the goal",
            "push the plate to the side, into the net",
            "slide the plate into the goal on the side",
            "move the plate sideways onto the target",
        ),
    ),
    "plate-slide-back": (
        ("plate", "goal"),
        (
            "slide the plate back out of the goal",
            "pull the plate backwards onto the target",
            "drag the plate back towards the robot",
            "slide the plate out of the net, backwards",
        ),
    ),
    "plate-slide-back-side": (
        ("plate", "goal"),
        (
            "slide the plate back out of the goal sideways",
            "pull the plate sideways out of the net",
            "drag the plate to the side, out of the goal",
            "slide the plate out of the side goal",
        ),
    ),
    "peg-unplug-side": (
        ("peg",),
        (
            "unplug the peg from the side",
            "pull the peg out sideways",
            "remove the peg from its socket on the side",
            "pull the plug out of the side of the box",
        ),
    ),
    "soccer": (
        ("ball", "goal"),
        (
            "kick the ball into the goal",
            "push the soccer ball into the net",
            "score a goal with the ball",
            "shoot the ball into the goal",
        ),
    ),
    "stick-push": (
        ("stick", "thermos"),
        (
            "use the stick to push the thermos to the goal",
            "grab the stick and push the bottle with it",
            "push the container forward using the stick",
            "pick up the stick and shove the thermos onto the target",
        ),
    ),
    "stick-pull": (
        ("stick", "thermos"),
        (
            "use the stick to pull the thermos to the goal",
            "grab the stick and pull the bottle with it",
            "pull the container back using the stick",
            "hook the thermos with the stick and drag it to the target",
        ),
    ),
    "push-wall": (
        ("puck", "wall"),
        (
            "push the puck around the wall to the goal",
            "slide the puck past the wall onto the target",
            "push the puck to the goal behind the wall",
            "move the puck around the obstacle to the marked spot",
        ),
    ),
    "reach-wall": (
        ("goal", "wall"),
        (
            "reach over the wall to the goal",
            "move the gripper to the target behind the wall",
            "touch the goal point beyond the wall",
            "go over the wall to the target position",
        ),
    ),
    "shelf-place": (
        ("block", "shelf"),
        (
            "put the block on the shelf",
            "place the cube onto the shelf",
            "pick up the block and set it on the shelf",
            "lift the block and put it on the rack",
        ),
    ),
    "sweep-into": (
        ("block", "hole"),
        (
            "sweep the block into the hole",
            "push the cube into the hole in the table",
            "slide the block into the opening",
            "sweep the cube into the goal hole",
        ),
    ),
    "sweep": (
        ("block",),
        (
            "sweep the block off the table",
            "push the cube over the edge of the table",
            "sweep the block to the side and off the edge",
            "slide the cube off the table",
        ),
    ),
    "window-open": (
        ("window",),
        (
            "open the window",
            "slide the window open",
            "push the window sash open",
            "slide the window pane to open it",
            "open up the window",
        ),
    ),
    "window-close": (
        ("window",),
        (
            "close the window",
            "slide the window shut",
            "push the window sash closed",
            "slide the window pane to close it",
            "shut the window",
        ),
    ),
}

TASKS: dict[str, TaskSpec] = {
    name: TaskSpec(name=name, metaworld_name=f"{name}-v3", objects=objects, instructions=instructions)
    for name, (objects, instructions) in _TASKS.items()
}

# The standard Meta-World suites (the task lists of metaworld's MT10/MT25/MT50 and ML10; a test checks them).
_MT10 = (
    "reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close",
    "button-press-topdown", "peg-insert-side", "window-open", "window-close",
)  # fmt: skip
_MT25_EXTRA = (
    "coffee-pull", "pick-out-of-hole", "disassemble", "pick-place-wall", "basketball", "stick-pull",
    "button-press-wall", "faucet-open", "door-lock", "lever-pull", "sweep-into", "faucet-close",
    "coffee-button", "button-press-topdown-wall", "dial-turn",
)  # fmt: skip
SUITES: dict[str, tuple[str, ...]] = {
    "mt10": _MT10,
    "mt25": _MT10 + _MT25_EXTRA,
    "mt50": tuple(TASKS),
    "ml10-train": (
        "reach", "push", "pick-place", "door-open", "drawer-close", "button-press-topdown",
        "peg-insert-side", "window-open", "sweep", "basketball",
    ),
    "ml10-test": ("drawer-open", "door-close", "shelf-place", "sweep-into", "lever-pull"),
}  # fmt: skip


def get_task(name: str) -> TaskSpec:
    """Return the task called ``name`` (the ``-v3`` suffix is accepted too)."""
    key = name.removesuffix("-v3")
    if key not in TASKS:
        raise UnknownNameError(f"unknown task {name!r}; available tasks: {', '.join(sorted(TASKS))}")
    return TASKS[key]


def suite_tasks(suite: str) -> tuple[str, ...]:
    """Return the task names of a named suite."""
    if suite not in SUITES:
        raise UnknownNameError(f"unknown suite {suite!r}; available suites: {', '.join(SUITES)}")
    return SUITES[suite]


def suites_of(task: str) -> list[str]:
    """Names of the suites that contain ``task``."""
    return [suite for suite, names in SUITES.items() if task in names]


def resolve_tasks(suite: str | None = None, tasks: str | list[str] | None = None) -> list[str]:
    """Turn a ``--suite`` or ``--tasks a,b`` choice into a validated list of task names."""
    if (suite is None) == (tasks is None):
        raise ValueError("give exactly one of a suite or a list of tasks")
    if suite is not None:
        return list(suite_tasks(suite))
    names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)
    names = [n for n in names if n]
    if not names:
        raise ValueError("the task list is empty; give task names separated by commas")
    return [get_task(n).name for n in names]
