"""The three policies behind one interface: learning, persistence, bad input, and closing the loop."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from cortico.envs.contract import ObservationError
from cortico.envs.metaworld_backend import MetaWorldEnv
from cortico.policies.base import KeyframePolicy, PolicyLoadError
from cortico.policies.cortical import CorticalPolicy, RVTPolicy, keypoint_consistency

from .conftest import CAMERAS, TINY_VIEW, make_policy, tiny_configs

KINDS = ("cortical", "rvt", "cnn")


@pytest.mark.parametrize("kind", KINDS)
def test_each_head_learns_a_handful_of_samples(kind, one_episode_batch):
    policy = make_policy(kind).eval()  # eval: no augmentation, so the targets stay fixed
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    first = None
    for _ in range(40):
        losses = policy.loss(one_episode_batch, generator)
        first = first or {k: v.item() for k, v in losses.items()}
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    last = {k: v.item() for k, v in losses.items()}
    for head in ("rotation", "gripper", "collision", "coarse_heatmap", "fine_heatmap", "position"):
        if head in first:
            assert last[head] < first[head], f"{kind}: {head} loss did not fall ({first[head]:.3f} -> {last[head]:.3f})"


def test_consistency_loss_prefers_true_correspondences():
    torch.manual_seed(0)
    base = torch.randn(2, 1, 16, 32)
    features = base.repeat(1, 3, 1, 1) + 0.05 * torch.randn(2, 3, 16, 32)  # same keypoint, same feature
    visible = torch.ones(2, 3, 16, dtype=torch.bool)
    shuffled = features.clone()
    shuffled[:, 1] = shuffled[:, 1, torch.randperm(16)]
    true_loss = keypoint_consistency(features, visible, 0.1)
    assert true_loss < 0.1 < keypoint_consistency(shuffled, visible, 0.1)
    assert keypoint_consistency(features, torch.zeros_like(visible), 0.1) == 0


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_round_trip_reproduces_actions(kind, one_episode_batch, tmp_path):
    policy = make_policy(kind).eval()
    before = policy.predict(one_episode_batch)
    policy.save(tmp_path / kind)
    loaded = KeyframePolicy.load(tmp_path / kind)
    after = loaded.predict(one_episode_batch)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a.to_array(), b.to_array())
    assert type(loaded) is type(policy)


def test_loading_refuses_other_types_and_corrupt_weights(tmp_path):
    make_policy("rvt").save(tmp_path / "rvt")
    with pytest.raises(PolicyLoadError, match="holds a 'rvt' policy, not a 'cortical'"):
        CorticalPolicy.load(tmp_path / "rvt")
    weights = tmp_path / "rvt" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(PolicyLoadError, match="corrupt or truncated"):
        RVTPolicy.load(tmp_path / "rvt")
    make_policy("cnn").save(tmp_path / "cnn")
    config = (tmp_path / "cnn" / "config.json").read_text().replace('"width": 32', '"width": 48')
    (tmp_path / "cnn" / "config.json").write_text(config)
    with pytest.raises(PolicyLoadError, match="does not fit"):
        KeyframePolicy.load(tmp_path / "cnn")
    with pytest.raises(PolicyLoadError, match="not a saved policy"):
        KeyframePolicy.load(tmp_path / "nothing")


def test_act_refuses_nan_and_missing_cameras():
    policy = make_policy("rvt")
    env = MetaWorldEnv("drawer-close", cameras=list(CAMERAS), image_size=64)
    observation = env.reset(seed=0)
    env.close()
    frame = observation.cameras["front"]
    depth = frame.depth.copy()
    depth[0, 0] = np.nan
    broken = dataclasses.replace(
        observation, cameras={**observation.cameras, "front": dataclasses.replace(frame, depth=depth)}
    )
    with pytest.raises(ObservationError, match="NaN"):
        policy.act(broken)
    partial = dataclasses.replace(observation, cameras={"front": frame})
    with pytest.raises(ValueError, match="lacks"):
        policy.act(partial)
    with pytest.raises(ValueError, match="empty"):
        policy.act(observation, instruction="  ")
    action = policy.act(observation, instruction="close the drawer")
    assert action.to_array().shape == (9,) and np.isfinite(action.to_array()).all()


def test_an_overfit_policy_solves_its_episode_in_the_simulator(one_episode, one_episode_batch):
    """RVT trained on one drawer-close demo replays the task from the same seed in closed loop."""
    from cortico.policies.cortical import RVTConfig

    view = dataclasses.replace(TINY_VIEW, image_size=64)  # 12.5 mm pixels: enough to find the drawer front
    torch.manual_seed(0)
    policy = RVTPolicy(RVTConfig(cameras=CAMERAS, image_size=64, coarse=view, fine=view)).eval()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(160):  # three initialisations all succeeded from 80 steps on (within 3-5 keyframes at 160)
        losses = policy.loss(one_episode_batch, generator)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    env = MetaWorldEnv("drawer-close", cameras=list(CAMERAS), image_size=64)
    observation = env.reset(seed=0)
    success = False
    for _ in range(8):
        outcome = env.execute(policy.act(observation))
        observation, success = outcome.observation, outcome.success
        if success:
            break
    env.close()
    assert success, f"final losses { ({k: round(v.item(), 3) for k, v in losses.items()}) }"


def test_a_sample_alone_gets_the_same_output_as_in_a_padded_batch():
    from cortico.policies.view_transformer import ViewTransformer, ViewTransformerConfig

    torch.manual_seed(0)
    config = ViewTransformerConfig(
        num_views=2, image_size=16, in_channels=4, patch=8, dim=32, heads=2, intra_layers=1, cross_layers=1,
        text_dim=8, proprio_dim=2, decoder_channels=4,
    )  # fmt: skip
    model = ViewTransformer(config).eval()
    views, text, proprio = torch.randn(2, 2, 4, 16, 16), torch.randn(2, 5, 8), torch.randn(2, 2)
    text_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    extra, extra_mask = torch.randn(2, 3, 32), torch.tensor([[1, 0, 1], [1, 1, 1]], dtype=torch.bool)

    def run(rows: slice):
        return model(views[rows], text[rows], text_mask[rows], proprio[rows], lambda _: (extra[rows], extra_mask[rows]))

    with torch.no_grad():
        together, alone = run(slice(0, 2)), run(slice(0, 1))  # the first sample has padded text and extra tokens
    torch.testing.assert_close(alone.heatmap_logits[0], together.heatmap_logits[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone.global_features[0], together.global_features[0], atol=1e-5, rtol=1e-4)


def test_view_transformer_depths_are_checked_and_intra_view_layers_are_optional():
    from cortico.policies.view_transformer import ViewTransformer, ViewTransformerConfig

    small = dict(num_views=2, image_size=16, in_channels=4, patch=8, dim=32, heads=2, text_dim=8, decoder_channels=4)
    with pytest.raises(ValueError, match="cross_layers >= 1"):
        ViewTransformerConfig(**small, cross_layers=0)
    with pytest.raises(ValueError, match="intra_layers must be >= 0"):
        ViewTransformerConfig(**small, intra_layers=-1)
    model = ViewTransformer(ViewTransformerConfig(**small, intra_layers=0, cross_layers=1)).eval()
    with torch.no_grad():
        output = model(torch.randn(1, 2, 4, 16, 16), torch.randn(1, 3, 8), torch.ones(1, 3, dtype=torch.bool),
                       torch.randn(1, 2))  # fmt: skip
    assert output.heatmap_logits.shape == (1, 2, 16, 16) and torch.isfinite(output.heatmap_logits).all()


def test_only_inference_settings_change_on_a_trained_policy(one_episode_batch):
    policy = make_policy("cortical").eval()
    config = policy.config
    changed = config.with_inference_settings({"fine_weight": 1, "gaze_focus": True})
    assert (changed.fine_weight, changed.gaze_focus) == (1.0, True)
    assert changed.coarse == config.coarse and changed.num_keypoints == config.num_keypoints
    batch = {key: value[:1] for key, value in one_episode_batch.items()}
    default = policy.predict(batch)[0].position
    policy.config = config.with_inference_settings({"fine_weight": 0.0})  # the coarse stage decides alone
    assert not np.allclose(policy.predict(batch)[0].position, default)
    accepted = (
        "accepted: gaze_focus, fine_weight, carry_fine_weight, free_space_fine_weight, free_space_clearance, "
        "attention_precision"
    )
    with pytest.raises(ValueError, match=rf"\['num_keypoints'\] cannot change.*{accepted}"):
        config.with_inference_settings({"num_keypoints": 4})
    with pytest.raises(ValueError, match="fine_weight must be >= 0"):
        config.with_inference_settings({"fine_weight": -1})
    with pytest.raises(ValueError, match="'gaze_focus' must be of type bool, got 1"):
        config.with_inference_settings({"gaze_focus": 1})
    with pytest.raises(ValueError, match="accepted: attention_precision$"):
        make_policy("rvt").config.with_inference_settings({"fine_weight": 1.0})
    with pytest.raises(ValueError, match=r"attention_precision must be one of \['bfloat16', 'float32'\], got 'half'"):
        config.with_inference_settings({"attention_precision": "half"})


def test_bfloat16_attention_is_an_inference_option_that_leaves_training_in_float32(one_episode_batch):
    from cortico.policies.view_transformer import ViewTransformer, ViewTransformerConfig

    torch.manual_seed(0)
    small = dict(num_views=2, image_size=16, in_channels=4, patch=8, dim=32, heads=2, text_dim=8, decoder_channels=4)
    model = ViewTransformer(ViewTransformerConfig(**small)).eval()
    text_mask = torch.tensor([[True, True, False]])
    inputs = (torch.randn(1, 2, 4, 16, 16), torch.randn(1, 3, 8), text_mask, torch.randn(1, 2))
    with torch.no_grad():
        exact = model(*inputs).heatmap_logits
        fast = model(*inputs, attention_dtype=torch.bfloat16).heatmap_logits
    assert fast.dtype == torch.float32 and all(p.dtype == torch.float32 for p in model.parameters())
    assert not torch.equal(fast, exact)  # it did compute in bfloat16 ...
    torch.testing.assert_close(fast, exact, atol=0.05, rtol=0.05)  # ... to bfloat16's precision (3 digits)

    policy = make_policy("cortical").eval()
    generator = torch.Generator().manual_seed(0)
    float_loss = policy.loss(one_episode_batch, generator)["total"]
    policy.config = policy.config.with_inference_settings({"attention_precision": "bfloat16"})
    assert policy.loss(one_episode_batch, torch.Generator().manual_seed(0))["total"] == float_loss
    action = policy.predict({key: value[:1] for key, value in one_episode_batch.items()})[0]
    assert np.isfinite(action.to_array()).all()


@pytest.mark.parametrize("kind", KINDS)
def test_the_gripper_position_is_an_optional_input_and_older_checkpoints_load_without_it(
    kind, one_episode_batch, tmp_path
):
    from cortico.policies.base import POLICIES, proprioception

    config = dataclasses.replace(tiny_configs()[kind], proprio_position=True)
    torch.manual_seed(0)
    policy = POLICIES.get(kind)(config).eval()
    state = proprioception(one_episode_batch, config)
    assert state.shape == (len(one_episode_batch["time"]), 5) and state[:, 2:].abs().max() <= 1.0
    assert torch.isfinite(policy.loss(one_episode_batch, torch.Generator().manual_seed(0))["total"])
    if kind != "cnn":  # both view transformers read the wider input
        assert config.coarse.proprio_dim == config.fine.proprio_dim == 5
    policy.save(tmp_path / "with")
    before = policy.predict(one_episode_batch)
    after = KeyframePolicy.load(tmp_path / "with").predict(one_episode_batch)
    assert [a.to_array().tolist() for a in before] == [a.to_array().tolist() for a in after]

    make_policy(kind).save(tmp_path / "older")  # a checkpoint saved before the setting existed
    saved = json.loads((tmp_path / "older" / "config.json").read_text())
    del saved["proprio_position"]
    (tmp_path / "older" / "config.json").write_text(json.dumps(saved))
    older = KeyframePolicy.load(tmp_path / "older")
    assert not older.config.proprio_position and proprioception(one_episode_batch, older.config).shape[1] == 2


def test_augmentation_moves_the_gripper_position_with_the_scene(one_episode_batch):
    from cortico.policies.augmentation import SceneAugmentation
    from cortico.policies.scene import build_scene

    config = tiny_configs()["rvt"]
    generator = torch.Generator().manual_seed(0)
    scene = build_scene(one_episode_batch, config.bounds, SceneAugmentation(yaw_degrees=45.0), generator)
    gripper = one_episode_batch["gripper_pose"][:, :3].float()
    target = one_episode_batch["action"][:, :3].float()
    moved = scene.move(gripper)
    assert (moved - gripper).norm(dim=1).max() > 0.01  # the scene did move
    torch.testing.assert_close((scene.actions[:, :3] - moved).norm(dim=1), (target - gripper).norm(dim=1))


@pytest.mark.parametrize("kind", KINDS)
def test_the_collision_probe_keeps_its_loss_out_of_the_shared_features(kind, one_episode_batch):
    from cortico.policies.base import POLICIES

    def collision_gradients(probe: bool) -> tuple[dict[str, float], list]:
        torch.manual_seed(0)
        policy = POLICIES.get(kind)(dataclasses.replace(tiny_configs()[kind], collision_probe=probe)).eval()
        policy.loss(one_episode_batch, torch.Generator().manual_seed(0))["collision"].backward()
        norms = {n: p.grad.norm().item() for n, p in policy.named_parameters() if p.grad is not None}
        return norms, [a.to_array().tolist() for a in policy.predict(one_episode_batch)]

    shared, shared_actions = collision_gradients(False)
    probed, probed_actions = collision_gradients(True)
    assert any(name.startswith("head.net") and norm > 0 for name, norm in shared.items())
    assert {name for name, norm in probed.items() if norm > 0} == {"head.collision.weight", "head.collision.bias"}
    assert probed_actions == shared_actions  # training only: the same weights act the same


def test_the_coarse_context_reaches_the_fine_stage_and_needs_both_streams(one_episode_batch, tmp_path):
    from cortico.policies.cortical import CorticalPolicy

    config = dataclasses.replace(tiny_configs()["cortical"], coarse_context=True)
    torch.manual_seed(0)
    policy = CorticalPolicy(config).eval()
    policy.loss(one_episode_batch, torch.Generator().manual_seed(0))["fine_heatmap"].backward()
    assert policy.context_projection.weight.grad.norm() > 0
    assert any(p.grad is not None and p.grad.norm() > 0 for n, p in policy.named_parameters()
               if n.startswith("coarse.cross"))  # fmt: skip  # the fine loss trains the coarse summary too
    policy.save(tmp_path / "context")
    before = [a.to_array().tolist() for a in policy.predict(one_episode_batch)]
    loaded = KeyframePolicy.load(tmp_path / "context")
    assert [a.to_array().tolist() for a in loaded.predict(one_episode_batch)] == before
    with torch.no_grad():
        policy.context_projection.weight.mul_(50.0)
    assert [a.to_array().tolist() for a in policy.predict(one_episode_batch)] != before
    with pytest.raises(ValueError, match="coarse_context .* needs both streams"):
        dataclasses.replace(config, static_stream=False)


@pytest.mark.parametrize("kind", ["cortical", "rvt"])
def test_stage_points_hold_the_decision_and_each_stage_alone(kind, one_episode_batch):
    policy = make_policy(kind).eval()
    points = policy.stage_points(one_episode_batch)
    decided = torch.tensor(np.array([a.position for a in policy.predict(one_episode_batch)]), dtype=torch.float32)
    torch.testing.assert_close(points["decision"], decided)
    if kind == "rvt":  # one stage: it alone is the decision
        assert set(points) == {"coarse", "decision"}
        torch.testing.assert_close(points["coarse"], points["decision"])
    else:  # the fine stage's cube is centred on the coarse point; both its choice and the decision lie in it
        assert set(points) == {"coarse", "fine", "decision"}
        half = policy.config.bounds.half_size / policy.config.zoom
        reach = half * (1 + 2 / 23)  # the local refinements may step one cell of the 24^3 lattice past a face
        for name in ("fine", "decision"):
            assert ((points[name] - points["coarse"]).abs() <= reach + 1e-5).all()


def test_the_carry_weight_changes_only_decisions_taken_with_the_gripper_closed(one_episode_batch):
    policy = make_policy("cortical").eval()
    batch = dict(one_episode_batch)
    closed = torch.arange(len(batch["gripper_open"])) % 2 == 0
    batch["gripper_open"] = (~closed).float()

    def positions(**settings) -> torch.Tensor:
        policy.config = policy.config.with_inference_settings(settings)
        return torch.tensor(np.array([a.position for a in policy.predict(batch)]))

    policy.config = policy.config.with_inference_settings({"free_space_fine_weight": None})  # the carry rule alone
    default, coarse_only = positions(carry_fine_weight=None, fine_weight=4.0), positions(fine_weight=0.0)
    carried = positions(fine_weight=4.0, carry_fine_weight=0)  # an int is taken as a float
    assert policy.config.carry_fine_weight == 0.0
    torch.testing.assert_close(carried[~closed], default[~closed])
    torch.testing.assert_close(carried[closed], coarse_only[closed])
    assert not torch.equal(carried, default)
    with pytest.raises(ValueError, match="carry_fine_weight must be >= 0"):
        policy.config.with_inference_settings({"carry_fine_weight": -1.0})
    with pytest.raises(ValueError, match="'carry_fine_weight' must be a number or None"):
        policy.config.with_inference_settings({"carry_fine_weight": "low"})
    with pytest.raises(ValueError, match="'fine_weight' must be of type float, got None"):
        policy.config.with_inference_settings({"fine_weight": None})


def test_the_fine_stage_target_width_is_its_own_and_defaults_to_the_shared_one(one_episode_batch):
    def fine_loss(**settings) -> tuple[float, float]:
        policy = CorticalPolicy(dataclasses.replace(tiny_configs()["cortical"], **settings))
        policy.load_state_dict(make_policy("cortical").state_dict())  # the same weights for every width
        policy.eval()  # no dropout or scene augmentation: the losses compare exactly
        with torch.no_grad():
            losses = policy.loss(one_episode_batch, torch.Generator().manual_seed(0))
        return float(losses["fine_heatmap"]), float(losses["coarse_heatmap"])

    shared = fine_loss()
    assert fine_loss(fine_heatmap_sigma=1.5) == shared  # None means heatmap_sigma (1.5 px)
    wider = fine_loss(fine_heatmap_sigma=4.0)
    assert wider[1] == shared[1] and wider[0] != shared[0]  # only the fine stage's targets change
    with pytest.raises(ValueError, match="fine_heatmap_sigma must be > 0 or None"):
        dataclasses.replace(tiny_configs()["cortical"], fine_heatmap_sigma=0.0)


def test_the_free_space_weight_changes_only_decisions_whose_coarse_point_is_far_from_the_scene(one_episode_batch):
    from cortico.policies.scene import build_scene

    policy = make_policy("cortical").eval()
    clearance = build_scene(one_episode_batch, policy.config.bounds).clearance(
        policy.stage_points(one_episode_batch)["coarse"]
    )
    threshold = float(clearance.median())  # half of the samples on each side
    free = clearance > threshold
    assert free.any() and not free.all()

    def positions(**settings) -> torch.Tensor:
        policy.config = policy.config.with_inference_settings(settings)
        return torch.tensor(np.array([a.position for a in policy.predict(one_episode_batch)]))

    default, coarse_only = positions(free_space_fine_weight=None), positions(fine_weight=0.0)
    gated = positions(fine_weight=4.0, free_space_fine_weight=0.0, free_space_clearance=threshold)
    torch.testing.assert_close(gated[~free], default[~free])
    torch.testing.assert_close(gated[free], coarse_only[free])
    assert not torch.equal(gated, default)
    # a cap: it never raises the weight, so fine_weight 0 is the coarse stage alone with the rule on or off
    torch.testing.assert_close(positions(fine_weight=0.0, free_space_fine_weight=2.0), coarse_only)
    assert CorticalPolicy(tiny_configs()["cortical"]).config.free_space_fine_weight == 1.0  # on for new trainings
    with pytest.raises(ValueError, match="free_space_clearance must be > 0"):
        policy.config.with_inference_settings({"free_space_clearance": 0.0})
    with pytest.raises(ValueError, match="free_space_fine_weight must be >= 0"):
        policy.config.with_inference_settings({"free_space_fine_weight": -1.0})


def test_clearance_is_the_distance_to_the_nearest_real_point():
    from cortico.policies.scene import Scene

    points = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.3, 0.0]]])
    mask = torch.tensor([[True, True, False]])  # the nearest point is not real
    scene = Scene(points, torch.zeros_like(points), mask, None, torch.eye(3)[None], torch.zeros(1, 3))
    torch.testing.assert_close(scene.clearance(torch.tensor([[0.0, 0.2, 0.0]])), torch.tensor([0.2]))
    empty = Scene(points, torch.zeros_like(points), torch.zeros_like(mask), None, torch.eye(3)[None], torch.zeros(1, 3))
    assert torch.isinf(empty.clearance(torch.zeros(1, 3))).all()


def test_checkpoints_saved_before_the_free_space_cap_load_without_it():
    from cortico.policies.cortical import CorticalConfig

    saved = tiny_configs()["cortical"].to_dict()
    del saved["free_space_fine_weight"]  # as written before the setting existed
    assert CorticalConfig.from_dict(saved, saved=True).free_space_fine_weight is None  # decides as it was evaluated
    assert CorticalConfig.from_dict(saved).free_space_fine_weight == 1.0  # a new configuration gets today's default
    older = CorticalConfig.from_dict(saved, saved=True).with_inference_settings({"free_space_fine_weight": 1})
    assert older.free_space_fine_weight == 1.0  # --inference turns it on for them
