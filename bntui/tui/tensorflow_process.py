"""TensorFlow for the TUI, in a separate process started through multiprocessing's public API.

Importing TensorFlow loads shared libraries of hundreds of megabytes while holding Python's
GIL, which would freeze the interface for seconds if done in a thread. One spawned
``multiprocessing.Process`` imports it instead and answers requests over a ``Pipe``; the
TUI's thread workers wait without holding the GIL, so every key keeps its instant response.
The child points its own stderr at the null device, so TensorFlow's start-up log lines never
land on the screen, and sends failures back with their traceback.

Spawning a process needs multiprocessing's resource tracker, which inherits the parent's
stderr descriptor. Textual replaces ``sys.stderr`` with an object whose ``fileno()`` is -1,
so :meth:`TensorFlowProcess.prepare` starts the tracker while the real stderr is in place:
the app calls it before Textual takes over the terminal, and nothing swaps the global
``sys.stderr`` later.

Requests are multiplexed, because a drift pass runs for seconds to minutes and the Steps
view's "checked against TensorFlow" line must not wait for it:

- parent to child: ``("request", (id, name, pickled args))`` and ``("cancel", (id,))``;
- child to parent: ``(id, status, pickled payload)``, status ``progress`` (a drift's
  ``(done, total)``, at most every :data:`PROGRESS_INTERVAL` s and at the end), then exactly
  one of ``ok``, ``unavailable`` (bntui's own error: class and message) or ``failed``
  (message and the child's traceback).

Payloads travel pickled inside the message, so a payload that cannot be pickled or unpickled
fails its own request (in the child's job thread, or in the waiting caller's thread) and never
the pipe. The child's main thread only reads: it imports TensorFlow once, before serving, so
no two threads ever import it together, then starts one daemon thread per request and sets a
request's cancel event when its cancel arrives. In the parent, one reader thread per child
routes each message to the queue of the caller waiting for that id (a caller runs its own
progress callback, in its own thread), and one writer thread sends what callers queue, in
order, so no caller (least of all a cancel from the UI's thread) ever blocks on the pipe. When the child ends (closed, killed, crashed) the
reader hands every waiter, and every later caller, ``TensorFlowUnavailable("the TensorFlow
process ended")``.

What runs concurrently in the child:

- ``verify``, ``capture``, ``fold_check``: any number at once, and alongside a drift. Each
  builds or loads its own Keras objects; Keras 3 keeps its global state per thread, and
  TensorFlow runs separate calls from separate threads. (The loaders' ``quiet()`` swaps
  process-wide warning filters and fd 2; in this child fd 2 is always the null device and
  warnings go nowhere, so their interleaving changes nothing visible.)
- ``drift``: at most one at a time. The parent runs drifts one after another (a new one
  waits until the previous ends; the Data tab cancels the previous first), so a drift
  never waits for anything but a drift, and nothing else ever waits for a drift.
- ``drift_input``: one at a time (a lock in the child). It keeps the model it loaded for
  the next layer the user opens and wraps that model's layer ``call`` while recording, which
  two threads must not do together; the drift pass loads its own model, so a
  ``drift_input`` runs while a drift does.

A cancel names its request, so one that arrives late (after its run ended) is dropped and never
stops the next run. A caller that stops waiting (its thread interrupted) cancels its request.
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from bntui.core.analysis.drift import DriftResult
    from bntui.core.analysis.fold import LayerFold
    from bntui.core.model import BNLayer, FeedingLayer, ModelInfo
    from bntui.core.steps import Computation
    from bntui.tf_bridge.fold_check import FoldCheck

#: Seconds :meth:`TensorFlowProcess.close` waits for the terminated child before killing it.
STOP_TIMEOUT = 2.0
#: The child reports a drift's progress at most this often (seconds), and always at the end.
PROGRESS_INTERVAL = 0.05
#: Samples of the drift data fed again to capture one layer's input for the Steps view.
DRIFT_INPUT_SAMPLES = 8
#: What every waiter hears when the child is gone.
ENDED = "the TensorFlow process ended"

#: A reply as the reader routes it: status and the still-pickled payload (None: the child ended).
_Reply = tuple[str, bytes | None]


def _dumps(value: object) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


class Verdict(Protocol):
    """What the TUI reads of TensorFlow's verification (``bntui.tf_bridge.Verification``)."""

    @property
    def agrees(self) -> bool: ...

    def summary(self) -> str: ...


class CapturedInput(Protocol):
    """What the TUI reads of a capture (``bntui.tf_bridge.Capture``)."""

    @property
    def layer_input(self) -> np.ndarray: ...


class TensorFlowFailed(Exception):
    """TensorFlow raised something other than bntui's own errors; ``remote_traceback`` is
    the child's traceback, so a bug on that side is never reduced to one line."""

    def __init__(self, message: str, remote_traceback: str) -> None:
        super().__init__(message)
        self.remote_traceback = remote_traceback


# -- the child -------------------------------------------------------------------------------


@dataclass
class _Job:
    """One request being answered in the child: its id, the event its cancel sets, and when it
    last reported progress."""

    request: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    last_progress: float = 0.0


class _Child:
    """The child's side: the main thread reads requests and cancels; each request runs in a
    daemon thread of its own (daemon: when the parent goes, nothing keeps the child alive)."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        # Connection.send is not safe from several threads: one reply at a time.
        self._send_lock = threading.Lock()
        self._jobs: dict[int, _Job] = {}
        self._jobs_lock = threading.Lock()
        # drift_input's loaded model and its use (its layer's call is wrapped while recording).
        self._models_lock = threading.Lock()
        self._models: dict[str, Any] = {}

    def serve(self) -> None:
        """Answer requests until the pipe closes; TensorFlow is imported first, in this thread."""
        from bntui.core.errors import BntuiError
        from bntui.tf_bridge.keras_loader import import_keras

        try:
            import_keras()
        except BntuiError:
            pass  # each request raises the same clean TensorFlowUnavailable again
        while True:
            try:
                kind, payload = self.connection.recv()
            except (EOFError, OSError):
                with self._jobs_lock:
                    for job in self._jobs.values():
                        job.cancelled.set()  # nobody is waiting: a drift stops at its next batch
                return
            if kind == "cancel":
                with self._jobs_lock:
                    cancelled = self._jobs.get(payload[0])
                if cancelled is not None:  # else its run had already ended: a late cancel is dropped
                    cancelled.cancelled.set()
                continue
            request, name, args = payload
            job = _Job(request)
            with self._jobs_lock:  # before the next read, so a cancel right behind it finds the job
                self._jobs[request] = job
            threading.Thread(target=self._run, args=(job, name, args), name=f"bntui-tensorflow-{name}-{request}",
                             daemon=True).start()

    def _send(self, request: int, status: str, payload: object) -> None:
        data = _dumps(payload)  # before the lock: a payload pickle refuses fails this request only
        with self._send_lock:
            self.connection.send((request, status, data))

    def _run(self, job: _Job, name: str, args: bytes) -> None:
        from bntui.core.errors import BntuiError

        try:
            status, payload = "ok", self._handle(job, name, pickle.loads(args))
        except BntuiError as err:  # bntui's own refusals keep their class
            status, payload = "unavailable", (type(err), str(err))
        except Exception as err:  # noqa: BLE001 - sent back whole, raised again in the parent
            status, payload = "failed", (f"{type(err).__name__}: {err}", traceback.format_exc())
        finally:
            with self._jobs_lock:
                self._jobs.pop(job.request, None)
        try:
            try:
                self._send(job.request, status, payload)
            except (pickle.PicklingError, TypeError, AttributeError) as err:  # the answer cannot travel
                self._send(job.request, "failed", (f"{type(err).__name__}: {err}", traceback.format_exc()))
        except OSError:
            pass  # the parent is gone: nobody to answer

    def _handle(self, job: _Job, name: str, args: tuple[Any, ...]) -> Any:
        from bntui import tf_bridge
        from bntui.tf_bridge.fold_check import check_fold, make_input

        if name == "verify":
            return tf_bridge.verify(*args)
        if name == "capture":
            return tf_bridge.capture(*args)
        if name == "fold_check":
            layer, feeding, fold, spec = args
            return check_fold(layer, feeding, fold, make_input(feeding, spec))
        if name == "drift":
            return self._measure(job, *args)
        if name == "drift_input":
            return self._layer_input(*args)
        raise ValueError(f"no request named {name!r}")

    def _measure(self, job: _Job, info: ModelInfo, data: str, batch_size: int, scale: float) -> DriftResult:
        from bntui.tf_bridge.drift import measure_drift

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - job.last_progress >= PROGRESS_INTERVAL:
                job.last_progress = now
                self._send(job.request, "progress", (done, total))

        return measure_drift(info, data, batch_size=batch_size, scale=scale, progress=progress,
                             stop=job.cancelled.is_set)

    def _layer_input(self, model_path: str, layer_path: str, layer_name: str, call: int, data: str,
                     scale: float) -> np.ndarray:
        from bntui.tf_bridge.drift_inputs import layer_input_from_data
        from bntui.tf_bridge.keras_loader import load_whole_model

        with self._models_lock:
            if model_path not in self._models:
                self._models = {model_path: load_whole_model(model_path)}
            return layer_input_from_data(self._models[model_path], layer_path, layer_name, data, call=call,
                                         scale=scale, samples=DRIFT_INPUT_SAMPLES)


def _serve(connection: Connection) -> None:
    """The child process: silence fd 2, then answer requests until the pipe closes."""
    from bntui import tf_bridge

    tf_bridge.silence_stderr()
    _Child(connection).serve()


# -- the parent ------------------------------------------------------------------------------


class _Link:
    """One child process, the parent's end of its pipe, the reader thread that routes each
    message to the caller waiting for its request id, and the writer thread that sends.

    Callers only queue what they send (:meth:`post` never blocks): the child reads nothing
    while TensorFlow imports, and a large request would otherwise hold up whoever sends next,
    among them :meth:`TensorFlowProcess.cancel_drift`, called on the UI's own thread."""

    def __init__(self, context: SpawnContext) -> None:
        ours, theirs = context.Pipe()
        self.process: BaseProcess = context.Process(target=_serve, args=(theirs,), name="bntui-tensorflow",
                                                    daemon=True)
        self.process.start()
        theirs.close()  # only the child holds its end: its death is an EOF here
        self.connection = ours
        self._waiting: dict[int, queue.SimpleQueue[_Reply]] = {}
        self._waiting_lock = threading.Lock()
        self._ended = False
        # None ends the writer, which then closes the connection: by then the reader is done with it.
        self._outbox: queue.SimpleQueue[tuple[str, tuple[Any, ...]] | None] = queue.SimpleQueue()
        threading.Thread(target=self._read, name="bntui-tensorflow-replies", daemon=True).start()
        threading.Thread(target=self._write, name="bntui-tensorflow-requests", daemon=True).start()

    def post(self, message: tuple[str, tuple[Any, ...]]) -> None:
        """Send ``message`` in order after everything posted before it; dropped once the child ended."""
        self._outbox.put(message)

    def expect(self, request: int) -> queue.SimpleQueue[_Reply]:
        """Register a waiter for ``request`` (before sending it, so no reply can come first)."""
        from bntui.tf_bridge.keras_loader import TensorFlowUnavailable

        replies: queue.SimpleQueue[_Reply] = queue.SimpleQueue()
        with self._waiting_lock:
            if self._ended:
                raise TensorFlowUnavailable(ENDED)
            self._waiting[request] = replies
        return replies

    def forget(self, request: int) -> None:
        """The caller stopped waiting; anything still coming for ``request`` is dropped."""
        with self._waiting_lock:
            self._waiting.pop(request, None)

    def _read(self) -> None:
        try:
            while True:
                request, status, payload = self.connection.recv()
                with self._waiting_lock:
                    replies = self._waiting.get(request)
                if replies is not None:
                    replies.put((status, payload))
        except (EOFError, OSError):
            pass
        finally:  # whatever stopped the reading, no waiter may be left hanging
            with self._waiting_lock:
                self._ended = True
                waiting, self._waiting = self._waiting, {}
            for replies in waiting.values():
                replies.put(("ended", None))
            self._outbox.put(None)

    def _write(self) -> None:
        broken = False
        while (message := self._outbox.get()) is not None:
            if not broken:
                try:
                    self.connection.send(message)
                except OSError:
                    broken = True  # the child is gone: the reader's EOF tells every waiter
        self.connection.close()

    def stop(self) -> None:
        """End the child now: terminate, and kill it if it has not gone within :data:`STOP_TIMEOUT`."""
        self.process.terminate()
        self.process.join(STOP_TIMEOUT)
        if self.process.exitcode is None:
            self.process.kill()


@dataclass
class _DriftRun:
    """The drift that runs or waits in the parent: what :meth:`TensorFlowProcess.cancel_drift` stops."""

    request: int
    stop: threading.Event = field(default_factory=threading.Event)
    sent: bool = False


class _Stopped(Exception):
    """A drift cancelled before it was sent: nothing ran."""


class TensorFlowProcess:
    """Starts on first use, answers requests concurrently (see the module docstring for what
    may overlap); :meth:`close` ends it at once."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._link: _Link | None = None
        self._start_lock = threading.Lock()
        # Guards the drift in flight: its stop check and its posting are one step, so a cancel
        # either stops it before it is sent or is posted after it, never lost in between.
        self._drift_state = threading.Lock()
        # Drifts run one after another (module docstring); nothing else takes this lock.
        self._drift_lock = threading.Lock()
        self._requests = itertools.count()
        self._drift: _DriftRun | None = None

    @staticmethod
    def prepare() -> None:
        """Start multiprocessing's resource tracker now, while ``sys.stderr`` is the real one
        (see the module docstring). Cheap: it returns without waiting for the tracker."""
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()

    @property
    def started(self) -> bool:
        """True once the process has been started (TensorFlow may still be loading)."""
        return self._link is not None

    @property
    def _connection(self) -> Connection | None:
        """The parent's end of the pipe, None before start. Only tests write on it directly
        (a raw late cancel), while nothing else is being sent."""
        link = self._link
        return None if link is None else link.connection

    def _ensure_started(self) -> _Link:
        with self._start_lock:
            if self._link is None:
                self._link = _Link(self._context)
            return self._link

    def _call(self, name: str, *args: object, progress: Callable[[int, int], None] | None = None,
              drift: _DriftRun | None = None) -> Any:
        from bntui.tf_bridge.keras_loader import TensorFlowUnavailable

        link = self._ensure_started()
        request = next(self._requests) if drift is None else drift.request
        message = ("request", (request, name, _dumps(args)))  # a refused argument raises here, as is
        replies = link.expect(request)
        answered = sent = False
        try:
            if drift is None:
                link.post(message)
            else:
                with self._drift_state:
                    if drift.stop.is_set():
                        raise _Stopped
                    link.post(message)
                    drift.sent = True
            sent = True
            while True:
                status, payload = replies.get()
                if status != "progress":
                    answered = True
                    break
                if progress is not None and payload is not None:
                    progress(*pickle.loads(payload))
        finally:
            link.forget(request)
            if sent and not answered:  # the caller gave up (interrupted): the child need not go on
                link.post(("cancel", (request,)))
        if status == "ended" or payload is None:
            raise TensorFlowUnavailable(ENDED)
        value = pickle.loads(payload)
        if status == "ok":
            return value
        if status == "unavailable":
            kind, text = value
            raise kind(text)
        text, remote = value
        raise TensorFlowFailed(text, remote)

    def verify(self, computation: Computation) -> Verdict:
        """Blocking: run :func:`bntui.tf_bridge.verify` in the TensorFlow process."""
        result: Verdict = self._call("verify", computation)
        return result

    def fold_check(self, layer: BNLayer, feeding: FeedingLayer, fold: LayerFold, spec: str = "random:0") -> FoldCheck:
        """Blocking: Keras runs the feeding layer + BN against the folded layer on ``spec``'s
        input (:func:`bntui.tf_bridge.fold_check.check_fold`), in the TensorFlow process."""
        result: FoldCheck = self._call("fold_check", layer, feeding, fold, spec)
        return result

    def capture(self, model_path: str | Path, layer_path: str, spec: str) -> CapturedInput:
        """Blocking: run :func:`bntui.tf_bridge.capture` (safe mode) in the TensorFlow process."""
        result: CapturedInput = self._call("capture", str(model_path), layer_path, spec)
        return result

    def drift(self, info: ModelInfo, data: str, *, batch_size: int = 32, scale: float = 1.0,
              progress: Callable[[int, int], None] | None = None) -> DriftResult | None:
        """Blocking: run :func:`bntui.tf_bridge.drift.measure_drift` in the TensorFlow process,
        calling ``progress(done, total)`` as batches pass. None: :meth:`cancel_drift` stopped it.
        It waits only for the previous drift to end; other requests never wait for it."""
        from bntui.tf_bridge.drift import DriftCancelled

        run = _DriftRun(next(self._requests))
        with self._drift_state:
            self._drift = run
        try:
            with self._drift_lock:
                result: DriftResult = self._call("drift", info, data, batch_size, scale, progress=progress, drift=run)
                return result
        except (DriftCancelled, _Stopped):
            return None
        finally:
            with self._drift_state:
                if self._drift is run:
                    self._drift = None

    def cancel_drift(self) -> bool:
        """Stop the drift pass that runs or waits (at its next batch); False if there is none.
        Never blocks on the pipe: it is called on the UI's thread."""
        with self._drift_state:
            run, link = self._drift, self._link
            if run is None:
                return False
            run.stop.set()
            if run.sent and link is not None:
                link.post(("cancel", (run.request,)))
            return True

    def drift_input(self, model_path: str | Path, layer: BNLayer, call: int, data: str, scale: float) -> np.ndarray:
        """Blocking: what reaches ``layer`` (its ``call``-th call) on the first
        :data:`DRIFT_INPUT_SAMPLES` samples of the drift data (see :mod:`bntui.tf_bridge.drift_inputs`)."""
        result: np.ndarray = self._call("drift_input", str(model_path), layer.path, layer.name, call, data, scale)
        return result

    def close(self) -> None:
        """Stop the process at once, even in the middle of importing TensorFlow: quitting must
        not wait seconds for an import nobody needs any more. Every caller still waiting gets
        :class:`TensorFlowUnavailable` from the reader when the pipe reaches its end."""
        with self._start_lock:
            link, self._link = self._link, None
        if link is not None:
            link.stop()
