"""VisdomVisualizer inputs: bad ones get a clear error naming type/shape; odd good ones work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_visualizer_spec import connect, grid_pixels

from nectargan.visualizer.visdom.visualizer import VisdomVisualizer

IMG = torch.zeros(1, 3, 8, 8)


@pytest.fixture
def vis(visdom_server, env_name):
    return connect(visdom_server, env_name)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        (([0.0], IMG, IMG), TypeError, "x must be a torch.Tensor, got list"),
        ((IMG, np.zeros((1, 3, 8, 8)), IMG), TypeError, "y must be a torch.Tensor, got ndarray"),
        ((IMG, IMG, torch.zeros(8, 8)), ValueError, r"z must have shape .* got \(8, 8\)"),
        ((torch.zeros(1, 1, 3, 8, 8), IMG, IMG), ValueError, r"got \(1, 1, 3, 8, 8\)"),
        ((torch.zeros(2, 8, 8), IMG, IMG), ValueError, r"1 or 3 channels .* \(2, 8, 8\)"),
        ((IMG, torch.zeros(1, 4, 8, 8), IMG), ValueError, r"y must have 1 or 3 channels"),
        ((torch.zeros(0, 3, 8, 8), IMG, IMG), ValueError, r"x is empty: shape \(0, 3, 8, 8\)"),
        ((IMG, IMG, torch.zeros(3, 0, 8)), ValueError, "z is empty"),
        ((IMG.int(), IMG, IMG), TypeError, "got torch.int32"),
        ((IMG, IMG.bool(), IMG), TypeError, "got torch.bool"),
        ((IMG, IMG, IMG.to(torch.complex64)), TypeError, "got torch.complex64"),
        ((torch.zeros(2, 3, 8, 8), IMG, IMG), ValueError, r"same batch size.*x=\(2, 3, 8, 8\)"),
        ((torch.zeros(3, 8, 8, device="meta"), IMG, IMG), ValueError, "meta device"),
    ],
)
def test_bad_images_name_the_problem(vis, args, error, match):
    with pytest.raises(error, match=match):
        vis.update_images(*args, title="t")
    assert vis.stats.images_received == 0


@pytest.mark.parametrize(
    ("size", "error"),
    [
        (0, ValueError),
        (-3, ValueError),
        (5000, ValueError),
        (2.5, TypeError),
        ("300", TypeError),
        (True, TypeError),
    ],
)
def test_bad_image_size(vis, size, error):
    with pytest.raises(error, match="image_size"):
        vis.update_images(IMG, IMG, IMG, "t", image_size=size)


def test_bad_title(vis):
    with pytest.raises(TypeError, match="title must be a str, got int"):
        vis.update_images(IMG, IMG, IMG, 3)


@pytest.mark.parametrize(
    ("g", "d", "error", "match"),
    [
        ([("a", 1.0)], {"d": 1.0}, TypeError, "losses_G must be a dict .* got list"),
        ({"a": 1.0}, None, TypeError, "losses_D must be a dict .* got NoneType"),
        ({}, {"d": 1.0}, ValueError, "losses_G is empty"),
        ({"a": 1.0}, {}, ValueError, "losses_D is empty"),
        ({3: 1.0}, {"d": 1.0}, TypeError, "losses_G keys must be str, got 3"),
        ({"a": "0.5"}, {"d": 1.0}, TypeError, r"losses_G\['a'\] must be a number .* got str"),
        ({"a": None}, {"d": 1.0}, TypeError, r"losses_G\['a'\] .* got NoneType"),
        ({"a": True}, {"d": 1.0}, TypeError, r"losses_G\['a'\] .* got bool"),
        ({"a": 1j}, {"d": 1.0}, TypeError, r"got complex"),
        (
            {"a": 1.0},
            {"d": torch.ones(2)},
            ValueError,
            r"losses_D\['d'\] must be a single number.*\(2,\)",
        ),
        ({"a": torch.tensor(1j)}, {"d": 1.0}, TypeError, "complex64 tensor"),
    ],
)
def test_bad_losses_name_the_problem(vis, g, d, error, match):
    with pytest.raises(error, match=match):
        vis.update_loss_graphs(0, g, d)
    assert vis.stats.points_received == 0  # nothing half-recorded


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("1", TypeError),
        (None, TypeError),
        (True, TypeError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
    ],
)
def test_bad_graph_step(vis, step, error):
    with pytest.raises(error, match="graph_step"):
        vis.update_loss_graphs(step, {"a": 1.0}, {"d": 1.0})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"env": ""}, "env"),
        ({"port": "8097"}, "port"),
        ({"port": 0}, "port"),
        ({"update_interval": 0}, "update_interval"),
        ({"max_points": 1}, "max_points"),
        ({"max_image_rows": 0}, "max_image_rows"),
        ({"request_timeout": -1}, "request_timeout"),
        ({"request_timeout": (1.0, 0)}, "request_timeout"),
        ({"username": "u"}, "together"),
        ({"server": "ftp://h"}, "http"),
        ({"image_format": "gif"}, "image_format"),
    ],
)
def test_bad_constructor_arguments(visdom_server, kwargs, match):
    args = {"server": "http://127.0.0.1", "port": visdom_server.port} | kwargs
    with pytest.raises(ValueError, match=match):
        VisdomVisualizer(**args)


def test_different_sizes_are_fitted_into_square_cells(vis, visdom_server, env_name):
    white = torch.ones(3, 16, 16)
    tall = torch.ones(1, 1, 32, 8)  # 1 channel, 4:1 tall
    wide = torch.ones(3, 8, 32)  # 1:4 wide
    vis.update_images(white, tall, wide, "sizes", image_size=16)
    pixels, _ = grid_pixels(visdom_server, env_name)
    assert pixels.shape == (16, 3 * 16 + 4, 3)
    assert (pixels[:, :16] == 255).all()
    tall_cell = pixels[:, 18:34, 0]
    assert (tall_cell[:, 6:10] == 255).all() and (tall_cell[:, :6] < 64).all()
    wide_cell = pixels[:, 36:52, 0]
    assert (wide_cell[6:10] == 255).all() and (wide_cell[:6] < 64).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.uint8])
def test_any_float_dtype_and_uint8(vis, visdom_server, env_name, dtype):
    if dtype == torch.uint8:
        t = torch.full((3, 8, 8), 255, dtype=dtype)
    else:
        t = torch.ones(3, 8, 8, dtype=dtype)
    vis.update_images(t, t, t, "dtype", image_size=8)
    pixels, _ = grid_pixels(visdom_server, env_name)
    assert pixels[4, 4].tolist() == [255, 255, 255]


def test_out_of_range_nan_grad_and_odd_layouts(vis, visdom_server, env_name):
    loud = torch.full((1, 3, 8, 8), 5.0, requires_grad=True) * 1.0  # > 1, has grad history
    quiet = torch.full((3, 8, 8), -7.0)
    nan = torch.full((1, 3, 8, 8), float("nan")).to(memory_format=torch.channels_last)
    vis.update_images(loud, quiet, nan, "odd", image_size=8)
    pixels, _ = grid_pixels(visdom_server, env_name)
    assert pixels[4, 4].tolist() == [255, 255, 255]
    assert pixels[4, 14].tolist() == [0, 0, 0]
    assert pixels[4, 24].tolist() == [128, 128, 128]


def test_snapshot_is_a_copy(visdom_server, env_name):
    vis = connect(visdom_server, env_name, update_interval=60)
    vis.start_thread()
    t = torch.ones(1, 3, 8, 8)
    vis.update_images(t, t, t, "copy", image_size=8)
    t.fill_(-1.0)  # the training loop reuses its buffers
    vis.stop_thread()
    pixels, _ = grid_pixels(visdom_server, env_name)
    assert pixels[4, 4].tolist() == [255, 255, 255]


def test_update_text_checks(vis):
    with pytest.raises(TypeError, match="text must be a str"):
        vis.update_text(3)
    with pytest.raises(ValueError, match="win"):
        vis.update_text("x", win="loss_G")
