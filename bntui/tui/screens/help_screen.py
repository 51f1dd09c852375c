"""F1 / ?: the keys, the formula, and inference against training in a few lines."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Markdown

HELP = """\
# bntui

**Inference** (what `model.predict` does) uses the statistics the layer *learned*:

    y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta

TensorFlow computes it in float32 as `x * s + (beta - moving_mean * s)` with
`s = gamma * rsqrt(moving_variance + epsilon)`; bntui shows that result and its distance
from the exact value in ulps. Under the steps, TensorFlow itself checks every number
(the first check loads TensorFlow, which takes a few seconds).

**Training** (`training=True`) uses the statistics of the batch it is given: the batch
mean and the *biased* batch variance (divided by n) over every axis but the channel axis.
That is why `[1, 5]` becomes about `[-1, 1] * gamma + beta` only in training mode.
A **frozen** layer (`trainable: false`) uses its moving statistics even then (Keras 3 and
tf.keras since TF 2.0); its batch-statistics result is shown as "if unfrozen". Under a
16-bit **dtype policy** (`mixed_float16`...) Keras casts the input to float16, computes in
float32 and casts the output back: both casts are rows of the steps.

Without `beta` (`center=False`) the layer adds 0; without `gamma` (`scale=False`) it
multiplies by 1.

## Keys

| key | does |
|---|---|
| `i` | type input values (`1, 5`, `[[1], [5]]`, one per channel, or a scalar) |
| `Enter` / `Esc` | compute / leave the input box |
| `l` | back to the layer list; `[` / `]` make it narrower / wider |
| `n` / `p` / `g` | next / previous channel / go to channel K |
| `m` | mode: both side by side, inference only, training only |
| `e` | export the shown tables as CSV (never overwrites) |
| `o` | load input from a `.npy` file |
| `c` | capture the layer's real input by running the whole model (TensorFlow, safe mode) |
| `s` / `a` / `d` | Steps / Parameters / Diagnostics tab |
| `w` / `t` / `f` / `r` | Why? (which computation gives the numbers you got) / Port / Fold / Data tab |
| `ctrl+p` | command palette: jump to a layer by name, switch mode, export JSON, export all layers |
| `Tab` / `shift+Tab` | move the keyboard between the layer list, the tab's tables and the boxes; in the step table `↑` `↓` `PgUp` `PgDn` scroll |
| `F1` / `?` | this help |
| `q` | quit |

In **Parameters**: `1`-`9` (or a click on a header) sort by that column, again to reverse;
`←` / `→` scroll the columns (the channel stays in view); `Enter` shows that channel's steps.
In **Diagnostics**: `Enter` shows the layer and channel of a finding.
In **Why?**: paste the numbers you got (`ctrl+t`: the numbers you expected instead), Enter
ranks the computations that give them; `Esc` leaves the box, `v` goes back to it.
In **Port** / **Fold**: the palette exports this layer to safetensors or ONNX / its folded
kernel and bias to `.npz`.
In **Data**: type a data spec (`normal:0:64x32x32x3`, a `.npy`, an image folder) and run it
through the model; `Esc` stops a run; `Enter` on a layer shows its steps with the input that
really reached it.

## Compare view (`bntui A B`)

| key | does |
|---|---|
| `c` / `s` / `u` | Channels / Steps / Summary tab |
| `t` | next parameter in the channel table; `1`-`5` sort, `Enter` shows that channel's steps |
| `i` / `o` | type an input / load a `.npy`: it goes through both layers side by side |
| `n` / `p` / `m` | next / previous channel, mode |
| `l` | back to the list of pairs |
| `q` | quit |
"""


class HelpScreen(ModalScreen[None]):
    """Modal help; any of Escape, q, F1 or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,f1,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            with VerticalScroll(id="help-text"):
                yield Markdown(HELP)
            yield Label("Esc closes · ↑/↓ scroll", id="help-hint")
