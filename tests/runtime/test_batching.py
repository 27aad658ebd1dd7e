"""Adaptive batching: concurrent requests merged into one framework call, results split back."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest
from modelport.runtime.app import create_app
from modelport.runtime.batching import Scheduler
from modelport.runtime.loaders.sklearn import SklearnModel
from modelport.runtime.settings import RuntimeSettings
from sklearn.ensemble import RandomForestClassifier

from testing.models import classification_data, sample_rows


class RecordingModel(SklearnModel):
    """The real sklearn model, remembering how many rows each framework call got."""

    def __init__(self, estimator) -> None:
        super().__init__(estimator)
        self.calls: list[int] = []

    def predict(self, inputs, outputs):
        self.calls.append(next(iter(inputs.values())).shape[0])
        return super().predict(inputs, outputs)


@pytest.fixture(scope="module")
def estimator() -> RandomForestClassifier:
    x, y = classification_data(n_rows=200)
    return RandomForestClassifier(n_estimators=20, random_state=0).fit(x, y)


def settings(**overrides: Any) -> RuntimeSettings:
    values: dict[str, Any] = {
        "model_name": "forest",
        "artifact_uri": "file:///unused",
        "format": "joblib",
        "auth_required": False,
        "max_batch_size": 32,
        # Each framework call takes a while, so requests pile up behind it and get merged.
        "debug_predict_delay_seconds": 0.02,
    }
    values.update(overrides)
    return RuntimeSettings(**values)


async def test_64_concurrent_requests_each_get_their_own_rows(estimator):
    model = RecordingModel(estimator)
    app = create_app(settings(), model=model)
    rows = sample_rows(64, seed=7)
    expected = estimator.predict(rows)
    expected_proba = estimator.predict_proba(rows)

    async def one(i: int, client: httpx.AsyncClient) -> dict[str, Any]:
        request = {
            "id": str(i),
            "inputs": [
                {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": rows[i].tolist()}
            ],
        }
        response = await client.post("/v2/models/forest/infer", json=request)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as client:
        answers = await asyncio.gather(*(one(i, client) for i in range(64)))

    for i, body in enumerate(answers):
        assert body["id"] == str(i)
        outputs = {o["name"]: o for o in body["outputs"]}
        assert outputs["predict"]["shape"] == [1]
        assert outputs["predict"]["data"] == [int(expected[i])]
        np.testing.assert_array_equal(outputs["predict_proba"]["data"], expected_proba[i])
    assert sum(model.calls) == 64
    assert max(model.calls) > 1, "requests waiting together must share a framework call"
    assert max(model.calls) <= 32


async def test_requests_of_several_rows_and_different_outputs_are_split_correctly(estimator):
    model = RecordingModel(estimator)
    scheduler = Scheduler(model, max_batch_size=16, call_delay_seconds=0.02)
    sizes = [1, 3, 2, 5, 1, 4]
    chunks = [sample_rows(n, seed=10 + i) for i, n in enumerate(sizes)]
    wanted = [("predict",), ("predict_proba",), ("predict", "predict_proba")] * 2
    results = await asyncio.gather(
        *(scheduler.predict({"input-0": c}, w) for c, w in zip(chunks, wanted, strict=True))
    )
    for chunk, want, result in zip(chunks, wanted, results, strict=True):
        assert set(result) == set(want)
        if "predict" in want:
            np.testing.assert_array_equal(result["predict"], estimator.predict(chunk))
        if "predict_proba" in want:
            np.testing.assert_array_equal(result["predict_proba"], estimator.predict_proba(chunk))
    assert sum(model.calls) == sum(sizes)
    assert len(model.calls) < len(sizes)
    scheduler.close()


async def test_a_failing_request_does_not_fail_the_batch(estimator):
    scheduler = Scheduler(SklearnModel(estimator), max_batch_size=16, call_delay_seconds=0.02)
    good = sample_rows(2)
    bad = np.full((1, 4), np.inf)  # scikit-learn refuses infinity
    results = await asyncio.gather(
        scheduler.predict({"input-0": good}, ("predict",)),
        scheduler.predict({"input-0": bad}, ("predict",)),
        scheduler.predict({"input-0": good}, ("predict",)),
        return_exceptions=True,
    )
    assert isinstance(results[1], ValueError)
    for result in (results[0], results[2]):
        assert not isinstance(result, BaseException)
        np.testing.assert_array_equal(result["predict"], estimator.predict(good))
    scheduler.close()


async def test_batching_stays_off_by_default(estimator):
    model = RecordingModel(estimator)
    scheduler = Scheduler(model, call_delay_seconds=0.01)
    await asyncio.gather(
        *(scheduler.predict({"input-0": sample_rows(1)}, ("predict",)) for _ in range(8))
    )
    assert model.calls == [1] * 8
    scheduler.close()


class ThreadRecordingModel(SklearnModel):
    """Remembers which thread ran each call, and can be made slow."""

    def __init__(self, estimator, sleep: float = 0.0) -> None:
        super().__init__(estimator)
        self.sleep = sleep
        self.threads: list[str] = []

    def predict(self, inputs, outputs):
        import threading
        import time

        self.threads.append(threading.current_thread().name)
        time.sleep(self.sleep)
        return super().predict(inputs, outputs)


async def test_tiny_calls_move_inline_and_slow_calls_stay_on_the_model_thread(estimator):
    fast = ThreadRecordingModel(estimator)
    scheduler = Scheduler(fast)
    for _ in range(12):
        await scheduler.predict({"input-0": sample_rows(1)}, ("predict",))
    assert fast.threads[0].startswith("modelport-model")
    assert fast.threads[-1] == "MainThread"

    slow = ThreadRecordingModel(estimator, sleep=0.005)
    scheduler = Scheduler(slow)
    for _ in range(12):
        await scheduler.predict({"input-0": sample_rows(1)}, ("predict",))
    assert all(name.startswith("modelport-model") for name in slow.threads)
    scheduler.close()


def test_linear_models_are_never_batched():
    """A linear model's row can differ by an ulp with its batch-mates (BLAS gemv vs gemm), so
    merging requests could change answers: the runtime keeps such models unbatched."""
    from sklearn.linear_model import LogisticRegression

    x, y = classification_data(n_rows=120)
    linear = SklearnModel(LogisticRegression(max_iter=500).fit(x, y))
    forest = SklearnModel(RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y))
    assert linear.batchable is False
    assert forest.batchable is True
    scheduler = Scheduler(linear, max_batch_size=16, call_delay_seconds=0.0)
    assert scheduler.batching is False
    scheduler.close()
