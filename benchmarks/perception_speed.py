"""Time per observation of the perception steps on one CPU core.

    .venv/bin/python benchmarks/perception_speed.py          # -> benchmarks/results/perception_speed.json

Measures, on real four-camera observations of pick-place at 96 px (~24k points in the workspace) and 128
px (~43k): batch fusion + three 128 px virtual views + 32 farthest-point keypoints with their pixels in
every real and virtual view; the Open3D fusion path with voxel down-sampling; text encoding (new and
cached instruction) and gaze-model inference.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def timed(function, repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls after one warm-up."""
    function()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(1000 * (time.perf_counter() - started))
    samples.sort()
    return samples[len(samples) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, default=RESULTS / "perception_speed.json")
    args = parser.parse_args()
    os.environ["LP_NUM_THREADS"] = "1"
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    import torch

    torch.set_num_threads(1)
    from cortico.atomic import write_json_atomic
    from cortico.envs.metaworld_backend import MetaWorldEnv
    from cortico.perception.gaze import GazeConfig, GazeModel
    from cortico.perception.keypoints import farthest_point_sample, project_to_cameras, project_to_virtual
    from cortico.perception.pipeline import observation_to_batch
    from cortico.perception.point_cloud import fuse_batch, fuse_observation
    from cortico.perception.text_encoder import TextEncoder
    from cortico.perception.virtual_views import VirtualViewRenderer

    renderer = VirtualViewRenderer(("top", "front", "left"), image_size=128)
    generator = torch.Generator()

    def static_stream(batch: dict, names: tuple[str, ...]) -> None:
        points, colors, mask = fuse_batch(batch["points"], batch["rgb"], batch["depth"])
        views = renderer.render(points, colors, mask)
        index = farthest_point_sample(points, 32, mask, generator.manual_seed(0))
        keypoints = torch.gather(points, 1, index[..., None].expand(-1, -1, 3))
        project_to_cameras(keypoints, batch["intrinsics"], batch["extrinsics"], batch["depth"], names)
        project_to_virtual(keypoints, views, renderer)

    results: dict[str, object] = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "threads": 1}
    for image_size in (96, 128):
        env = MetaWorldEnv("pick-place", image_size=image_size)
        observation = env.reset(seed=3)
        env.close()
        batch = observation_to_batch(observation)
        names = tuple(observation.cameras)
        _, _, mask = fuse_batch(batch["points"], batch["rgb"], batch["depth"])
        results[f"cameras_{image_size}px"] = {
            "cloud_points_in_workspace": int(mask.sum()),
            "ms_fusion_views_keypoints": timed(lambda: static_stream(batch, names), args.repeats),  # noqa: B023
            "ms_open3d_fusion_voxel_5mm": timed(lambda: fuse_observation(observation, voxel_size=0.005), args.repeats),  # noqa: B023
        }

    encoder = TextEncoder()
    counter = iter(range(10**6))
    results["ms_text_new_instruction"] = timed(
        lambda: encoder.encode(f"open the drawer {next(counter)} times"), args.repeats
    )
    results["ms_text_cached_instruction"] = timed(lambda: encoder.encode("open the drawer"), args.repeats)

    for size in (64, 128):
        model = GazeModel(GazeConfig(image_size=size)).eval()
        wrist, text = torch.rand(1, 3, size, size), torch.rand(1, 384)
        with torch.inference_mode():
            results[f"ms_gaze_inference_{size}px"] = timed(lambda: model(wrist, text), args.repeats)  # noqa: B023
    results["gaze_parameters"] = sum(p.numel() for p in GazeModel(GazeConfig()).parameters())

    write_json_atomic(args.json, results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
