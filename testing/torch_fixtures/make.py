"""Write tiny PyTorch files with the torch this runs under, for tests that check files made by
other torch releases.

Run once per release and commit what it writes beside it::

    python testing/torch_fixtures/make.py            # the project's torch
    /tmp/torch28/bin/python testing/torch_fixtures/make.py   # a throwaway venv with torch 2.8

For torch ``X.Y.Z`` it writes ``torchscript-X.Y.Z.pt``, ``export-X.Y.Z.pt2`` and
``state_dict-X.Y.Z.pt``, and records them in ``manifest.json`` with the input and the output the
model gave under that torch. It needs only torch and numpy.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).parent
MANIFEST = HERE / "manifest.json"


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(4, 3)
        self.out = torch.nn.Linear(3, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.out(torch.relu(self.hidden(features))), dim=-1)


def main() -> None:
    version = torch.__version__.split("+")[0]
    torch.manual_seed(0)
    net = Tiny().eval()
    rows = torch.linspace(-2.0, 2.0, 8).reshape(2, 4)
    with torch.no_grad():
        expected = net(rows)
    files = {
        "torchscript": f"torchscript-{version}.pt",
        "export": f"export-{version}.pt2",
        "state_dict": f"state_dict-{version}.pt",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(net), str(HERE / files["torchscript"]))
        torch.export.save(torch.export.export(net, (rows,)), str(HERE / files["export"]))
        torch.save(net.state_dict(), str(HERE / files["state_dict"]))
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    manifest[version] = {
        "files": files,
        "input": rows.tolist(),
        "output": expected.tolist(),
    }
    MANIFEST.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
