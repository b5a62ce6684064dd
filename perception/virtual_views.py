"""Virtual orthographic views of a coloured point cloud (RVT), with exact maps between views and the world.

Each view looks at a cube (centre ``c``, half-size ``s``) along one axis. A world point ``p`` lands on
pixel ``u = ((p - c) . right + s) / (2 s) * W - 0.5`` (and likewise ``v`` with the view's down axis), at
depth ``(p - c) . forward + s`` metres from the cube's near face. Pixel centres sit at integers, as in the
camera contract. Rendering is a z-buffer in pure torch (``scatter_reduce``), batched over samples and
views. A zoomed second-stage view (RVT-2's coarse-to-fine) is the same rendering with a smaller cube
centred on a point of interest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cortico.perception.workspace import WorkspaceBounds

# view name -> (right, down, forward) world axes; each triple is right-handed (right x down = forward)
VIEW_AXES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "top": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),  # looking down; image top points away from the robot (+y)
    "front": ((-1, 0, 0), (0, 0, -1), (0, -1, 0)),  # from across the table, facing the robot
    "back": ((1, 0, 0), (0, 0, -1), (0, 1, 0)),  # from behind the robot
    "left": ((0, -1, 0), (0, 0, -1), (1, 0, 0)),  # from the robot's left (-x), looking along +x
    "right": ((0, 1, 0), (0, 0, -1), (-1, 0, 0)),  # from the robot's right (+x), looking along -x
}
DEFAULT_VIEWS = ("top", "front", "left")
_DEPTH_QUANTUM = 1e-5  # metres: z-buffer depth resolution
_NO_POINT = torch.iinfo(torch.long).max
CHANNELS = ("r", "g", "b", "depth", "x", "y", "z", "valid")


@dataclass(frozen=True)
class VirtualViews:
    """Rendered views of a batch.

    Attributes:
        rgb: ``(B, V, 3, H, W)`` colours in [0, 1] (0 where empty).
        depth: ``(B, V, 1, H, W)`` metres from the cube's near face (0 where empty).
        xyz: ``(B, V, 3, H, W)`` world coordinates of the visible point (0 where empty).
        valid: ``(B, V, 1, H, W)`` 1 where a point was rendered.
        center: ``(B, 3)`` cube centres; half_size: ``(B,)`` cube half-sizes.
    """

    rgb: torch.Tensor
    depth: torch.Tensor
    xyz: torch.Tensor
    valid: torch.Tensor
    center: torch.Tensor
    half_size: torch.Tensor

    def features(self) -> torch.Tensor:
        """Network input ``(B, V, 8, H, W)``: RGB, depth and xyz normalised to the cube, validity."""
        s = self.half_size.view(-1, 1, 1, 1, 1)
        depth = self.depth / (2 * s)
        xyz = (self.xyz - self.center.view(-1, 1, 3, 1, 1)) / s * self.valid
        return torch.cat([self.rgb, depth, xyz, self.valid], dim=2)


class VirtualViewRenderer:
    """Render coloured clouds onto virtual orthographic views and map between pixels and the world.

    Args:
        views: view names from :data:`VIEW_AXES` (at least one).
        image_size: square view size in pixels.
        bounds: the workspace; the default cube is the smallest cube holding it.
    """

    def __init__(
        self,
        views: Sequence[str] = DEFAULT_VIEWS,
        image_size: int = 128,
        bounds: WorkspaceBounds | None = None,
    ) -> None:
        unknown = [v for v in views if v not in VIEW_AXES]
        if unknown or not views:
            raise ValueError(f"unknown virtual views {unknown or '(none given)'}; available: {', '.join(VIEW_AXES)}")
        if image_size < 8:
            raise ValueError(f"virtual view size must be >= 8 pixels, got {image_size}")
        self.views = tuple(views)
        self.image_size = int(image_size)
        self.bounds = bounds or WorkspaceBounds()
        self._axes = torch.tensor([VIEW_AXES[v] for v in self.views], dtype=torch.float32)  # (V, 3, 3)
        if not bool(((self._axes != 0).sum(-1) == 1).all()):  # rendering and decoding rely on it (see _within_cube)
            raise ValueError("every virtual view's axes must be world axes up to sign")
        # the world axes (0 x, 1 y, 2 z) along each view's columns and rows
        self._plane_axes = tuple((int(a[0].abs().argmax()), int(a[1].abs().argmax())) for a in self._axes)

    # ------------------------------------------------------------------------------------------ geometry
    def default_cube(self, batch: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """The workspace cube for every sample: ``(center (B, 3), half_size (B,))``."""
        center = torch.as_tensor(self.bounds.center, dtype=torch.float32, device=device).expand(batch, 3)
        half = torch.full((batch,), self.bounds.half_size, dtype=torch.float32, device=device)
        return center.clone(), half

    def zoomed_cube(self, focus: torch.Tensor, zoom: float) -> tuple[torch.Tensor, torch.Tensor]:
        """A cube ``zoom`` times smaller than the workspace cube, centred on ``focus`` ``(B, 3)``."""
        if zoom < 1:
            raise ValueError(f"zoom must be >= 1, got {zoom}")
        half = torch.full((focus.shape[0],), self.bounds.half_size / zoom, dtype=torch.float32, device=focus.device)
        return focus.float(), half

    def world_to_pixel(
        self, points: torch.Tensor, center: torch.Tensor, half_size: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Project world points ``(B, N, 3)`` into every view.

        Returns:
            ``uv (B, V, N, 2)`` pixel coordinates (column, row) and ``depth (B, V, N)`` from the near face.
        """
        if points.dim() != 3 or points.shape[-1] != 3:
            raise ValueError(f"points must be (B, N, 3), got {tuple(points.shape)}")
        axes = self._axes.to(points.device)
        local = points.float() - center[:, None, :]  # (B, N, 3)
        batch, count, _ = local.shape
        projection = axes.reshape(-1, 3).T.contiguous()  # (3, V*3): right, down, forward of every view
        coords = (local.reshape(-1, 3) @ projection).view(batch, count, -1, 3).transpose(1, 2).contiguous()
        s = half_size.view(-1, 1, 1)
        scale = self.image_size / (2 * s)
        uv = (coords[..., :2] + s[..., None]) * scale[..., None] - 0.5
        depth = coords[..., 2] + s
        return uv, depth

    def pixel_to_world(
        self, uv: torch.Tensor, depth: torch.Tensor, center: torch.Tensor, half_size: torch.Tensor
    ) -> torch.Tensor:
        """Inverse of :meth:`world_to_pixel`: ``uv (B, V, N, 2)`` and ``depth (B, V, N)`` to ``(B, V, N, 3)``."""
        axes = self._axes.to(uv.device)
        s = half_size.view(-1, 1, 1)
        planar = (uv + 0.5) * (2 * s[..., None]) / self.image_size - s[..., None]  # right, down offsets
        coords = torch.cat([planar, (depth - s)[..., None]], dim=-1)  # (B, V, N, 3)
        return torch.einsum("bvna,vak->bvnk", coords, axes) + center[:, None, None, :]

    # ----------------------------------------------------------------------------------------- rendering
    def render(
        self,
        points: torch.Tensor,
        colors: torch.Tensor,
        mask: torch.Tensor | None = None,
        center: torch.Tensor | None = None,
        half_size: torch.Tensor | None = None,
    ) -> VirtualViews:
        """Z-buffer ``points (B, N, 3)`` with ``colors (B, N, 3)`` (``mask (B, N)`` marks real points).

        ``center``/``half_size`` choose the cube (default: the workspace cube; see :meth:`zoomed_cube`).
        """
        batch, count, _ = points.shape
        device = points.device
        if center is None or half_size is None:
            center, half_size = self.default_cube(batch, device)
        if mask is None:
            mask = torch.ones(batch, count, dtype=torch.bool, device=device)
        points, colors, mask = _within_cube(points, colors, mask, center, half_size)
        count = points.shape[1]
        views, size = len(self.views), self.image_size
        uv, depth = self.world_to_pixel(points, center, half_size)
        cols = torch.floor(uv[..., 0] + 0.5).long()
        rows = torch.floor(uv[..., 1] + 0.5).long()
        inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
        inside &= (depth >= 0) & (depth <= 2 * half_size.view(-1, 1, 1)) & mask[:, None, :]

        # Z-buffer in one integer scatter: per pixel, the smallest (quantised depth, point index) key wins, so
        # the nearest point (lowest index among equal depths) is shown. Points outside a view go to one extra
        # "discard" pixel instead of being filtered out (boolean indexing costs more than the scatter).
        pixels = batch * views * size * size
        image_index = torch.arange(batch * views, device=device).view(batch, views, 1)
        flat = torch.where(inside, (image_index * size + rows) * size + cols, pixels).flatten()
        quantised = torch.round(depth.clamp_min(0) / _DEPTH_QUANTUM).long()
        key = quantised * count + torch.arange(count, device=device)
        key = torch.where(inside, key, _NO_POINT).flatten()
        best = torch.full((pixels + 1,), _NO_POINT, dtype=torch.long, device=device)
        best = best.scatter_reduce_(0, flat, key, reduce="amin")[:pixels]
        filled = best < _NO_POINT
        winner = torch.where(filled, best % count, 0)
        image_of_pixel = torch.arange(batch * views, device=device).repeat_interleave(size * size)
        point_row = (image_of_pixel // views) * count + winner  # row in the flattened (B*N) points
        shown = torch.cat(
            [
                colors.reshape(-1, 3).float().index_select(0, point_row),
                points.reshape(-1, 3).float().index_select(0, point_row),
                depth.reshape(-1).take(image_of_pixel * count + winner)[:, None],
            ],
            dim=1,
        )
        image = shown * filled[:, None]
        image = image.view(batch, views, size, size, 7).permute(0, 1, 4, 2, 3)
        valid = filled.view(batch, views, 1, size, size).float()
        return VirtualViews(
            rgb=image[:, :, 0:3], depth=image[:, :, 6:7], xyz=image[:, :, 3:6], valid=valid,
            center=center, half_size=half_size,
        )  # fmt: skip

    # ------------------------------------------------------------------------------- heatmaps to 3D
    def heatmaps_to_world(
        self,
        heatmaps: torch.Tensor,
        center: torch.Tensor,
        half_size: torch.Tensor,
        grid: int = 24,
        refinements: int = 2,
    ) -> torch.Tensor:
        """The 3D point whose projections score highest in the views' heatmaps (searched in their cube).

        Args:
            heatmaps: ``(B, V, H, W)`` per-view probabilities (each view sums to 1).
            center, half_size: the cube the heatmaps were predicted in.

        Returns:
            ``(B, 3)`` world points maximising the summed log-probability over views.
        """
        return most_likely_point([HeatmapTerm(self, heatmaps, center, half_size)], center, half_size, grid, refinements)

    def score_lattice(
        self,
        log_maps: torch.Tensor,
        axis_values: torch.Tensor,
        center: torch.Tensor,
        half_size: torch.Tensor,
        mode: str = "bilinear",
    ) -> torch.Tensor:
        """Summed log-heatmap values (``mode`` interpolation) over the views at every point of a lattice.

        The lattice is the product of ``axis_values (B, 3, n)`` (world x, y and z values). A view sees two
        world axes, so it is sampled on an ``n x n`` grid and broadcast along the third axis: the same values
        as sampling each of the ``n^3`` points, for ``3 n^2`` samples.

        Returns:
            ``(B, n, n, n)`` scores indexed ``[x, y, z]``.
        """
        batch, views, height, width = log_maps.shape
        n = axis_values.shape[-1]
        # The diagonal points (x_i, y_i, z_i): a view's column is a function of its right axis' value alone,
        # and its row of its down axis' value, so their projections give every column and row of the grid.
        uv, _ = self.world_to_pixel(axis_values.transpose(1, 2), center, half_size)  # (B, V, n, 2)
        columns = (uv[..., 0] + 0.5) / width * 2 - 1
        rows = (uv[..., 1] + 0.5) / height * 2 - 1
        grid = torch.stack([columns[..., :, None].expand(-1, -1, -1, n), rows[..., None, :].expand(-1, -1, n, -1)], -1)
        sampled = F.grid_sample(
            log_maps.reshape(batch * views, 1, height, width),
            grid.reshape(batch * views, n, n, 2),
            mode=mode,
            padding_mode="border",
            align_corners=False,
        ).view(batch, views, n, n)  # [right axis value, down axis value]
        total = log_maps.new_zeros(batch, n, n, n)
        for view, (right, down) in enumerate(self._plane_axes):
            table = sampled[:, view] if right < down else sampled[:, view].transpose(1, 2)
            total = total + table.unsqueeze(1 + 3 - right - down)  # broadcast along the axis the view looks along
        return total


def _within_cube(
    points: torch.Tensor, colors: torch.Tensor, mask: torch.Tensor, center: torch.Tensor, half_size: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Drop the points no sample can show: outside every sample's cube or masked out in all samples.

    Every view's axes are a signed permutation of the world's, so a point in a view lies in the cube. The
    order of the kept points is unchanged, so the z-buffer picks the same points (the lowest index among
    equal depths) and the views are identical; a zoomed cube keeps a few percent of the cloud. At least one
    point is kept, so an empty scene still renders.
    """
    margin = half_size.view(-1, 1) * (1 + 1e-4) + 1e-6  # a superset of the view test, never a subset
    near = ((points.float() - center[:, None, :]).abs().amax(dim=-1) <= margin) & mask
    keep = near.any(dim=0)
    if bool(keep.all()):
        return points, colors, mask
    keep[0] = True  # masked out or outside the cube, so it is not shown, but the scatter has a point to index
    return points[:, keep], colors[:, keep], mask[:, keep]


@dataclass(frozen=True)
class HeatmapTerm:
    """One stage's heatmaps in a joint decoding: its renderer, ``(B, V, H, W)`` probabilities, cube and weight.

    The weight is a number, or a ``(B, 1, 1, 1)`` tensor for a weight per sample.
    """

    renderer: VirtualViewRenderer
    heatmaps: torch.Tensor
    center: torch.Tensor
    half_size: torch.Tensor
    weight: float | torch.Tensor = 1.0


def most_likely_point(
    terms: Sequence[HeatmapTerm],
    center: torch.Tensor,
    half_size: torch.Tensor,
    grid: int = 24,
    refinements: int = 2,
) -> torch.Tensor:
    """The point of the cube (``center (B, 3)``, ``half_size (B,)``) maximising the weighted log-heatmaps.

    Each term adds its weight times the summed log-probability of its views, so the heatmaps of a coarse and
    a zoomed stage can be decoded together (a product of experts). The search is a ``grid``^3 lattice of the
    cube (bilinear), then ``refinements`` local searches over a 9^3 lattice spanning one cell of the previous
    level (each 4x finer, bicubic, since bilinear interpolation puts every maximum on a pixel centre): about
    15k candidates instead of a dense grid, for the same precision.
    """
    log_maps = [torch.log(term.heatmaps.clamp_min(1e-12)) for term in terms]
    scale = half_size.view(-1, 1, 1)

    def best_of(middle: torch.Tensor, points_per_axis: int, extent: float, mode: str) -> torch.Tensor:
        offsets = torch.linspace(-extent, extent, points_per_axis, device=middle.device)
        axis_values = middle[:, :, None] + offsets * scale  # (B, 3, n): the lattice's x, y and z values
        score = sum(
            term.weight * term.renderer.score_lattice(maps, axis_values, term.center, term.half_size, mode)
            for term, maps in zip(terms, log_maps)
        )
        x, y, z = torch.unravel_index(score.flatten(1).argmax(dim=1), score.shape[1:])
        return torch.stack([axis_values[:, 0].gather(1, x[:, None]), axis_values[:, 1].gather(1, y[:, None]),
                            axis_values[:, 2].gather(1, z[:, None])], dim=1)[..., 0]  # fmt: skip

    best = best_of(center, grid, 1.0, "bilinear")
    cell = 2.0 / (grid - 1)
    for _ in range(refinements):
        best = best_of(best, 9, cell, "bicubic")
        cell /= 4
    return best
