"""The pretrained vision backbone: a local ``transformers`` folder becomes a frozen feature map, patch by patch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cortico.perception.backbones import BACKBONES, PretrainedBackbone


def test_a_local_model_maps_each_patch_token_to_its_place_in_the_feature_map(tiny_vision_model: Path) -> None:
    backbone = PretrainedBackbone(tiny_vision_model)
    assert BACKBONES.get("pretrained") is PretrainedBackbone
    assert (backbone.out_channels, backbone.stride) == (32, 8)
    assert not any(p.requires_grad for p in backbone.parameters()), "frozen by default"
    images = torch.rand(2, 3, 24, 32)  # 3 x 4 patches
    features = backbone(images)
    assert features.shape == (2, 32, 3, 4)
    tokens = backbone.model(pixel_values=(images - backbone.mean) / backbone.std).last_hidden_state
    # the 12 patch tokens come last (after the class token and any register tokens), row by row
    assert tokens.shape[1] > 12
    torch.testing.assert_close(features[:, :, 1, 2], tokens[:, -12 + 1 * 4 + 2])
    torch.testing.assert_close(features[:, :, 0, 0], tokens[:, -12])


def test_a_trainable_backbone_passes_gradients_to_its_weights(tiny_vision_model: Path) -> None:
    backbone = PretrainedBackbone(tiny_vision_model, frozen=False)
    assert all(p.requires_grad for p in backbone.parameters())
    backbone(torch.rand(1, 3, 16, 16)).sum().backward()
    untouched = [name for name, p in backbone.named_parameters() if p.grad is None]
    assert all("mask_token" in name for name in untouched), untouched  # used only for masked-image pretraining


def test_bad_sources_and_image_sizes_are_refused_by_name(tiny_vision_model: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        PretrainedBackbone(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="could not load backbone"):
        PretrainedBackbone(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"30x32 must be a multiple of the patch size 8"):
        PretrainedBackbone(tiny_vision_model)(torch.rand(1, 3, 30, 32))
