"""Listing the same model saved in every format bntui reads: is a SavedModel as quick as an .h5?

Usage (from the repository root, with the test extras and tf-keras installed):

    python benchmarks/formats.py            # ResNet50, 5 runs each
    python benchmarks/formats.py --quick    # a small conv net, one run each (what the tests run)

One tf_keras model (``keras.applications`` with ``weights=None``, BN statistics set to
non-default values) is written as ``.h5``, SavedModel directory (and its TF 2.4 form, with the
Keras metadata inside saved_model.pb), TF2 checkpoint and a TF.js layers model (the test
suite's converter-layout writer), into the benchmark cache. Each
``bntui PATH --list --json`` runs in a fresh process; the medians of wall time and peak RSS
are printed, with the SavedModel/.h5 time ratio against the goal of issue 11 (at most 1.5).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from build_models import DEFAULT_CACHE, _set_statistics
from run import measure

GOAL_RATIO = 1.5


def _build(cache: Path, quick: bool) -> dict[str, Path]:
    """Write (or reuse) the model in each format; return format -> path."""
    name = "formats_small" if quick else "formats_ResNet50"
    folder = cache / name
    paths = {".h5": folder / "model.h5", "SavedModel": folder / "savedmodel", "SavedModel 2.4": folder / "savedmodel_tf24",
             "TF2 checkpoint": folder / "ckpt" / "w", "TF.js": folder / "tfjs"}
    if all(p.exists() or p.with_name(p.name + ".index").exists() for p in paths.values()):
        return paths
    import tf_keras as keras
    from formats_fixtures import tf24_form, write_tfjs

    folder.mkdir(parents=True, exist_ok=True)
    if quick:
        inputs = keras.Input((16, 16, 3))
        x = inputs
        for index in range(4):
            x = keras.layers.Conv2D(8 * (index + 1), 3, padding="same")(x)
            x = keras.layers.BatchNormalization(name=f"bn_{index}")(x)
        model = keras.Model(inputs, x, name="small")
    else:
        model = keras.applications.ResNet50(weights=None)
    _set_statistics(model, seed=50)
    model.save(paths[".h5"])
    model.save(paths["SavedModel"])
    model.save_weights(str(paths["TF2 checkpoint"]))
    if paths["SavedModel 2.4"].exists():
        shutil.rmtree(paths["SavedModel 2.4"])
    tf24_form(paths["SavedModel"], paths["SavedModel 2.4"])
    if not paths["TF.js"].exists():
        write_tfjs(paths[".h5"], paths["TF.js"], shard_bytes=4 * 1024 * 1024)
    return paths


def _size_mb(path: Path) -> float:
    """Bytes on disk of a file, a directory, or the files of a checkpoint prefix."""
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
    else:
        files = [path] if path.is_file() else list(path.parent.glob(path.name + ".*"))
    return sum(p.stat().st_size for p in files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small model, one run each")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    paths = _build(args.cache, args.quick)
    times: dict[str, float] = {}
    print(f"{'format':16} {'files MB':>9} {'seconds':>8} {'peak MB':>8}   (bntui PATH --list --json, median of {runs})")
    for kind, path in paths.items():
        seconds, peak, _ = measure([sys.executable, "-m", "bntui", str(path), "--list", "--json"], runs)
        times[kind] = seconds
        print(f"{kind:16} {_size_mb(path):9.1f} {seconds:8.3f} {peak:8.1f}")
    for kind in ("SavedModel", "SavedModel 2.4"):
        ratio = times[kind] / times[".h5"]
        verdict = "meets" if ratio <= GOAL_RATIO else "MISSES"
        print(f"{kind} / .h5 listing time: {ratio:.2f} ({verdict} the goal of at most {GOAL_RATIO})")


if __name__ == "__main__":
    main()
