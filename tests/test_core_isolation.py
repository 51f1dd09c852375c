"""The core and the headless CLI path must not import TensorFlow, Keras or Textual."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, SEED

HEAVY = ("tensorflow", "keras", "tf_keras", "textual", "rich")


def _loaded_after(code: str) -> set[str]:
    script = code + "\nimport sys\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_imports_neither_tensorflow_nor_textual() -> None:
    loaded = _loaded_after(
        "import bntui.core, bntui.core.reader, bntui.core.steps, bntui.core.report, bntui.core.diagnostics, "
        "bntui.core.guarded_open, bntui.core.export"
    )
    assert "h5py" in loaded and "numpy" in loaded
    assert not loaded & set(HEAVY)


def test_list_json_path_stays_light() -> None:
    code = (
        "import io, contextlib\nfrom bntui.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()):\n    assert main([{str(SEED)!r}, '--list', '--json']) == 0\n"
        f"    assert main([{str(SEED)!r}, '--layer', 'bn', '--input', '1, 5', '--json']) == 0"
    )
    assert not _loaded_after(code) & set(HEAVY)


def test_headless_parent_leaves_numpy_and_h5py_to_the_reading_child() -> None:
    """The forked child reads and formats; the parent only prints (this is what makes
    ``--list --json`` start within a tenth of a second of ``import h5py, numpy``)."""
    code = (
        "import io, contextlib\nfrom bntui.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()) as out:\n    assert main([{str(SEED)!r}, '--list', '--json']) == 0\n"
        "assert '\"moving_variance\"' in out.getvalue()"
    )
    loaded = _loaded_after(code)
    assert not loaded & {"numpy", "h5py", *HEAVY}
