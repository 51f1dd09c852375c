"""The TUI's TensorFlow process: answers, failures that keep their kind and traceback, and
an end that never leaves a worker waiting."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import SEED

from bntui.core import open_model
from bntui.core.steps import compute
from bntui.tf_bridge import CaptureUnavailable, TensorFlowUnavailable
from bntui.tui.tensorflow_process import TensorFlowFailed, TensorFlowProcess


@pytest.mark.tensorflow
def test_answers_and_failures_come_back_whole() -> None:
    process = TensorFlowProcess()
    process.prepare()
    try:
        layer = open_model(SEED).layers[0]
        verdict = process.verify(compute(layer, np.array([[1.0], [5.0]])))
        assert verdict.agrees and "TensorFlow agrees" in verdict.summary()
        # bntui's own refusal keeps its class and message
        with pytest.raises(CaptureUnavailable, match="has no layer 'no_such_layer'"):
            process.capture(SEED, "no_such_layer", "zeros")
        # anything else arrives with the child's traceback, so a bug there is never one line
        with pytest.raises(TensorFlowFailed) as failure:
            process.verify(None)  # type: ignore[arg-type]
        assert "Traceback" in failure.value.remote_traceback and "verify" in failure.value.remote_traceback
        verdict = process.verify(compute(layer, np.array([[2.0]])))  # still serving after a failure
        assert verdict.agrees
    finally:
        process.close()
    assert not process.started


def test_close_while_a_worker_waits_ends_it_at_once() -> None:
    """Quitting during TensorFlow's import: the process is terminated and the waiting thread
    gets a clear error instead of hanging."""
    process = TensorFlowProcess()
    process.prepare()
    layer = open_model(SEED).layers[0]
    outcome: list[BaseException] = []

    def wait_for_verdict() -> None:
        try:
            process.verify(compute(layer, np.array([[1.0]])))
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(err)

    worker = threading.Thread(target=wait_for_verdict)
    worker.start()
    while not process.started:
        time.sleep(0.01)
    started = time.monotonic()
    process.close()
    worker.join(10)
    assert not worker.is_alive() and time.monotonic() - started < 10
    assert len(outcome) == 1 and isinstance(outcome[0], TensorFlowUnavailable)
    assert "ended" in str(outcome[0])
