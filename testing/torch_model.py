"""A tiny torch module (imported only by fixtures that need torch)."""

from __future__ import annotations

import torch


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l = torch.nn.Linear(4, 2)
        self.register_buffer("steps", torch.zeros(2, dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.l(x)) + 1


class Attention(torch.nn.Module):
    """Convolution, layer norm and attention: enough operators to exercise the ONNX exporters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.LayerNorm(4)
        self.attn = torch.nn.MultiheadAttention(4, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.conv(x).flatten(2).transpose(1, 2))
        out: torch.Tensor = self.attn(y, y, y)[0]
        return out.softmax(-1)
