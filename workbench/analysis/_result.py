"""Shared plumbing of analysis result objects: compact escaped HTML, atomic writes, inputs.

Every analysis result (``profile``, ``memory_report``, ...) is a small object holding plain data
(pandas DataFrames, dicts) with a ``.df``, a ``.plot()`` returning a matplotlib ``Figure`` and an
``_repr_html_`` built from the helpers here: every string is escaped, there are no scripts, and
the CSS is inline and scoped to ``.wb-result`` so it cannot leak into the notebook.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from workbench import _io


def css(scope: str) -> str:
    """The inline stylesheet of our HTML reprs, scoped to the class ``scope``."""
    rules = """
.S{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:12px;
 line-height:1.35;color:inherit}
.S h4{margin:6px 0 4px 0;font-size:13px}
.S table{border-collapse:collapse;margin:2px 12px 8px 0;font-size:12px}
.S th,.S td{border:1px solid rgba(128,128,128,.35);padding:2px 6px;
 text-align:left;vertical-align:top}
.S th{background:rgba(128,128,128,.12)}
.S td.num{text-align:right;font-variant-numeric:tabular-nums}
.S .wb-row{display:flex;flex-wrap:wrap;align-items:flex-start}
.S .wb-note{color:#888;margin:2px 0 6px 0}
.S code{font-size:11px}
""".strip()
    return rules.replace(".S", "." + scope)


CSS = css("wb-result")


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if np.isnan(v):
            return ""
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 1:
            return f"{v:.3f}"
        return f"{v:.4f}"
    return str(v)


def html_table(df: pd.DataFrame, max_rows: int = 20) -> str:
    """A small escaped table of ``df`` (numbers right-aligned), truncated to ``max_rows``."""
    shown = df.head(max_rows)
    head = "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for v in rec:
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
                v, (bool, np.bool_))
            cls = ' class="num"' if num else ""
            cells.append(f"<td{cls}>{esc(_fmt(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    out = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    if len(df) > max_rows:
        out += f'<p class="wb-note">{max_rows} of {len(df)} rows shown</p>'
    return out


def kv_table(rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{esc(k)}</th><td>{esc(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def wrap(title: str, *parts: str) -> str:
    return (f'<div class="wb-result"><style>{CSS}</style><h4>{esc(title)}</h4>'
            + "".join(parts) + "</div>")


_FIGURE_CLASS = None


def figure(figsize: tuple[float, float]):
    """A matplotlib ``Figure`` on an Agg canvas, without pyplot (no global figure registry,
    works under any backend) that shows itself as a PNG in notebooks even when pyplot's inline
    backend was never activated."""
    global _FIGURE_CLASS
    if _FIGURE_CLASS is None:
        import io

        from matplotlib.figure import Figure

        class ResultFigure(Figure):
            def _repr_png_(self) -> bytes:
                buf = io.BytesIO()
                self.savefig(buf, format="png", dpi=100)
                return buf.getvalue()

        _FIGURE_CLASS = ResultFigure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _FIGURE_CLASS(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def atomic_write(path: str | os.PathLike, data: str | bytes, *, overwrite: bool = True) -> str:
    """:func:`workbench._io.atomic_write`; callers that must not clobber a user's file pass
    ``overwrite=False`` (their own ``overwrite`` argument)."""
    return _io.atomic_write(path, data, overwrite=overwrite)


def random_inputs(details: list[dict], seed: int = 0) -> list[np.ndarray]:
    """Seeded inputs matching ``get_input_details()``: standard normal floats; quantized integers
    uniform in [-100, 100] (clipped to the type); plain integers (indices, ids) in [0, 8];
    booleans 0/1."""
    rng = np.random.default_rng(seed)
    out = []
    for d in details:
        dt = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        if dt == np.bool_:
            out.append(rng.integers(0, 2, shape).astype(dt))
        elif np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            lo, hi = max(int(info.min), -100), min(int(info.max), 100)
            if tuple(d.get("quantization", (0.0, 0))) == (0.0, 0):
                lo, hi = 0, 8
            out.append(rng.integers(lo, hi, shape, endpoint=True).astype(dt))
        elif np.issubdtype(dt, np.floating):
            out.append(rng.standard_normal(shape).astype(dt))
        else:
            out.append(np.zeros(shape, dt))
    return out


def ordered_inputs(interp, inputs: Any) -> list[np.ndarray]:
    """``inputs`` as Interpreter.run accepts them (one array, a list in input order, or a dict by
    tensor or signature name) -> a list in the model's input order."""
    from workbench.errors import InputError

    sg = interp.model.main
    if isinstance(inputs, dict):
        by_name = {t.name: k for k, t in enumerate(sg.inputs)}
        for sd in interp.model.signature_defs:
            if sd.subgraph is sg:
                for name, t in sd.inputs.items():
                    for k, x in enumerate(sg.inputs):
                        if x is t:
                            by_name.setdefault(name, k)
        ordered: list = [None] * len(sg.inputs)
        for name, v in inputs.items():
            if name not in by_name:
                raise InputError(f"no model input named {name!r}; inputs are {sorted(by_name)}")
            ordered[by_name[name]] = v
        missing = [sg.inputs[k].name for k, v in enumerate(ordered) if v is None]
        if missing:
            raise InputError(f"missing model inputs {missing}")
        inputs = ordered
    elif isinstance(inputs, np.ndarray) or not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    if len(inputs) != len(sg.inputs):
        raise InputError(f"model has {len(sg.inputs)} inputs, got {len(inputs)}")
    return [np.asarray(x) for x in inputs]


def load_model(model):
    """A :class:`~workbench.ir.graph.Model` from a Model, a path or bytes."""
    from workbench import load
    from workbench.ir.graph import Model

    if isinstance(model, Model):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        return load(bytes(model))
    return load(os.fspath(model))
