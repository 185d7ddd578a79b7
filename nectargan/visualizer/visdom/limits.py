"""Limits the visualizer enforces, kept free of torch so the config schema can import them."""

from __future__ import annotations

MAX_IMAGE_SIZE = 2048  # px per cell side; larger grids make multi-MB PNGs per update
