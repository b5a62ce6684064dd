"""Multi-camera RGB-D rendering of a MuJoCo scene, with calibration read from the renderer itself.

One OpenGL context renders every camera of a renderer; a renderer closed in the thread that made it leaves
its context to the thread's next renderer (making a context is most of a renderer's start-up on a software
renderer). Each camera costs one render pass that yields colour and depth together. Intrinsics and
extrinsics are derived from the exact OpenGL camera MuJoCo used for the frame, so geometry cannot drift
from pixels.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from cortico.envs.gl_backend import configure_gl_backend, gl_context_class

configure_gl_backend()

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from cortico.envs.camera_geometry import depth_to_points, pixel_rays  # noqa: E402
from cortico.envs.cameras import CameraSpec, validate_image_size  # noqa: E402
from cortico.envs.contract import CameraFrame  # noqa: E402

# OpenGL contexts are process resources: renderers still open at exit are closed while the GL libraries
# are alive (EGL tears its display down before garbage collection would free them, and complains).
_OPEN_RENDERERS: weakref.WeakSet = weakref.WeakSet()
_GL_CONTEXTS: weakref.WeakSet = weakref.WeakSet()  # every GL context made (idle ones are freed at exit)
_IDLE_GL = threading.local()  # per thread: GL contexts its closed renderers left for its next ones
GL_CONTEXT_SIZE = 64  # the context's own framebuffer, never drawn into: renderers draw into their offscreen buffers


@atexit.register
def _close_open_renderers() -> None:
    for renderer in list(_OPEN_RENDERERS):
        renderer.close()
    for context in list(_GL_CONTEXTS):
        context.free()


def _idle_gl_contexts() -> list:
    if not hasattr(_IDLE_GL, "contexts"):
        _IDLE_GL.contexts = []
    return _IDLE_GL.contexts


def take_gl_context() -> object:
    """An OpenGL context for a new renderer: one a renderer closed in this thread left, else a new one.

    With OSMesa, making a context costs ~0.4 s of the ~0.5 s a renderer takes to start; a thread that
    opens and closes fifty environments one after another (a suite, a benchmark's scenes) pays it once.
    A context serves one open renderer at a time, as if each renderer had made its own.
    """
    idle = _idle_gl_contexts()
    if idle:
        return idle.pop()
    context = gl_context_class()(GL_CONTEXT_SIZE, GL_CONTEXT_SIZE)
    _GL_CONTEXTS.add(context)
    return context


@dataclass(frozen=True)
class RenderOptions:
    """Rendering quality switches; the defaults favour speed (several times faster than MuJoCo's)."""

    shadows: bool = False
    reflections: bool = False
    multisamples: int = 0
    show_sites: bool = True  # goal markers are sites; keep them visible so a vision policy sees the goal


def _rotate_about_view_axis(model: mujoco.MjModel, cam_id: int) -> None:
    """Turn a model camera 180 degrees about its own viewing axis (fixes cameras mounted upside down)."""
    flip = np.array([0.0, 0.0, 0.0, 1.0])  # wxyz: 180 degrees about the camera's local z axis
    result = np.zeros(4)
    mujoco.mju_mulQuat(result, model.cam_quat[cam_id].copy(), flip)
    model.cam_quat[cam_id] = result


class MultiViewRenderer:
    """Render a list of cameras of one MuJoCo model into :class:`CameraFrame` objects.

    Args:
        model: the MuJoCo model (its visual settings are adjusted for offscreen rendering).
        cameras: camera specifications, in output order.
        image_size: square image size in pixels.
        options: quality switches.

    Model cameras whose up vector points down in the world (Meta-World's ``corner*`` cameras) are
    rotated 180 degrees about their viewing axis once, so every image is upright.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        data: mujoco.MjData,
        cameras: list[CameraSpec],
        image_size: int,
        options: RenderOptions | None = None,
    ) -> None:
        self.image_size = validate_image_size(image_size)
        self.options = options or RenderOptions()
        self._model = model
        self._cameras = list(cameras)
        size = self.image_size
        # an offscreen buffer of exactly the image (Meta-World asks for 640 x 480, pixels never read)
        model.vis.global_.offwidth = size
        model.vis.global_.offheight = size
        model.vis.quality.offsamples = self.options.multisamples
        if not self.options.shadows:
            model.vis.quality.shadowsize = 0

        self._gl = take_gl_context()
        self._thread = threading.get_ident()
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100.value)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._scene = mujoco.MjvScene(model, maxgeom=2000)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = self.options.shadows
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = self.options.reflections
        self._option = mujoco.MjvOption()
        if not self.options.show_sites:
            self._option.sitegroup[:] = 0
        self._rect = mujoco.MjrRect(0, 0, size, size)
        self._mjv_cameras = [self._make_mjv_camera(spec) for spec in self._cameras]
        self._rgb = np.empty((size, size, 3), dtype=np.uint8)
        self._depth = np.empty((size, size), dtype=np.float32)
        self._rays: dict[tuple, np.ndarray] = {}
        self._make_upright(data)
        _OPEN_RENDERERS.add(self)

    @property
    def camera_names(self) -> tuple[str, ...]:
        """Names of the rendered cameras, in output order."""
        return tuple(spec.name for spec in self._cameras)

    def _make_mjv_camera(self, spec: CameraSpec) -> mujoco.MjvCamera:
        camera = mujoco.MjvCamera()
        if spec.is_free:
            camera.type = mujoco.mjtCamera.mjCAMERA_FREE
            camera.lookat[:] = spec.lookat
            camera.distance = spec.distance
            camera.azimuth = spec.azimuth
            camera.elevation = spec.elevation
        else:
            cam_id = mujoco.mj_name2id(self._model, mujoco.mjtObj.mjOBJ_CAMERA, spec.mujoco_camera)
            if cam_id < 0:
                raise ValueError(f"camera {spec.name!r}: the model has no camera named {spec.mujoco_camera!r}")
            camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
            camera.fixedcamid = cam_id
        return camera

    def _make_upright(self, data: mujoco.MjData) -> None:
        """Rotate world-fixed model cameras whose image would come out upside down (their up axis points down)."""
        mujoco.mj_camlight(self._model, data)
        flipped = False
        for spec, camera in zip(self._cameras, self._mjv_cameras):
            if spec.is_free or self._model.cam_bodyid[camera.fixedcamid] != 0:
                continue
            up_z = data.cam_xmat[camera.fixedcamid].reshape(3, 3)[2, 1]  # world z of the camera's y (up) axis
            if up_z < 0:
                _rotate_about_view_axis(self._model, camera.fixedcamid)
                flipped = True
        if flipped:
            mujoco.mj_camlight(self._model, data)

    def render(self, data: mujoco.MjData, cameras: Sequence[str] | None = None) -> dict[str, CameraFrame]:
        """Render every camera (or only ``cameras``, in the renderer's order) for the current simulation state."""
        if cameras is not None and (unknown := sorted(set(cameras) - set(self.camera_names))):
            raise ValueError(f"this renderer has no camera {unknown}; it renders {list(self.camera_names)}")
        self._gl.make_current()
        model = self._model
        frames: dict[str, CameraFrame] = {}
        chosen = [(s, c) for s, c in zip(self._cameras, self._mjv_cameras) if cameras is None or s.name in cameras]
        for index, (spec, camera) in enumerate(chosen):
            if spec.is_free:
                model.vis.global_.fovy = spec.fovy
            if index == 0:
                mujoco.mjv_updateScene(
                    model, data, self._option, None, camera, mujoco.mjtCatBit.mjCAT_ALL.value, self._scene
                )
            else:  # the geometry is already in the scene; only the viewpoint changes
                mujoco.mjv_updateCamera(model, data, camera, self._scene)
            mujoco.mjr_render(self._rect, self._scene, self._context)
            mujoco.mjr_readPixels(self._rgb, self._depth, self._rect, self._context)
            frames[spec.name] = self._frame_from_buffers()
        return frames

    def _frame_from_buffers(self) -> CameraFrame:
        gl_camera = mujoco.mjv_averageCamera(self._scene.camera[0], self._scene.camera[1])
        intrinsics, extrinsics = self._calibration(gl_camera)
        near = gl_camera.frustum_near
        far = gl_camera.frustum_far
        buffer = np.flipud(self._depth).astype(np.float64)
        # Reversed depth buffer (1 at the near plane, 0 at the far plane) to metric z-depth.
        depth = (far * near / (buffer * (far - near) + near)).astype(np.float32)
        depth[depth >= far * 0.999] = 0.0
        key = tuple(np.round(intrinsics, 9).ravel())
        if key not in self._rays:
            self._rays[key] = pixel_rays(intrinsics, self.image_size, self.image_size)
        points = depth_to_points(depth, intrinsics, extrinsics, self._rays[key])
        return CameraFrame(
            rgb=np.flipud(self._rgb).copy(),
            depth=depth,
            points=points,
            intrinsics=intrinsics,
            extrinsics=extrinsics,
        )

    def _calibration(self, gl_camera: mujoco.MjvGLCamera) -> tuple[np.ndarray, np.ndarray]:
        """Pinhole intrinsics and camera-to-world extrinsics (OpenCV axes) of an OpenGL camera."""
        size = self.image_size
        near = gl_camera.frustum_near
        half_height = 0.5 * (gl_camera.frustum_top - gl_camera.frustum_bottom)
        mid_height = 0.5 * (gl_camera.frustum_top + gl_camera.frustum_bottom)
        half_width = 0.5 * gl_camera.frustum_width if gl_camera.frustum_width > 0 else half_height
        fx = 0.5 * size * near / half_width
        fy = 0.5 * size * near / half_height
        cx = 0.5 * size - 0.5 - fx * gl_camera.frustum_center / near
        cy = 0.5 * size - 0.5 + fy * mid_height / near
        intrinsics = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

        forward = np.asarray(gl_camera.forward, dtype=np.float64)
        up = np.asarray(gl_camera.up, dtype=np.float64)
        right = np.cross(forward, up)
        extrinsics = np.eye(4)
        extrinsics[:3, :3] = np.stack([right, -up, forward], axis=1)
        extrinsics[:3, 3] = gl_camera.pos
        return intrinsics, extrinsics

    def close(self) -> None:
        """Free the MuJoCo context (buffers, textures) and leave the GL context to this thread's next renderer.

        The renderer's GL context is made current first: freeing an ``MjrContext`` deletes GL objects in
        whatever context is current, which would otherwise be another renderer's. Closed from another
        thread (garbage collection), the GL context is freed instead: it is now current there.
        """
        if self._gl is None:
            return
        self._gl.make_current()
        if self._context is not None:
            self._context.free()
            self._context = None
        if threading.get_ident() == self._thread:
            _idle_gl_contexts().append(self._gl)
        else:
            self._gl.free()
        self._gl = None

    def __del__(self) -> None:  # best effort; GL contexts are process resources
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn down mujoco already
            pass
