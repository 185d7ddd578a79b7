"""UNet generator and PatchGAN discriminator: shapes, validation, init, receptive field."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nectargan.models import PatchGANDiscriminator, UnetGenerator, init_weights, receptive_field
from nectargan.models.patchgan.model import min_input_size


def tiny_unet(**kw) -> UnetGenerator:
    args = {"features": 4, "n_downs": 4} | kw
    return UnetGenerator(**args)


@pytest.mark.parametrize("block_type", ["plain", "residual"])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
@pytest.mark.parametrize("norm", ["batch", "instance", "instance_noaffine"])
def test_unet_shape_and_range(block_type: str, upsample: str, norm: str) -> None:
    g = tiny_unet(block_type=block_type, upsample=upsample, norm=norm)
    x = torch.randn(2, 3, 32, 32)
    y = g(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert y.abs().max() <= 1.0
    y.mean().backward()
    assert all(p.grad is not None for p in g.parameters())


@pytest.mark.parametrize("n_downs", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_residual_unet_works_at_smallest_size_of_every_depth(n_downs: int, norm: str) -> None:
    # Input exactly 2**n_downs leaves a 1x1 bottleneck, where norms would fail.
    g = tiny_unet(n_downs=n_downs, block_type="residual", norm=norm)
    side = 2**n_downs
    y = g(torch.randn(1, 3, side, side))
    assert y.shape == (1, 3, side, side)
    g.eval()
    assert g(torch.randn(1, 3, side, 2 * side)).shape == (1, 3, side, 2 * side)


def test_unet_channels_configurable() -> None:
    g = tiny_unet(in_channels=1, out_channels=4)
    assert g(torch.randn(1, 1, 16, 16)).shape == (1, 4, 16, 16)


def test_unet_rejects_size_not_fitting_depth() -> None:
    g = tiny_unet(n_downs=5)
    with pytest.raises(ValueError, match=r"48 must be a positive multiple of 2\*\*n_downs=32"):
        g(torch.randn(1, 3, 48, 64))
    with pytest.raises(ValueError, match="width 40"):
        g.check_input_size(64, 40)
    g.check_input_size(64, 96)


def test_unet_classic_defaults() -> None:
    g = UnetGenerator()
    assert (g.in_channels, g.out_channels, g.features, g.n_downs) == (3, 3, 64, 8)
    assert g.norm == "batch" and g.size_multiple == 256
    # pix2pix's unet_256 has 54.4M parameters; same widths here.
    assert 54_000_000 < sum(p.numel() for p in g.parameters()) < 55_000_000
    with pytest.raises(ValueError, match=r"250 must be a positive multiple of 2\*\*n_downs=256"):
        g.check_input_size(250, 250)
    g.eval()
    with torch.no_grad():
        assert g(torch.randn(1, 3, 256, 256)).shape == (1, 3, 256, 256)


def test_unet_dropout_in_deepest_up_blocks_only() -> None:
    def count(m: nn.Module) -> int:
        return sum(isinstance(x, nn.Dropout) for x in m.modules())

    g = tiny_unet(n_downs=6)
    assert [count(up) for up in g.ups] == [1, 1, 1, 0, 0, 0]
    assert count(tiny_unet(n_downs=6, use_dropout=False)) == 0
    assert count(g.downs) == 0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"block_type": "dense"}, "block_type 'dense'.*plain, residual"),
        ({"upsample": "nearest"}, "upsample 'nearest'.*transpose, bilinear"),
        ({"norm": "layer"}, "norm 'layer'.*batch, instance"),
        ({"n_downs": 0}, "n_downs must be a positive integer, got 0"),
        ({"features": 2.5}, "features must be a positive integer"),
    ],
)
def test_unet_bad_arguments(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny_unet(**kw)


def test_unet_rejects_wrong_channel_count() -> None:
    with pytest.raises(ValueError, match="4 channels.*in_channels=3"):
        tiny_unet()(torch.randn(1, 4, 16, 16))


def test_receptive_field_classic_is_70() -> None:
    assert receptive_field() == 70
    assert receptive_field(3) == 70
    assert PatchGANDiscriminator(base_channels=4, max_channels=32).receptive_field == 70
    assert [receptive_field(n) for n in (0, 1, 2, 4)] == [7, 16, 34, 142]


@pytest.mark.parametrize("n_layers", [1, 2])
def test_receptive_field_matches_gradient_support(n_layers: int) -> None:
    # Batch norm in eval mode is per-pixel affine, so one logit depends only on its patch.
    d = PatchGANDiscriminator(base_channels=4, max_channels=16, n_layers=n_layers).eval()
    x = torch.randn(1, 3, 64, 64, requires_grad=True)
    y = torch.randn(1, 3, 64, 64)
    out = d(x, y)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = support.any(dim=1).nonzero()
    cols = support.any(dim=0).nonzero()
    assert int(rows.max() - rows.min() + 1) == receptive_field(n_layers)
    assert int(cols.max() - cols.min() + 1) == receptive_field(n_layers)


def test_patchgan_shapes_and_conditioning() -> None:
    d = PatchGANDiscriminator(in_channels=1, out_channels=3, base_channels=8, max_channels=32)
    x, y = torch.randn(2, 1, 64, 64), torch.randn(2, 3, 64, 64)
    out = d(x, y)
    assert out.shape == (2, 1, *d.output_shape(64, 64)) == (2, 1, 6, 6)
    assert d.net[0].in_channels == 4
    assert not torch.equal(out, d(torch.randn(2, 1, 64, 64), y))


def test_patchgan_classic_output_is_30x30_at_256() -> None:
    d = PatchGANDiscriminator()
    assert d.output_shape(256, 256) == (30, 30)
    widths = [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [64, 128, 256, 512, 1]


def test_patchgan_channel_cap() -> None:
    d = PatchGANDiscriminator(base_channels=8, max_channels=16, n_layers=4)
    widths = [m.out_channels for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [8, 16, 16, 16, 16, 1]


def test_patchgan_input_errors() -> None:
    d = PatchGANDiscriminator(base_channels=4, max_channels=8)
    with pytest.raises(ValueError, match="y has 1 channels, expected out_channels=3"):
        d(torch.randn(1, 3, 32, 32), torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="must share batch size and H, W"):
        d(torch.randn(1, 3, 32, 32), torch.randn(1, 3, 64, 64))
    small = min_input_size(3) - 1
    with pytest.raises(ValueError, match=f"too small for n_layers=3.*>= {small + 1}"):
        d(torch.randn(1, 3, small, small), torch.randn(1, 3, small, small))
    with pytest.raises(ValueError, match="max_channels 4 must be >= base_channels 8"):
        PatchGANDiscriminator(base_channels=8, max_channels=4)


def test_min_input_size_gives_one_logit() -> None:
    d = PatchGANDiscriminator(base_channels=4, max_channels=8).eval()
    s = min_input_size(3)
    assert d(torch.randn(1, 3, s, s), torch.randn(1, 3, s, s)).shape == (1, 1, 1, 1)


def _weights(model: nn.Module, kinds: tuple[type, ...]) -> torch.Tensor:
    return torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, kinds)])


@pytest.mark.parametrize(
    "model", [PatchGANDiscriminator(), UnetGenerator(features=16, n_downs=6)], ids=["D", "G"]
)
def test_pix2pix_weight_init(model: nn.Module) -> None:
    convs = _weights(model, (nn.Conv2d, nn.ConvTranspose2d))
    assert abs(convs.mean().item()) < 2e-3 and abs(convs.std().item() - 0.02) < 1e-3
    norms = _weights(model, (nn.BatchNorm2d,))
    assert abs(norms.mean().item() - 1) < 0.01 and abs(norms.std().item() - 0.02) < 0.01
    biases = [m.bias for m in model.modules() if getattr(m, "bias", None) is not None]
    assert biases and all(torch.count_nonzero(b) == 0 for b in biases)


def test_init_weights_instance_norm_and_custom_std() -> None:
    m = nn.Sequential(nn.Conv2d(3, 64, 3), nn.InstanceNorm2d(64, affine=True), nn.Linear(4, 4))
    assert init_weights(m, std=0.5) is m
    assert abs(m[0].weight.std().item() - 0.5) < 0.05
    assert torch.count_nonzero(m[1].bias) == 0 and m[1].weight.mean().item() == pytest.approx(
        1, abs=0.3
    )
    with pytest.raises(ValueError, match="std -1"):
        init_weights(m, std=-1)


@pytest.mark.parametrize("block_type", ["plain", "residual"])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_channels_last_and_bf16_autocast(block_type: str, upsample: str, norm: str) -> None:
    g = tiny_unet(block_type=block_type, upsample=upsample, norm=norm)
    d = PatchGANDiscriminator(base_channels=4, max_channels=16, norm=norm)
    g = g.to(memory_format=torch.channels_last)
    d = d.to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fake = g(x)
        logits = d(x, fake)
    assert fake.shape == x.shape and fake.dtype == torch.bfloat16
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()
    logits.float().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in g.parameters())


def test_eval_mode_is_deterministic() -> None:
    g = tiny_unet().eval()
    x = torch.randn(1, 3, 16, 16)
    assert torch.equal(g(x), g(x))
