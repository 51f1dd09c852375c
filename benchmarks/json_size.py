"""Output size of a computation's JSON on a realistic activation (issue 10's goal).

ResNet50's ``conv1_bn`` on a (1, 112, 112, 64) input used to write 1 GB of JSON in 26 s,
because every step of every channel was written whole. Now JSON summarises tensors over
65,536 values and shows 64 values per step and channel, saying so; ``--output x.npz`` keeps
the arrays. Measured in fresh processes, in one run, against ``--list --json`` of the same
file (the floor of starting bntui and reading the model), so the ratio says what the
computation and its JSON cost on top.

    python benchmarks/json_size.py            # 5 runs
    python benchmarks/json_size.py --quick    # 1 run (what the test suite runs)

Goal: under 1 s and under 5 MB by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(HERE.parent)}

BUILD = """
import sys, numpy as np, keras
inp = keras.Input((112, 112, 64))
out = keras.layers.BatchNormalization(name="conv1_bn", epsilon=1.001e-5)(inp)
model = keras.Model(inp, out)
rng = np.random.default_rng(0)
bn = model.get_layer("conv1_bn")
bn.set_weights([rng.normal(1, 0.2, 64), rng.normal(0, 0.5, 64), rng.normal(0, 2, 64), rng.uniform(0.1, 9, 64)])
model.save(sys.argv[1])
np.save(sys.argv[2], rng.normal(0, 3, (1, 112, 112, 64)))
"""


def _run(args: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bntui.cli", *args], capture_output=True, env=ENV, check=True)
    return time.perf_counter() - start, len(result.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run of each")
    options = parser.parse_args()
    runs = 1 if options.quick else 5
    with tempfile.TemporaryDirectory() as folder:
        model, x = Path(folder) / "conv1_bn.h5", Path(folder) / "x.npy"
        subprocess.run([sys.executable, "-c", BUILD, str(model), str(x)], env=ENV, check=True, capture_output=True)
        floor = [_run([str(model), "--list", "--json"])[0] for _ in range(runs)]
        measured = [_run([str(model), "--layer", "conv1_bn", "--input-file", str(x), "--json"]) for _ in range(runs)]
    seconds = statistics.median(t for t, _ in measured)
    size = measured[0][1]
    print(f"floor (--list --json)            {statistics.median(floor):.3f} s")
    print(f"conv1_bn (1,112,112,64) --json   {seconds:.3f} s, {size / 1e6:.2f} MB "
          f"({seconds / statistics.median(floor):.1f}x the floor)")
    print(f"goal: under 1 s and under 5 MB: {'met' if seconds < 1 and size < 5e6 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
