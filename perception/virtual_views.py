"""Virtual orthographic views of a coloured point cloud (RVT), with exact maps between views and the world.

Each view looks at a cube (centre ``c``, half-size ``s``) along one axis. A world point ``p`` lands on
pixel ``u = ((p - c) . right + s) / (2 s) * W - 0.5`` (and likewise ``v`` with the view's down axis), at
depth ``(p - c) . forward + s`` metres from the cube's near face. Pixel centres sit at integers, as in the
camera contract. Rendering is a z-buffer in pure torch (``scatter_reduce``), batched over samples and
views. A zoomed second-stage view (RVT-2's coarse-to-fine) is the same rendering with a smaller cube
centred on a point of interest.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cortico.perception.workspace import WorkspaceBounds


@functools.lru_cache(maxsize=16)
def _unit_lattice(points_per_axis: int, extent: float, device: torch.device | str) -> torch.Tensor:
    """``(1, n^3, 3)`` lattice covering ``[-extent, extent]^3`` (cached: it is the same for every call)."""
    axis = torch.linspace(-extent, extent, points_per_axis, device=device)
    return torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).view(1, -1, 3)


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

    def score_points(
        self,
        log_maps: torch.Tensor,
        candidates: torch.Tensor,
        center: torch.Tensor,
        half_size: torch.Tensor,
        mode: str = "bilinear",
    ) -> torch.Tensor:
        """Summed log-heatmap values (``mode`` interpolation) of candidates ``(B, N, 3)`` over the views: ``(B, N)``."""
        batch, views, height, width = log_maps.shape
        uv, _ = self.world_to_pixel(candidates, center, half_size)  # (B, V, N, 2)
        normalised = torch.stack([(uv[..., 0] + 0.5) / width * 2 - 1, (uv[..., 1] + 0.5) / height * 2 - 1], dim=-1)
        sampled = F.grid_sample(
            log_maps.reshape(batch * views, 1, height, width),
            normalised.reshape(batch * views, 1, -1, 2),
            mode=mode,
            padding_mode="border",
            align_corners=False,
        )
        return sampled.view(batch, views, -1).sum(dim=1)


@dataclass(frozen=True)
class HeatmapTerm:
    """One stage's heatmaps in a joint decoding: its renderer, ``(B, V, H, W)`` probabilities, cube and weight."""

    renderer: VirtualViewRenderer
    heatmaps: torch.Tensor
    center: torch.Tensor
    half_size: torch.Tensor
    weight: float = 1.0


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
    batch = center.shape[0]
    device = center.device
    log_maps = [torch.log(term.heatmaps.clamp_min(1e-12)) for term in terms]
    rows = torch.arange(batch, device=device)
    scale = half_size.view(-1, 1, 1)

    def best_of(candidates: torch.Tensor, mode: str) -> torch.Tensor:
        score = sum(
            term.weight * term.renderer.score_points(maps, candidates, term.center, term.half_size, mode)
            for term, maps in zip(terms, log_maps)
        )
        return candidates[rows, score.argmax(dim=1)]

    best = best_of(center[:, None, :] + _unit_lattice(grid, 1.0, device) * scale, "bilinear")
    cell = 2.0 / (grid - 1)
    for _ in range(refinements):
        best = best_of(best[:, None, :] + _unit_lattice(9, cell, device) * scale, "bicubic")
        cell /= 4
    return best
