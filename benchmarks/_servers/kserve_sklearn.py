"""A minimal KServe model server for a joblib file, as KServe's own sklearn server does it.

Run with the peers' Python (benchmarks/requirements-peers.txt):
    python kserve_sklearn.py --model_name NAME --model_file /abs/model.joblib --http_port P
Every other flag is KServe's own (``kserve.model_server.parser``), left at its default.
"""

from __future__ import annotations

import argparse
from typing import Any

import joblib
import kserve
from kserve.utils.utils import get_predict_input, get_predict_response


class JoblibModel(kserve.Model):  # type: ignore[misc]
    """Loads the estimator with ``joblib.load`` and answers ``predict``, like SKLearnModel."""

    def __init__(self, name: str, model_file: str) -> None:
        super().__init__(name)
        self.model_file = model_file
        self.ready = False

    def load(self) -> bool:
        self._model = joblib.load(self.model_file)
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        instances = get_predict_input(payload)
        result = self._model.predict(instances)
        return get_predict_response(payload, result, self.name)


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_file", required=True, help="absolute path of the joblib file")
    args, _ = parser.parse_known_args()
    model = JoblibModel(args.model_name, args.model_file)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
