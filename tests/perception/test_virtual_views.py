"""Virtual orthographic views: exact geometry, z-buffering, zoom, and heatmaps back to 3D."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cortico.perception.virtual_views import VIEW_AXES, HeatmapTerm, VirtualViewRenderer, most_likely_point
from cortico.perception.workspace import WorkspaceBounds

BOUNDS = WorkspaceBounds((-0.5, 0.3, -0.02), (0.5, 1.1, 0.55))


def cube_surface(center, half, color, density=0.004):
    """Points on the six faces of an axis-aligned cube, all of one colour."""
    ticks = np.arange(-half, half + 1e-9, density)
    a, b = np.meshgrid(ticks, ticks)
    faces = []
    for axis in range(3):
        for sign in (-1, 1):
            face = np.zeros((a.size, 3))
            others = [i for i in range(3) if i != axis]
            face[:, axis] = sign * half
            face[:, others[0]], face[:, others[1]] = a.ravel(), b.ravel()
            faces.append(face)
    points = np.concatenate(faces) + np.asarray(center)
    return points, np.tile(color, (len(points), 1))


@pytest.fixture(scope="module")
def cube_scene():
    """A red cube, a green cube behind it along y, and a blue cube off to the side."""
    specs = {
        "red": ((0.0, 0.6, 0.1), (1, 0, 0)),
        "green": ((0.0, 0.85, 0.1), (0, 1, 0)),
        "blue": ((0.3, 0.6, 0.3), (0, 0, 1)),
    }
    points, colors = zip(*(cube_surface(center, 0.05, color) for center, color in specs.values()))
    tensors = (
        torch.from_numpy(np.concatenate(points)).float()[None],
        torch.from_numpy(np.concatenate(colors)).float()[None],
    )
    return specs, tensors


def test_cubes_render_where_expected_in_every_view(cube_scene):
    specs, (points, colors) = cube_scene
    renderer = VirtualViewRenderer(tuple(VIEW_AXES), image_size=96, bounds=BOUNDS)
    views = renderer.render(points, colors)
    centers = torch.tensor([c for c, _ in specs.values()]).float()[None]
    uv, _ = renderer.world_to_pixel(centers, views.center, views.half_size)
    for v, view in enumerate(renderer.views):
        for c, name in enumerate(specs):
            col, row = torch.round(uv[0, v, c]).long().tolist()
            rgb = views.rgb[0, v, :, row, col]
            expected = torch.tensor(specs[name][1]).float()
            occluded = (view == "front" and name == "red") or (view == "back" and name == "green")
            if occluded:  # red and green share x and z: seen from +y (front) green hides red, from behind the reverse
                other = torch.tensor(specs["red" if name == "green" else "green"][1]).float()
                assert torch.allclose(rgb, other), f"{view}: the nearer cube should hide {name}"
            else:
                assert torch.allclose(rgb, expected), f"{view}: expected {name} at ({col}, {row}), got {rgb.tolist()}"
    assert views.valid.sum() > 0 and views.features().shape == (1, 5, 8, 96, 96)


def test_world_pixel_round_trip_is_exact_and_rendered_xyz_within_half_a_voxel(cube_scene):
    _, (points, colors) = cube_scene
    renderer = VirtualViewRenderer(("top", "front", "left"), image_size=128, bounds=BOUNDS)
    center, half = renderer.default_cube(1)
    sample = torch.rand(1, 500, 3) * torch.tensor([1.0, 0.8, 0.57]) + torch.tensor([-0.5, 0.3, -0.02])
    uv, depth = renderer.world_to_pixel(sample, center, half)
    back = renderer.pixel_to_world(uv, depth, center, half)
    assert torch.allclose(back, sample[:, None].expand_as(back), atol=1e-5)
    views = renderer.render(points, colors)
    pixel = 2 * BOUNDS.half_size / 128
    uv, depth = renderer.world_to_pixel(points, center, half)
    for v in range(3):
        cols, rows = torch.round(uv[0, v]).long().T
        seen = views.xyz[0, v, :, rows, cols].T  # the point shown where each cube point projects
        shown_depth = views.depth[0, v, 0, rows, cols]
        front = (depth[0, v] - shown_depth).abs() < 1e-3  # points that are the visible surface there
        error = (seen[front] - points[0, front]).norm(dim=-1)
        assert front.sum() > 100 and error.max() < pixel, f"view {v}: xyz channel off by {error.max():.4f} m"


def test_zoomed_view_keeps_its_centre(cube_scene):
    _, (points, colors) = cube_scene
    renderer = VirtualViewRenderer(("top", "front", "left"), image_size=64, bounds=BOUNDS)
    focus = torch.tensor([[0.0, 0.6, 0.15]])  # the middle of the red cube's top face
    center, half = renderer.zoomed_cube(focus, zoom=4)
    assert torch.isclose(half, torch.tensor(BOUNDS.half_size / 4)).all()
    uv, _ = renderer.world_to_pixel(focus[:, None], center, half)
    assert torch.allclose(uv, torch.full_like(uv, 31.5))
    zoomed = renderer.render(points, colors, center=center, half_size=half)
    assert torch.allclose(zoomed.rgb[0, 0, :, 32, 32], torch.tensor([1.0, 0, 0]))  # red fills the top view's centre
    coarse = renderer.render(points, colors)
    assert zoomed.valid[0, 0].mean() > 4 * coarse.valid[0, 0].mean() * 0.2  # the cube now covers much more
    with pytest.raises(ValueError, match="zoom"):
        renderer.zoomed_cube(focus, zoom=0.5)


def gaussian_heatmaps(renderer, points, center, half, sigma=1.5):  # noqa: ANN001, ANN201
    """Normalised Gaussian heatmaps ``(B, V, H, W)`` of ``points (B, 3)`` in every view of a cube."""
    uv, _ = renderer.world_to_pixel(points[:, None], center, half)
    grid = torch.arange(renderer.image_size).float()
    dx = grid.view(1, 1, 1, 1, -1) - uv[..., 0, None, None]
    dy = grid.view(1, 1, 1, -1, 1) - uv[..., 1, None, None]
    maps = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2)).squeeze(2)
    return maps / maps.sum(dim=(-1, -2), keepdim=True)


def test_heatmaps_back_to_world():
    renderer = VirtualViewRenderer(("top", "front", "left"), image_size=64, bounds=BOUNDS)
    center, half = renderer.default_cube(2)
    truth = torch.tensor([[0.1, 0.7, 0.2], [-0.3, 0.45, 0.05]])
    found = renderer.heatmaps_to_world(gaussian_heatmaps(renderer, truth, center, half), center, half)
    pixel = 2 * BOUNDS.half_size / 64
    assert (found - truth).norm(dim=-1).max() < pixel


def test_joint_decoding_weighs_a_coarse_and_a_zoomed_stage():
    renderer = VirtualViewRenderer(("top", "front", "left"), image_size=64, bounds=BOUNDS)
    center, half = renderer.default_cube(1)
    coarse_point, fine_point = torch.tensor([[0.1, 0.7, 0.2]]), torch.tensor([[0.12, 0.69, 0.21]])
    zoom_center, zoom_half = renderer.zoomed_cube(coarse_point, 4.0)
    coarse = HeatmapTerm(renderer, gaussian_heatmaps(renderer, coarse_point, center, half), center, half)

    def decode(weight: float) -> torch.Tensor:
        fine_maps = gaussian_heatmaps(renderer, fine_point, zoom_center, zoom_half)
        fine = HeatmapTerm(renderer, fine_maps, zoom_center, zoom_half, weight)
        return most_likely_point([coarse, fine], zoom_center, zoom_half)

    fine_pixel, coarse_pixel = 2 * zoom_half[0] / 64, 2 * half[0] / 64
    assert (decode(100.0) - fine_point).norm() < fine_pixel, "a heavy fine stage decides"
    assert (decode(0.0) - coarse_point).norm() < coarse_pixel, "a weightless fine stage leaves the coarse point"
    between = decode(1.0)
    assert (between - coarse_point).norm() < (coarse_point - fine_point).norm()
    assert (between - fine_point).norm() < (coarse_point - fine_point).norm(), "equal weights land in between"


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="available: top"):
        VirtualViewRenderer(("top", "diagonal"))
    with pytest.raises(ValueError, match="min < max"):
        WorkspaceBounds((0, 0, 0), (1, 0, 1))
    with pytest.raises(ValueError, match="finite"):
        WorkspaceBounds((0, 0, float("nan")), (1, 1, 1))


def test_points_outside_the_cube_do_not_change_the_views(cube_scene):
    """Far-away points interleaved with the scene (dropped before the z-buffer) leave every pixel as it was."""
    _, (points, colors) = cube_scene
    renderer = VirtualViewRenderer(tuple(VIEW_AXES), image_size=64, bounds=BOUNDS)
    center, half = renderer.zoomed_cube(torch.tensor([[0.0, 0.6, 0.1]]), 4.0)
    far = points + torch.tensor([5.0, 0.0, 0.0])  # outside both cubes
    mixed = torch.stack([points, far], dim=2).reshape(1, -1, 3)  # scene and far points alternate
    mixed_colors = torch.stack([colors, 1 - colors], dim=2).reshape(1, -1, 3)
    for cube in ((None, None), (center, half)):
        expected, got = renderer.render(points, colors, None, *cube), renderer.render(mixed, mixed_colors, None, *cube)
        for name in ("rgb", "depth", "xyz", "valid"):
            assert torch.equal(getattr(expected, name), getattr(got, name)), name
    empty = renderer.render(far, colors)  # nothing in the cube: empty views, not an error
    assert empty.valid.sum() == 0


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_lattice_scores_equal_sampling_every_lattice_point(mode):
    """The per-view n x n sampling broadcast over the third axis equals sampling all n^3 points."""
    generator = torch.Generator().manual_seed(3)
    renderer = VirtualViewRenderer(("top", "front", "left", "right"), image_size=32, bounds=BOUNDS)
    center, half = renderer.zoomed_cube(torch.tensor([[0.0, 0.6, 0.1], [0.1, 0.7, 0.2]]), 2.0)
    log_maps = torch.randn(2, 4, 32, 32, generator=generator)
    axis_values = center[:, :, None] + torch.linspace(-1.2, 1.2, 7) * half.view(-1, 1, 1)  # partly outside
    lattice = torch.stack(torch.meshgrid(*[axis_values[0, i] for i in range(3)], indexing="ij"), -1)
    points = torch.stack([torch.stack(torch.meshgrid(*axis_values[b], indexing="ij"), -1) for b in range(2)])
    assert torch.equal(points[0], lattice)
    uv, _ = renderer.world_to_pixel(points.view(2, -1, 3), center, half)
    grid = torch.stack([(uv[..., 0] + 0.5) / 32 * 2 - 1, (uv[..., 1] + 0.5) / 32 * 2 - 1], dim=-1)
    brute = torch.nn.functional.grid_sample(
        log_maps.reshape(8, 1, 32, 32), grid.reshape(8, 1, -1, 2), mode=mode, padding_mode="border",
        align_corners=False,
    ).view(2, 4, 7, 7, 7).sum(dim=1)  # fmt: skip
    scores = renderer.score_lattice(log_maps, axis_values, center, half, mode)
    torch.testing.assert_close(scores, brute, rtol=0, atol=1e-5)


def test_default_workspace_lets_the_front_view_see_the_table_top(live_observation):
    """The default workspace ends before the wall at the back of Meta-World's table (y ~0.98, up to 12 cm high).

    With that wall inside, the front view (looking from across the table towards the robot) showed the wall
    wherever a puck or peg lay: every object on the table was hidden from it.
    """
    from cortico.perception.point_cloud import fuse_observation

    bounds = WorkspaceBounds()
    cloud = fuse_observation(live_observation, bounds)
    renderer = VirtualViewRenderer(("front",), 64, bounds)
    views = renderer.render(torch.from_numpy(cloud.points)[None], torch.from_numpy(cloud.colors)[None])
    puck = torch.tensor(live_observation.extras["state"][4:7], dtype=torch.float32)
    center, half = renderer.default_cube(1)
    uv, _ = renderer.world_to_pixel(puck.view(1, 1, 3), center, half)
    column, row = (int(v) for v in uv[0, 0, 0].round())
    shown = views.xyz[0, 0, :, row, column]
    assert torch.linalg.norm(shown - puck) < 0.03, f"the front view shows {shown.tolist()} where the puck is"
