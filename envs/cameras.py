"""The camera rig of the embedded simulator: named, calibrated views around the table plus the wrist.

The default rig follows RLBench's names (``front``, ``left_shoulder``, ``right_shoulder``, ``overhead``,
``wrist``). Static views are MuJoCo free cameras placed by look-at point, distance, azimuth and
elevation, so they are always upright (image up = world up). ``wrist`` is Meta-World's egocentric
``gripperPOV`` camera, which rides on the hand. Meta-World's own cameras are available by name too.
"""

from __future__ import annotations

from dataclasses import dataclass

from cortico.registry import UnknownNameError

# Centre of the table region where Meta-World places objects (world frame, metres).
WORKSPACE_CENTRE = (0.0, 0.65, 0.05)


@dataclass(frozen=True)
class CameraSpec:
    """How to place one camera.

    Either ``mujoco_camera`` names a camera defined in the MuJoCo model, or the camera is a free camera
    looking at ``lookat`` from ``distance`` metres, at ``azimuth``/``elevation`` degrees (MuJoCo's
    convention: azimuth 90 looks along +y, elevation -90 looks straight down), with vertical field of
    view ``fovy`` degrees.
    """

    name: str
    mujoco_camera: str | None = None
    lookat: tuple[float, float, float] = WORKSPACE_CENTRE
    distance: float = 1.2
    azimuth: float = 90.0
    elevation: float = -30.0
    fovy: float = 45.0
    description: str = ""

    @property
    def is_free(self) -> bool:
        """True for a free (look-at) camera, False for a camera defined in the model."""
        return self.mujoco_camera is None


CAMERAS: dict[str, CameraSpec] = {
    spec.name: spec
    for spec in (
        CameraSpec(
            "front",
            azimuth=-90.0,
            elevation=-40.0,
            distance=1.2,
            fovy=45.0,
            description="faces the robot from across the table",
        ),
        CameraSpec(
            "left_shoulder",
            azimuth=20.0,
            elevation=-40.0,
            distance=1.15,
            fovy=50.0,
            description="behind the robot's left shoulder, looking down at the table",
        ),
        CameraSpec(
            "right_shoulder",
            azimuth=160.0,
            elevation=-40.0,
            distance=1.15,
            fovy=50.0,
            description="behind the robot's right shoulder, looking down at the table",
        ),
        CameraSpec(
            "overhead",
            azimuth=90.0,
            elevation=-90.0,
            distance=1.25,
            fovy=50.0,
            description="straight down over the table; image top points away from the robot",
        ),
        CameraSpec("wrist", mujoco_camera="gripperPOV", description="egocentric camera on the gripper"),
        # Meta-World's own cameras, for comparison with work that uses them.
        CameraSpec("topview", mujoco_camera="topview", description="Meta-World top view"),
        CameraSpec("corner", mujoco_camera="corner", description="Meta-World corner view"),
        CameraSpec("corner2", mujoco_camera="corner2", description="Meta-World corner2 view"),
        CameraSpec("corner3", mujoco_camera="corner3", description="Meta-World corner3 view"),
        CameraSpec("corner4", mujoco_camera="corner4", description="Meta-World corner4 view"),
        CameraSpec("behind_gripper", mujoco_camera="behindGripper", description="Meta-World behindGripper"),
    )
}

DEFAULT_CAMERAS: tuple[str, ...] = ("front", "left_shoulder", "right_shoulder", "wrist")
WRIST_CAMERA = "wrist"
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 1024


def get_camera(name: str) -> CameraSpec:
    """Return the camera called ``name``; the error lists the known cameras."""
    if name not in CAMERAS:
        raise UnknownNameError(f"unknown camera {name!r}; available cameras: {', '.join(CAMERAS)}")
    return CAMERAS[name]


def resolve_cameras(names: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Validate a camera list (``"front,wrist"`` or a sequence); ``None`` gives the default rig."""
    if names is None:
        return DEFAULT_CAMERAS
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    items = [n for n in items if n]
    if not items:
        raise ValueError(f"the camera list is empty; choose from: {', '.join(CAMERAS)}")
    if len(set(items)) != len(items):
        raise ValueError(f"camera list has duplicates: {items}")
    for name in items:
        get_camera(name)
    return tuple(items)


def validate_image_size(size: int) -> int:
    """Check a square image size in pixels against the supported range."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise ValueError(f"image size must be an integer number of pixels, got {size!r}")
    if not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise ValueError(f"image size {size} is out of range; accepted: {MIN_IMAGE_SIZE}..{MAX_IMAGE_SIZE} pixels")
    return size
