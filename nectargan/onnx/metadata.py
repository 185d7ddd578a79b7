"""The ``metadata_props`` written into every exported model, and reading them back.

A model file travels without its experiment directory; these strings say what it
expects (channels, size multiple, value range, direction) and where it came from
(NectarGAN version, epoch, config digest), so ``infer --model`` and other runtimes
need nothing else.
"""

from __future__ import annotations

from typing import Any

from nectargan import __version__
from nectargan.inference.model_info import ModelInfo

PREFIX = "nectargan."


def metadata_for(info: ModelInfo, **extra: Any) -> dict[str, str]:
    """String key/values for ``metadata_props`` (all ONNX allows)."""
    props: dict[str, Any] = {
        "version": __version__,
        "epoch": info.epoch if info.epoch is not None else "",
        "config_digest": info.config_digest or "",
        "n_downs": info.n_downs,
        "size_multiple": info.size_multiple,
        "channels": info.channels,
        "crop_size": info.crop_size,
        "normalization": info.normalization,
        "value_range": "[-1, 1]",
        "layout": "NCHW float32",
        "direction": info.direction,
        "features": "" if info.features is None else info.features,
        "block_type": info.block_type,
        "upsample": info.upsample,
        "static_hw": "" if info.static_hw is None else f"{info.static_hw[0]}x{info.static_hw[1]}",
        **extra,
    }
    return {PREFIX + key: str(value) for key, value in props.items()}


def info_from_metadata(props: dict[str, str]) -> ModelInfo | None:
    """The :class:`ModelInfo` of a model we exported; None for a foreign model."""
    get = {k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)}
    if "channels" not in get or "n_downs" not in get:
        return None
    static = get.get("static_hw") or ""
    return ModelInfo(
        channels=int(get["channels"]),
        n_downs=int(get["n_downs"]),
        crop_size=int(get.get("crop_size") or 2 ** int(get["n_downs"])),
        direction=get.get("direction") or "AtoB",
        normalization=get.get("normalization") or ModelInfo.normalization,
        epoch=int(get["epoch"]) if get.get("epoch") else None,
        config_digest=get.get("config_digest") or None,
        static_hw=tuple(int(v) for v in static.split("x")) if static else None,  # type: ignore[arg-type]
        features=int(get["features"]) if get.get("features") else None,
        block_type=get.get("block_type") or "plain",
        upsample=get.get("upsample") or "transpose",
    )


def write_metadata(model: Any, props: dict[str, str]) -> None:
    """Set ``props`` on an ``onnx.ModelProto``, replacing keys of the same name."""
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
