"""An imported upstream NectarGAN config builds upstream's U-Net: same levels, same parameters.

The expected counts come from upstream's architecture as its source describes it
(read, not imported): a first down block (conv with bias, no norm), ``n_downs``
down blocks (conv without bias + instance norm without scale/shift), a
bottleneck (conv with bias), ``n_downs + 1`` up blocks (transposed conv without
bias + the same norm; the first takes the bottleneck alone, the others a skip
too) and a last up block (transposed conv with bias). Every conv is 4x4; widths
double from ``features`` up to 8x and stay there.
"""

from __future__ import annotations

import pytest

from nectargan.config import Config
from nectargan.config.upstream import convert
from nectargan.trainers.builders import build_generator


def conv4x4(c_in: int, c_out: int, bias: bool) -> int:
    return c_in * c_out * 16 + (c_out if bias else 0)


def upstream_unet_parameters(n_downs: int, features: int, channels: int = 3) -> int:
    def width(level: int) -> int:
        return features * min(2**level, 8)

    total = conv4x4(channels, features, bias=True)  # first down block
    total += sum(conv4x4(width(i), width(i + 1), bias=False) for i in range(n_downs))
    total += conv4x4(8 * features, 8 * features, bias=True)  # bottleneck
    total += conv4x4(8 * features, 8 * features, bias=False)  # first up block, no skip
    total += sum(conv4x4(2 * width(k), width(k - 1), bias=False) for k in range(n_downs, 0, -1))
    return total + conv4x4(2 * features, channels, bias=True)  # last up block


def imported(n_downs: int, features: int, channels: int = 3) -> Config:
    crop = 2 ** (n_downs + 2)  # upstream's smallest input for this depth
    upstream = {
        "config": {
            "dataloader": {"load": {"input_nc": channels, "load_size": crop, "crop_size": crop}},
            "train": {
                "generator": {
                    "features": features,
                    "n_downs": n_downs,
                    "block_type": "UnetBlock",
                    "upsample_type": "Transposed",
                }
            },
        }
    }
    ours, _notes = convert(upstream)
    return Config.load(ours)


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_formula_gives_upstreams_published_default_count() -> None:
    # upstream's UnetGenerator(256, n_downs=6) with its defaults (features 64, RGB)
    assert upstream_unet_parameters(6, 64) == 54_404_675


@pytest.mark.parametrize(
    ("n_downs", "features", "channels"),
    [(3, 4, 3), (4, 8, 3), (5, 16, 1), (6, 8, 3), (6, 64, 3), (7, 12, 3), (8, 4, 3)],
)
def test_imported_generator_has_upstreams_parameter_count(
    n_downs: int, features: int, channels: int
) -> None:
    cfg = imported(n_downs, features, channels)
    # 2 more levels: upstream's n_downs leaves out its first down block and its bottleneck
    assert cfg.train.generator.n_downs == n_downs + 2
    generator = build_generator(cfg)
    assert count(generator) == upstream_unet_parameters(n_downs, features, channels)
    # the same number of halvings: upstream's smallest input passes and comes back whole
    assert generator.size_multiple == cfg.dataloader.crop_size == 2 ** (n_downs + 2)


def test_level_for_level_the_widths_match_upstreams() -> None:
    generator = build_generator(imported(6, 64))
    downs = [block[0] for block in generator.downs]
    assert [(c.in_channels, c.out_channels) for c in downs] == [
        (3, 64), (64, 128), (128, 256), (256, 512), (512, 512), (512, 512), (512, 512), (512, 512)
    ]  # fmt: skip
    assert [c.bias is not None for c in downs] == [True] + [False] * 6 + [True]
    ups = [block[0] for block in generator.ups]
    assert [(c.in_channels, c.out_channels) for c in ups] == [
        (512, 512), (1024, 512), (1024, 512), (1024, 512), (1024, 256), (512, 128), (256, 64), (128, 3)
    ]  # fmt: skip


def test_the_import_says_what_still_differs(tmp_path, capsys) -> None:
    import json

    from nectargan.cli.main import main

    src, out = tmp_path / "upstream.json", tmp_path / "ours.json"
    src.write_text(json.dumps({"config": {"train": {"generator": {"n_downs": 6}}}}))
    assert main(["config", "import", str(src), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ours counts every halving: 8" in printed
    assert "same layers and parameter count" in printed and "reflect" in printed
