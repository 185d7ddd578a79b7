"""The forward pass behind one interface: a torch generator or an onnxruntime session.

Both take a float32 ``(N, C, H, W)`` NumPy batch in [-1, 1] and return the same shape;
everything around the forward pass (decoding, sizing, writing) is shared.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from nectargan.errors import DataUserError
from nectargan.inference.model_info import ModelInfo


class Backend(Protocol):
    info: ModelInfo
    name: str
    memory_device: str  # where the forward pass allocates: 'cpu' or 'cuda[:N]'
    runtime: str  # 'torch' or 'onnxruntime': its memory overhead (inference.memory)

    def run(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """A generator in eval mode, fp32, under ``torch.no_grad`` (what ``nectargan test`` runs)."""

    def __init__(self, generator, info: ModelInfo, device) -> None:
        import torch

        self.generator, self.info = generator.eval(), info
        self.device = torch.device(device)
        self.name = f"torch ({self.device})"
        self.memory_device, self.runtime = str(self.device), "torch"

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            return self.generator(x).float().cpu().numpy()


class OnnxBackend:
    """An onnxruntime session; the graph's first input and output, whatever their names.

    ``foreign``: the model carries no NectarGAN metadata, so its size rules are unknown
    and a shape it rejects is the caller's to fix (e.g. with ``--resize``), not a bug.
    """

    def __init__(self, session, info: ModelInfo, foreign: bool = False) -> None:
        self.session, self.info, self.foreign = session, info, foreign
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.name = f"onnxruntime ({', '.join(session.get_providers())})"
        on_gpu = session.get_providers()[0] == "CUDAExecutionProvider"
        self.memory_device, self.runtime = ("cuda" if on_gpu else "cpu"), "onnxruntime"

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        try:
            return self.session.run([self.output_name], {self.input_name: x})[0]
        except Exception as exc:  # onnxruntime's own error types
            if not self.foreign:
                raise
            raise DataUserError(
                f"the model rejected a {tuple(x.shape)} input ({str(exc).splitlines()[0]}); "
                "it is not a NectarGAN export, so its size rules are unknown: try --resize, "
                "which feeds it 256x256"
            ) from exc
