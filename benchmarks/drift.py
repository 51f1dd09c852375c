"""Drift's cost: overhead against a bare ``model.predict``, and memory against the sample count.

Usage (from the repository root, with the test extras installed):

    python benchmarks/drift.py            # ResNet50, 256 and 2048 samples of 224x224x3
    python benchmarks/drift.py --quick    # a small conv net, 256 and 2048 samples of 32x32x3 (what CI runs)

Every measurement runs in a fresh Python process with the same imports and the model already
loaded before the clock starts, over the same ``.npy`` data (memory-mapped), batch size 32:

- ``predict``: ``model.predict(data)``, the bare forward pass as Keras users run it;
- ``forward``: the graph drift runs (``model(x, training=False)`` in a ``tf.function``) without
  the statistics: what collecting the statistics is measured against;
- ``drift``: :func:`bntui.tf_bridge.drift.run_pass`, every BN layer's moments collected.

Goals (issue 13): drift at most 1.3x predict; collecting at most a third of the forward pass
(``drift / forward - 1 <= 1/3``); peak RSS of a drift run over the large sample count within
10 % of the small runs' median (each in a fresh process: a second pass in the same process
would add its own traced graph to the peak, which is not the data's doing).

Each ratio is given twice. *Whole run*: from the first batch to the last, tracing included, as a
user's run of 256 samples is. *Per batch*: the median time between batches after the first, the
steady state that a long run approaches (tracing, a fixed cost, no longer dilutes the statistics'
share there). The kinds run interleaved for ``--rounds`` rounds and each figure is the median
over rounds: this machine's load moves single runs by 20 % or more.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_models import DEFAULT_CACHE, build

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(HERE.parent)}

MEASURE = """
import json, resource, sys, time
import numpy as np
import keras
from bntui.tf_bridge.keras_loader import load_whole_model
from bntui.tf_bridge.drift import NpySource, run_pass
from bntui.tf_bridge.capturing import model_input_shape
import tensorflow as tf
kind, model_path, data_path, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
model = load_whole_model(model_path)
source = NpySource(data_path, model_input_shape(model))
ends = []  # when each batch finished: the first includes tracing, the others are the steady state
start = time.perf_counter()
if kind == "predict":
    mark = keras.callbacks.LambdaCallback(on_predict_batch_end=lambda *_, **__: ends.append(time.perf_counter()))
    model.predict(np.load(data_path, mmap_mode="r"), batch_size=batch, verbose=0, callbacks=[mark])
elif kind == "forward":
    shape = model_input_shape(model)
    step = tf.function(lambda x: model(x, training=False),
                       input_signature=[tf.TensorSpec([None, *shape[1:]], "float32")])
    for x in source.batches(batch):
        np.asarray(step(tf.constant(x)))
        ends.append(time.perf_counter())
else:
    run_pass(model, source, batch_size=batch, progress=lambda *_: ends.append(time.perf_counter()))
seconds = time.perf_counter() - start
steady = float(np.median(np.diff(ends))) if len(ends) > 2 else float("nan")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result = {"seconds": seconds, "first_batch": ends[0] - start, "per_batch": steady, "rss_mb": peak}
print(json.dumps(result))
"""


def _quick_model(cache: Path) -> Path:
    """A small conv net with 6 BN layers (32x32x3 input), built once into the cache."""
    path = cache / "drift_quick_convnet.keras"
    if not path.exists():
        import keras

        inputs = keras.Input((32, 32, 3))
        x = inputs
        for index, width in enumerate((16, 16, 32, 32, 64, 64)):
            x = keras.layers.Conv2D(width, 3, padding="same", strides=2 if index % 2 else 1, name=f"conv{index}")(x)
            x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
            x = keras.layers.ReLU()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        keras.Model(inputs, keras.layers.Dense(10)(x), name="drift_quick").save(path)
    return path


def _data(cache: Path, samples: int, shape: tuple[int, ...]) -> Path:
    """Seeded float32 normal data, written once in chunks (never all in memory)."""
    import numpy as np

    path = cache / f"drift_{samples}x{'x'.join(map(str, shape))}.npy"
    if not path.exists():
        rng = np.random.default_rng(0)
        partial = path.with_suffix(".partial")
        array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(samples, *shape))
        for start in range(0, samples, 64):
            count = min(64, samples - start)
            array[start:start + count] = rng.standard_normal((count, *shape), dtype=np.float32)
        array.flush()
        del array
        partial.rename(path)
    return path


def _measure(kind: str, model: Path, data: Path, batch: int) -> dict[str, float]:
    result = subprocess.run([sys.executable, "-c", MEASURE, kind, str(model), str(data), str(batch)],
                            capture_output=True, text=True, env=ENV, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _median(runs: list[dict[str, float]], key: str) -> float:
    values = sorted(run[key] for run in runs)
    return values[len(values) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small case only (what CI runs)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds of predict, forward and drift, interleaved (default 3; 1 with --quick)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where models and data are built")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    rounds = args.rounds or (1 if args.quick else 3)
    if args.quick:
        model, shape, small, large, name = _quick_model(args.cache), (32, 32, 3), 256, 2048, "quick conv net"
    else:
        model = build(args.cache, names=("ResNet50",), extras=False)["ResNet50.keras"]
        shape, small, large, name = (224, 224, 3), 256, 2048, "ResNet50"
    batch = 32
    small_data, large_data = _data(args.cache, small, shape), _data(args.cache, large, shape)
    runs: dict[str, list[dict[str, float]]] = {"predict": [], "forward": [], "drift": []}
    for _ in range(rounds):  # interleaved, so a change in the machine's load touches every kind alike
        for kind, found in runs.items():
            found.append(_measure(kind, model, small_data, batch))
    large_run = _measure("drift", model, large_data, batch)  # a fresh process like the others
    total = {kind: _median(found, "seconds") for kind, found in runs.items()}
    steady = {kind: _median(found, "per_batch") for kind, found in runs.items()}
    print(f"{name}, {small} samples of {'x'.join(map(str, shape))}, batch {batch}, median of {rounds} round(s)")
    print(f"  {'':8} {'whole run':>10} {'first batch':>12} {'per batch':>10} {'peak RSS':>9}")
    for kind, found in runs.items():
        print(f"  {kind:8} {total[kind]:9.2f}s {_median(found, 'first_batch'):11.2f}s "
              f"{steady[kind] * 1000:8.0f}ms {_median(found, 'rss_mb'):7.0f}MB")
    print(f"  drift    {large_run['seconds']:9.2f}s {large_run['first_batch']:11.2f}s "
          f"{large_run['per_batch'] * 1000:8.0f}ms {large_run['rss_mb']:7.0f}MB  ({large} samples, one run)")
    memory = large_run["rss_mb"] / _median(runs["drift"], "rss_mb") - 1
    goals = [
        (f"drift / predict, whole run = {total['drift'] / total['predict']:.2f}", "<= 1.3",
         total["drift"] / total["predict"] <= 1.3),
        (f"drift / predict, per batch = {steady['drift'] / steady['predict']:.2f}", "<= 1.3",
         steady["drift"] / steady["predict"] <= 1.3),
        (f"collecting / forward, whole run = {total['drift'] / total['forward'] - 1:+.2f}", "<= 0.33",
         total["drift"] / total["forward"] - 1 <= 1 / 3),
        (f"collecting / forward, per batch = {steady['drift'] / steady['forward'] - 1:+.2f}", "<= 0.33",
         steady["drift"] / steady["forward"] - 1 <= 1 / 3),
        (f"peak RSS {large} vs {small} samples = {memory:+.1%}", "within 10%", abs(memory) <= 0.10),
    ]
    for text, goal, met in goals:
        print(f"  {text:46} goal {goal:10} {'met' if met else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
