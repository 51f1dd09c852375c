"""The TUI's TensorFlow process: answers, failures that keep their kind and traceback, an end
that never leaves a worker waiting, and requests that never wait for a running drift."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import cast

import numpy as np
import pytest
from conftest import SAMPLES, SEED

from bntui.core import open_model
from bntui.core.steps import Computation, compute
from bntui.tf_bridge import Capture, CaptureUnavailable, TensorFlowUnavailable, Verification
from bntui.tui.tensorflow_process import DRIFT_INPUT_SAMPLES, TensorFlowFailed, TensorFlowProcess


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


# -- requests are multiplexed: a drift never holds up the other requests ---------------------

SEED_KERAS = SAMPLES / "seed.keras"
#: Six million batches of 8: far longer than any test, so the drift can only end by a cancel.
ENDLESS_DRIFT = "normal:0:50000000x2x1"
#: Seconds to wait for what a working process does in well under a second once TensorFlow is in.
ANSWER_TIMEOUT = 60.0
#: TensorFlow's import and the model's load come before a drift's first batch.
FIRST_PROGRESS_TIMEOUT = 300.0


class Progress:
    """A drift's progress callback the test can wait on (no sleeping in the hope it moved)."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, int]] = []
        self._changed = threading.Condition()

    def __call__(self, done: int, total: int) -> None:
        with self._changed:
            self.reports.append((done, total))
            self._changed.notify_all()

    def wait_beyond(self, count: int, timeout: float) -> bool:
        """True once more than ``count`` reports have arrived."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.reports) > count, timeout)


class Outcome:
    """Runs a call in a thread and keeps what it returned or raised."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.value: object = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(call,), daemon=True)
        self.thread.start()

    def _run(self, call: Callable[[], object]) -> None:
        try:
            self.value = call()
        except BaseException as err:  # noqa: BLE001 - recorded for the assertions
            self.error = err

    def result(self, timeout: float = ANSWER_TIMEOUT) -> object:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"no answer within {timeout} s"
        if self.error is not None:
            raise self.error
        return self.value


def start_endless_drift(process: TensorFlowProcess, progress: Progress) -> Outcome:
    """A drift that is running (it has reported progress) when this returns."""
    info = open_model(SEED_KERAS)
    drift = Outcome(lambda: process.drift(info, ENDLESS_DRIFT, batch_size=8, progress=progress))
    assert progress.wait_beyond(0, FIRST_PROGRESS_TIMEOUT), "the drift never started"
    return drift


@pytest.mark.tensorflow
@pytest.mark.slow
def test_checks_are_answered_while_a_drift_runs_and_the_drift_still_cancels() -> None:
    """Verify, capture and drift_input come back while a drift that cannot end by itself keeps
    going; Esc's cancel still stops it, and a late cancel for it never stops the next run."""
    process = TensorFlowProcess()
    process.prepare()
    progress = Progress()
    try:
        drift = start_endless_drift(process, progress)
        running = process._drift
        assert running is not None

        layer = open_model(SEED).layers[0]
        verdict = Outcome(lambda: process.verify(compute(layer, np.array([[1.0], [5.0]]))))
        captured = Outcome(lambda: process.capture(SEED, "bn", "ones:3x2x1"))
        taken = Outcome(lambda: process.drift_input(SEED_KERAS, layer, 0, "normal:7:64x2x1", 2.0))
        assert cast(Verification, verdict.result()).agrees
        np.testing.assert_array_equal(cast(Capture, captured.result()).layer_input, np.ones((3, 2, 1)))
        assert cast(np.ndarray, taken.result()).shape == (DRIFT_INPUT_SAMPLES, 2, 1)

        # Everything above was answered, and the drift is still running: it reports again.
        answered = len(progress.reports)
        assert drift.thread.is_alive()
        assert progress.wait_beyond(answered, ANSWER_TIMEOUT), "the drift stopped while the checks ran"
        done, total = progress.reports[-1]
        assert 0 < done < total == 50_000_000

        assert process.cancel_drift()
        assert drift.result() is None  # cancelled: nothing measured
        assert not process.cancel_drift()

        # A cancel reaching the process after its run ended never stops the next one.
        assert process._connection is not None
        process._connection.send(("cancel", (running.request,)))
        result = process.drift(open_model(SEED_KERAS), "normal:0:64x2x1", batch_size=8)
        assert result is not None and result.samples == 64
    finally:
        process.close()


@pytest.mark.tensorflow
def test_concurrent_verifies_each_get_their_own_answer() -> None:
    """Eight verifies sent together, each on an input of its own size and values: every answer
    is TensorFlow's output for that caller's input, never a neighbour's."""
    process = TensorFlowProcess()
    process.prepare()
    layer = open_model(SEED).layers[0]
    computations = [compute(layer, np.arange(1.0, count + 2.0).reshape(-1, 1) * (count + 1) / 3)
                    for count in range(8)]
    together = threading.Barrier(len(computations))

    def verify(computation: Computation) -> Callable[[], object]:
        def call() -> object:
            together.wait(FIRST_PROGRESS_TIMEOUT)
            return process.verify(computation)
        return call

    try:
        process.verify(computations[0])  # TensorFlow is in: the eight below truly overlap
        calls = [Outcome(verify(computation)) for computation in computations]
        for computation, call in zip(computations, calls):
            verdict = cast(Verification, call.result())
            expected = computation.result("inference").output
            assert verdict.inference.tensorflow_output.shape == expected.shape
            np.testing.assert_allclose(verdict.inference.tensorflow_output, expected, rtol=1e-5)
    finally:
        process.close()


@pytest.mark.tensorflow
@pytest.mark.slow
def test_a_killed_process_fails_every_waiter_with_tensorflow_unavailable() -> None:
    """The child dies while a drift runs, three requests wait in it and a second drift waits
    behind the first: each of them, and any later call, hears that the process ended."""
    process = TensorFlowProcess()
    process.prepare()
    progress = Progress()
    try:
        first = start_endless_drift(process, progress)
        link = process._link
        assert link is not None and link.process.pid is not None
        os.kill(link.process.pid, signal.SIGSTOP)  # nothing sent from now on can be answered
        layer = open_model(SEED).layers[0]
        waiters = [
            Outcome(lambda: process.verify(compute(layer, np.array([[1.0]])))),
            Outcome(lambda: process.capture(SEED, "bn", "zeros")),
            Outcome(lambda: process.drift_input(SEED_KERAS, layer, 0, "zeros:8x2x1", 1.0)),
            Outcome(lambda: process.drift(open_model(SEED_KERAS), "zeros:8x2x1")),
        ]
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while len(link._waiting) < 4 and time.monotonic() < deadline:  # the drift, and three sent
            time.sleep(0.01)
        assert len(link._waiting) == 4
        os.kill(link.process.pid, signal.SIGKILL)
        for waiter in [first, *waiters]:
            with pytest.raises(TensorFlowUnavailable, match="the TensorFlow process ended"):
                waiter.result()
        with pytest.raises(TensorFlowUnavailable, match="the TensorFlow process ended"):
            process.verify(compute(layer, np.array([[2.0]])))
    finally:
        process.close()
