"""Every camera's calibration agrees with the simulator's geometry to the millimetre."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from cortico.envs.camera_geometry import depth_to_points, look_at_extrinsics, pixel_rays, project_points
from cortico.envs.cameras import CAMERAS, DEFAULT_CAMERAS
from cortico.envs.metaworld_backend import MetaWorldEnv

SIZE = 128
VISIBLE_GEOM_GROUPS = np.array([1, 1, 1, 0, 0, 0], dtype=np.uint8)  # what the renderer draws


@pytest.fixture(scope="module")
def reach_scene():
    """Every camera of the catalogue looking at one reach episode (free goal sphere, robot, table)."""
    env = MetaWorldEnv("reach", cameras=list(CAMERAS), image_size=SIZE)
    obs = env.reset(seed=2)
    yield env, obs
    env.close()


def _ray_distance(env: MetaWorldEnv, origin: np.ndarray, direction: np.ndarray) -> float:
    """Distance to the first visible surface along a ray, by MuJoCo's exact ray casting."""
    geom = np.zeros(1, dtype=np.int32)
    distance = mujoco.mj_ray(env.model, env.data, origin, direction, VISIBLE_GEOM_GROUPS, 1, -1, geom)
    if 0 <= distance < 0.03:  # the camera sits inside a robot link (behind_gripper): look past that body
        body = int(env.model.geom_bodyid[geom[0]])
        distance = mujoco.mj_ray(env.model, env.data, origin, direction, VISIBLE_GEOM_GROUPS, 1, body, geom)
    return distance


@pytest.mark.parametrize("camera", list(CAMERAS))
def test_point_cloud_matches_ray_casting(reach_scene, camera):
    env, obs = reach_scene
    frame = obs.cameras[camera]
    frame.validate(camera)
    rays = pixel_rays(frame.intrinsics, SIZE, SIZE)
    origin = frame.extrinsics[:3, 3]
    errors = []
    rng = np.random.default_rng(0)
    for v, u in rng.integers(0, SIZE, size=(150, 2)):
        if frame.depth[v, u] <= 0:
            continue
        direction = frame.extrinsics[:3, :3] @ rays[v, u]
        direction /= np.linalg.norm(direction)
        expected = _ray_distance(env, origin, direction)
        if expected < 0:
            continue
        errors.append(abs(expected - np.linalg.norm(frame.points[v, u] - origin)))
    errors = np.asarray(errors)
    assert len(errors) > 50, f"{camera}: too few valid pixels to check"
    # pixel centres on silhouettes may hit the other surface; the bulk must agree to the millimetre
    assert np.median(errors) < 1e-3, f"{camera}: median disagreement {np.median(errors):.4f} m"
    assert np.mean(errors < 0.005) > 0.95, f"{camera}: only {np.mean(errors < 0.005):.0%} of pixels within 5 mm"


@pytest.mark.parametrize(
    "camera", [c for c in CAMERAS if CAMERAS[c].mujoco_camera not in ("gripperPOV", "behindGripper")]
)
def test_goal_marker_projects_onto_its_pixels(reach_scene, camera):
    """The goal sphere's centre projects onto red goal pixels whose 3D points lie on the sphere (r = 2 cm)."""
    env, obs = reach_scene
    frame = obs.cameras[camera]
    goal = np.asarray(env._env._target_pos)
    (u, v), depth = project_points(goal, frame.intrinsics, frame.extrinsics)
    assert depth > 0, f"{camera}: goal is behind the camera"
    col, row = int(round(u)), int(round(v))
    assert 0 <= col < SIZE and 0 <= row < SIZE, f"{camera}: goal projects outside the image ({u:.1f}, {v:.1f})"
    surface_distance = np.linalg.norm(frame.points[row, col] - goal)
    assert abs(surface_distance - 0.02) < 0.004, f"{camera}: point at the goal pixel is {surface_distance:.4f} m away"
    red, green, blue = frame.rgb[row, col].astype(int)
    assert red > 100 and red > 3 * max(green, blue), (
        f"{camera}: the goal pixel is not the red marker: {(red, green, blue)}"
    )


@pytest.mark.parametrize("camera", [c for c in CAMERAS if CAMERAS[c].mujoco_camera != "gripperPOV"])
def test_images_are_upright(reach_scene, camera):
    """A point above the table appears higher in the image than the table point below it."""
    _, obs = reach_scene
    frame = obs.cameras[camera]
    if camera in ("overhead", "topview"):
        pytest.skip("looks straight down: 'up' is along the optical axis")
    low, high = np.array([0.0, 0.7, 0.0]), np.array([0.0, 0.7, 0.3])
    (_, v_low), _ = project_points(low, frame.intrinsics, frame.extrinsics)
    (_, v_high), _ = project_points(high, frame.intrinsics, frame.extrinsics)
    assert v_high < v_low, f"{camera}: image is upside down (row of the higher point {v_high:.1f} >= {v_low:.1f})"


def test_overhead_image_top_points_away_from_robot(reach_scene):
    _, obs = reach_scene
    frame = obs.cameras["overhead"]
    (_, v_far), _ = project_points(np.array([0.0, 0.9, 0.0]), frame.intrinsics, frame.extrinsics)
    (_, v_near), _ = project_points(np.array([0.0, 0.4, 0.0]), frame.intrinsics, frame.extrinsics)
    assert v_far < v_near


def _subtree(model: mujoco.MjModel, root: int) -> set[int]:
    """Ids of a body and all its descendants."""
    bodies = {root}
    for body in range(model.nbody):
        parent = body
        while parent > 0 and parent not in bodies:
            parent = model.body_parentid[parent]
        if parent in bodies:
            bodies.add(body)
    return bodies


def test_gripper_projects_onto_its_own_surface():
    """Project the gripper's parts: where a part is visible, the cloud at its pixel is that part's surface."""
    size = 256  # small parts need small pixels
    env = MetaWorldEnv("pick-place", cameras=["front", "left_shoulder", "right_shoulder", "overhead"], image_size=size)
    try:
        obs = env.reset(seed=4)
        gripper_bodies = _subtree(env.model, env.model.body("hand").id)
        views_checked = 0
        for camera, frame in obs.cameras.items():
            origin = frame.extrinsics[:3, 3]
            checked = 0
            for body in ("leftpad", "rightpad", "hand", "rightclaw", "leftclaw"):
                target = env.data.body(body).xpos.copy()
                direction = (target - origin) / np.linalg.norm(target - origin)
                geom = np.zeros(1, dtype=np.int32)
                distance = mujoco.mj_ray(env.model, env.data, origin, direction, VISIBLE_GEOM_GROUPS, 1, -1, geom)
                if distance < 0 or env.model.geom_bodyid[geom[0]] not in gripper_bodies:
                    continue  # hidden behind the arm or an object in this view
                hit = origin + distance * direction
                (u, v), _ = project_points(target, frame.intrinsics, frame.extrinsics)
                col, row = int(round(u)), int(round(v))
                # the exact hit lies between pixel centres: compare with the cloud in the 3x3 neighbourhood
                around = frame.points[row - 1 : row + 2, col - 1 : col + 2].reshape(-1, 3)
                error = np.min(np.linalg.norm(around - hit, axis=1))
                assert error < 0.005, f"{camera}/{body}: nearest cloud point {error:.4f} m from the surface"
                checked += 1
            views_checked += checked > 0
        assert views_checked >= 3, "the gripper should be visible in at least three of the four static views"
    finally:
        env.close()


def test_point_clouds_of_different_cameras_agree(reach_scene):
    """Where two views see the same surface, their clouds coincide (projected depth = measured depth)."""
    _, obs = reach_scene
    for source, target in (("front", "left_shoulder"), ("left_shoulder", "right_shoulder"), ("overhead", "front")):
        a, b = obs.cameras[source], obs.cameras[target]
        points = a.points[a.depth > 0]
        points = points[np.linalg.norm(points - [0, 0.65, 0], axis=1) < 0.6]  # the table region
        uv, z = project_points(points, b.intrinsics, b.extrinsics)
        cols, rows = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        inside = (cols >= 0) & (cols < SIZE) & (rows >= 0) & (rows < SIZE) & (z > 0)
        measured = b.depth[rows[inside], cols[inside]]
        difference = np.abs(measured - z[inside])
        visible = difference < 0.05  # the rest is occluded in the target view
        assert visible.sum() > 200, f"{source}->{target}: too little overlap"
        # a pixel spans a few mm on the table at grazing angles: the median stays within that footprint
        assert np.median(difference[visible]) < 0.004, (
            f"{source}->{target}: median {np.median(difference[visible]):.4f}"
        )


def test_depth_to_points_round_trip():
    intrinsics = np.array([[80.0, 0, 31.5], [0, 80.0, 31.5], [0, 0, 1]])
    extrinsics = look_at_extrinsics(np.array([0.5, -0.3, 0.8]), np.array([0.0, 0.6, 0.0]))
    depth = np.random.default_rng(0).uniform(0.5, 2.0, size=(SIZE, SIZE)).astype(np.float32)
    depth[0, 0] = 0.0
    points = depth_to_points(depth, intrinsics, extrinsics)
    assert np.all(points[0, 0] == 0)
    uv, z = project_points(points[1:, 1:], intrinsics, extrinsics)
    rows, cols = np.mgrid[1:SIZE, 1:SIZE]
    np.testing.assert_allclose(uv[..., 0], cols, atol=1e-4)
    np.testing.assert_allclose(uv[..., 1], rows, atol=1e-4)
    np.testing.assert_allclose(z, depth[1:, 1:], atol=1e-5)


def test_default_rig_is_three_static_views_and_the_wrist():
    assert len(DEFAULT_CAMERAS) == 4 and "wrist" in DEFAULT_CAMERAS
    assert all(CAMERAS[c].is_free for c in DEFAULT_CAMERAS if c != "wrist")
