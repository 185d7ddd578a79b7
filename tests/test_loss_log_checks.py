"""The loss-log reader's per-column checks (one pass per column since the Review page
reads 1M-step logs): what each kind of bad value still makes it say."""

from __future__ import annotations

import math

import pytest

from nectargan.losses.loss_log import _columns


def cols(**overrides):
    base = {"epoch": [0.1, 0.2], "step": [1, 2], "raw": [0.5, 0.4], "weight": [1.0, 1.0]}
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("column", "values", "problem"),
    [
        ("raw", [0.5, "x"], "has non-numeric values"),
        ("weight", [True, 1.0], "has non-numeric values"),
        ("step", [1, None], "has missing epochs or steps"),
        ("epoch", [0.1, math.nan], "has missing epochs or steps"),
        ("epoch", [math.inf, -math.inf], "has missing epochs or steps"),
    ],
)
def test_a_bad_column_skips_the_loss_naming_why(column, values, problem):
    problems: list[str] = []
    assert _columns(cols(**{column: values}), "loss_log/1.json", "G_L1", problems) is None
    assert problems == [f"loss_log/1.json: loss 'G_L1' {problem}, skipped"]


def test_non_finite_losses_become_gaps_and_good_columns_pass_unchanged():
    problems: list[str] = []
    out = _columns(cols(raw=[math.nan, math.inf], weight=[1e308, 1e308]), "s", "G", problems)
    assert problems == []
    assert out["raw"] == [None, None]
    assert out["weight"] == [1e308, 1e308]  # finite, though their sum overflows
    assert _columns(cols(), "s", "G", problems) == cols()
