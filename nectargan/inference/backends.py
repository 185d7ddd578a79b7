"""The forward pass behind one interface: a torch generator or an onnxruntime session.

Both take a float32 ``(N, C, H, W)`` NumPy batch in [-1, 1] and return the same shape;
everything around the forward pass (decoding, sizing, writing) is shared.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from nectargan.inference.model_info import ModelInfo


class Backend(Protocol):
    info: ModelInfo
    name: str

    def run(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """A generator in eval mode, fp32, under ``torch.no_grad`` (what ``nectargan test`` runs)."""

    def __init__(self, generator, info: ModelInfo, device) -> None:
        import torch

        self.generator, self.info = generator.eval(), info
        self.device = torch.device(device)
        self.name = f"torch ({self.device})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
            return self.generator(x).float().cpu().numpy()


class OnnxBackend:
    """An onnxruntime session; the graph's first input and output, whatever their names."""

    def __init__(self, session, info: ModelInfo) -> None:
        self.session, self.info = session, info
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name
        self.name = f"onnxruntime ({', '.join(session.get_providers())})"

    def run(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([self.output_name], {self.input_name: x})[0]
