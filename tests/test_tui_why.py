"""The Why? tab (issue 12's TUI): values pasted in the box are explained for the layer and input
the Steps tab shows; the best explanation's computation is set beside Keras' own, step by step;
the mode audit says what each call does.

The model is written by Keras 3 at test time: ``bn3`` (3 channels, weights set from a seeded
generator) and ``bn_forced``, called with ``training=True`` hard-coded. The "got" values come
from Keras itself (the layer called in training mode); expected numbers are computed here with
numpy from the weights Keras holds, never taken from bntui's output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SEED, SEED_VALUES
from tui_helpers import screen_of, settle, shown_text

from bntui.core.numbers import fmt
from bntui.tui.app import DEMO_INPUT, BntuiApp, make_app
from bntui.tui.panels.why import WhyPanel
from bntui.tui.widgets.computation_comparison import ComputationComparison
from bntui.tui.widgets.explanation_list import ExplanationList
from bntui.tui.widgets.given_values_bar import GivenValuesBar
from bntui.tui.widgets.mode_audit_view import ModeAuditView

#: A batch of 4 samples of the 3 channels of bn3.
BATCH = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, 3.5], [-0.25, 2.0, 1.0], [3.0, 1.0, -2.0]])


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """bn3 and bn_forced in one Keras 3 model, and what Keras computes with them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    rng = np.random.default_rng(12)
    inputs = keras.Input((3,), name="x")
    bn3 = keras.layers.BatchNormalization(name="bn3")
    forced = keras.layers.BatchNormalization(name="bn_forced")
    model = keras.Model(inputs, [bn3(inputs), forced(inputs, training=True)])
    bn3.set_weights([rng.uniform(0.5, 2.0, 3), rng.normal(0, 1, 3), rng.normal(0, 1, 3), rng.uniform(0.2, 3.0, 3)])
    path = tmp_path_factory.mktemp("why") / "why_model.keras"
    model.save(path)
    x = BATCH.astype(np.float32)
    return {
        "path": path,
        "weights": [np.asarray(w, dtype=np.float64) for w in bn3.get_weights()],
        # What Keras returns for bn3 in training mode: the values a user "got" from fit.
        "training_output": np.asarray(bn3(x, training=True), dtype=np.float64),
        # A plain call of the model: bn_forced runs in training mode because of the call site.
        "forced_plain_call": np.asarray(model(x)[1], dtype=np.float64),
    }


def typed(values: np.ndarray) -> str:
    """Values as a person pastes them: 9 significant digits, a float32's worth."""
    return ", ".join(f"{v:.9g}" for v in values.ravel())


async def explain_in_box(app: BntuiApp, pilot: Any, text: str, kind: str = "got") -> WhyPanel:
    """Show the Why? tab (w), choose got/expected, put the values in the box and press Enter."""
    await pilot.press("w")
    panel = screen_of(app).query_one(WhyPanel)
    bar = panel.query_one(GivenValuesBar)
    assert app.focused is bar.input  # w puts the keyboard in the box while nothing is explained
    if bar.kind != kind:
        await pilot.press("ctrl+t")  # got <-> expected, from the box
    assert bar.kind == kind
    bar.input.value = text
    await pilot.press("enter")
    await settle(app, pilot)
    return panel


async def test_seed_expectation_is_batch_standardisation(tmp_path: Path) -> None:
    """The README's story: [1, 5] expected to give [-1, 1]. That is the batch standardised with
    its own mean 3 and variance 4, no gamma, no beta; the detail shows where it leaves Keras."""
    app = make_app(str(SEED), verify=False, initial_input=DEMO_INPUT)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = await explain_in_box(app, pilot, "-1, 1", kind="expected")
        assert panel.found is not None
        first = panel.found.result.explanations[0]
        assert (first.code, first.reproduces) == ("batch_standardisation", True)
        status = shown_text(panel.query_one("#why-status"))
        assert "you expected [-1, 1]" in status and "explained: batch_standardisation" in status
        listed = shown_text(panel.query_one(ExplanationList))
        assert "batch_standardisation" in listed.splitlines()[1] and "yes" in listed.splitlines()[1]

        comparison = panel.query_one(ComputationComparison).comparison
        assert comparison is not None
        steps = {step.name: step for step in comparison.steps}
        parted = next(step for step in comparison.steps if step.differs)
        x = np.array([1.0, 5.0])
        assert parted.name == "mean"
        assert (parted.right, parted.wrong) == (fmt(SEED_VALUES["moving_mean"]), fmt(x.mean()))
        assert steps["variance"].wrong == fmt(x.var())  # biased, as a batch standardisation divides by n
        assert (steps["gamma"].wrong, steps["beta"].wrong) == ("1", "0")
        drawn = shown_text(panel.query_one(ComputationComparison))
        assert "◀ they part here" in next(line for line in drawn.splitlines() if line.startswith("mean"))

        # Esc leaves the box for the list; the keys move through the other explanations.
        await pilot.press("escape")
        assert app.focused is panel.query_one(ExplanationList)
        await pilot.press("down")
        await pilot.pause()
        second = panel.found.result.explanations[1]
        assert shown_text(panel.query_one("#why-text")).startswith(f"{second.code}: ")

        # e writes the explanations with the other panels' tables, never over a file.
        written = screen_of(app).action_export("json", tmp_path)
        why = [path for path in written if path.name.endswith("-why.json")]
        assert [path.name for path in why] == ["bn-why.json"]
        assert json.loads(why[0].read_text())["explanations"][0]["code"] == "batch_standardisation"

        # A new input is explained again with the same values: 3 inputs for 2 values is refused.
        screen_of(app).submit("1, 5, 9")
        await settle(app, pilot)
        await pilot.press("w")
        await pilot.pause()
        status = shown_text(panel.query_one("#why-status"))
        assert "Cannot explain -1, 1" in status and "2 values given" in status


async def test_random_values_are_unexplained() -> None:
    app = make_app(str(SEED), verify=False, initial_input=DEMO_INPUT)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = await explain_in_box(app, pilot, "17.3, -42.9")
        assert panel.found is not None
        assert panel.found.result.explanations[0].code == "unexplained"
        assert "unexplained: no known computation" in shown_text(panel.query_one("#why-status"))
        assert panel.query_one(ComputationComparison).display is False  # nothing to set beside Keras


async def test_a_nan_in_the_input_and_the_values_is_no_infinite_difference() -> None:
    """A NaN fed in comes out NaN: pasted back it agrees; a number pasted there is a mismatch
    the list counts (never an infinite max |diff|)."""
    v = SEED_VALUES
    x = np.array([2.0, 3.0])
    y = v["gamma"] * (x - v["moving_mean"]) / np.sqrt(v["moving_variance"] + 0.001) + v["beta"]
    app = make_app(str(SEED), verify=False, initial_input="2, 3, nan")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        panel = await explain_in_box(app, pilot, f"{y[0]:.8g}, {y[1]:.8g}, nan")
        assert panel.found is not None
        first = panel.found.result.explanations[0]
        assert (first.code, first.reproduces) == ("correct", True)
        rows = shown_text(panel.query_one(ExplanationList)).splitlines()[1:]
        assert rows and not any(" inf " in row for row in rows)
        pasted = np.array([float(f"{y[0]:.8g}"), float(f"{y[1]:.8g}")])
        assert "correct" in rows[0] and "yes" in rows[0] and "NaN" not in rows[0]
        assert f" {fmt(np.max(np.abs(y - pasted)), 4)} " in rows[0]

        panel.explain_text(f"{y[0]:.8g}, {y[1]:.8g}, 3")
        await settle(app, pilot)
        result = panel.found.result
        assert result.explanations[0].code == "unexplained" and result.explanations[1].code == "correct"
        rows = shown_text(panel.query_one(ExplanationList)).splitlines()[1:]
        assert "correct" in rows[1] and "+1 NaN" in rows[1] and " inf " not in rows[1]
        await pilot.press("escape", "down")
        await pilot.pause()
        detail = shown_text(panel.query_one("#why-text"))
        assert detail.startswith("correct: ") and "1 NaN where you have a number: NaN or infinite on one side" in detail


@pytest.mark.tensorflow
async def test_training_output_from_keras_is_batch_statistics(keras_model: dict[str, Any]) -> None:
    """Values Keras returned in training mode are named batch_statistics; each channel's detail
    parts from Keras at that channel's batch mean."""
    gamma, _beta, moving_mean, _variance = keras_model["weights"]
    app = make_app(str(keras_model["path"]), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        screen = screen_of(app)
        screen.jump_to("bn3")
        screen.submit(json.dumps(BATCH.tolist()))
        await settle(app, pilot)
        panel = await explain_in_box(app, pilot, typed(keras_model["training_output"]))
        assert panel.found is not None
        first = panel.found.result.explanations[0]
        assert (first.code, first.reproduces) == ("batch_statistics", True)
        await pilot.press("escape")  # out of the box, so n is the next channel again
        for channel in range(3):
            comparison = panel.query_one(ComputationComparison).comparison
            assert comparison is not None
            parted = next(step for step in comparison.steps if step.differs)
            assert (parted.name, parted.right, parted.wrong) == (
                "mean", fmt(moving_mean[channel]), fmt(BATCH[:, channel].mean()))
            steps = {step.name: step for step in comparison.steps}
            assert (steps["gamma"].right, steps["gamma"].wrong) == (fmt(gamma[channel]), fmt(gamma[channel]))
            assert steps["beta"].differs is False
            await pilot.press("n")
            await pilot.pause()

        # As many values as one channel has: they are that channel's (the one shown, here 1).
        await pilot.press("n")
        await pilot.pause()
        assert screen.channel == 1
        panel.explain_text(typed(keras_model["training_output"][:, 1]))
        await settle(app, pilot)
        assert panel.found is not None
        assert (panel.found.result.channel, panel.found.result.explanations[0].code) == (1, "batch_statistics")


@pytest.mark.tensorflow
async def test_mode_audit_of_a_hard_coded_training_call(keras_model: dict[str, Any]) -> None:
    """bn_forced is called with training=True in the model: Keras 3 then runs it with the batch's
    statistics in a plain model(x), as observed here, and the audit says so loudly."""
    x = BATCH
    standardised = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-3)  # gamma 1, beta 0, Keras' epsilon
    # float32 rounding of a standardisation of values of size ~3: well under 1e-5.
    np.testing.assert_allclose(keras_model["forced_plain_call"], standardised, atol=1e-5)
    app = make_app(str(keras_model["path"]), verify=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("w")
        view = screen_of(app).query_one(ModeAuditView)
        assert view.audit is not None and view.audit.call_training is None  # bn3, listed first
        screen_of(app).jump_to("bn_forced")
        await pilot.pause()
        assert view.audit is not None and view.audit.call_training is True
        drawn = shown_text(view)
        assert "training=True hard-coded at the call" in drawn
        assert "WARNING: training=True is hard-coded" in drawn
        lines = drawn.splitlines()
        plain = next(line for line in lines if line.startswith("model(x) "))
        predict = next(line for line in lines if line.startswith("predict / evaluate "))
        assert "batch statistics, updates them" in plain and "moving statistics, no update" in predict


def test_why_snapshot(snap_compare: Any) -> None:
    """The seed's [-1, 1] expectation explained: the list, the detail, the step where it parts."""

    async def run_before(pilot: Any) -> None:
        await settle(pilot.app, pilot)
        await explain_in_box(pilot.app, pilot, "-1, 1", kind="expected")
        await pilot.press("escape")  # the keyboard to the list: no blinking cursor in the picture
        await pilot.pause()

    app = make_app(str(SEED), verify=False, initial_input=DEMO_INPUT)
    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)
