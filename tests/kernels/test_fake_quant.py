"""FAKE_QUANT against LiteRT, on hand-built models (TF 2.21's converter folds fake-quant nodes
into QUANTIZE/DEQUANTIZE; older converters and some QAT exports keep the op)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.litert_oracle import litert_interpreter
from workbench.errors import ModelError, UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.ir.graph import Model, Operator, Subgraph
from workbench.ir.ops import FakeQuantOptions, Op

F32 = np.float32


def fake_quant_model(lo, hi, bits, narrow, n=64):
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    x, y = sg.new_tensor("x", (n,), F32), sg.new_tensor("y", (n,), F32)
    sg.inputs.append(x)
    sg.outputs.append(y)
    sg.add_operator(Operator(m.opcode(Op.FAKE_QUANT), [x], [y],
                             options=FakeQuantOptions(min=lo, max=hi, num_bits=bits,
                                                      narrow_range=narrow)))
    return m.to_bytes()


@pytest.mark.parametrize("lo,hi,bits", [
    (-1.0, 2.0, 8), (-0.7, 1.3, 4), (0.0, 6.0, 8), (-3.0, 0.0, 8), (-0.1, 12.7, 5),
    (-2.5, 2.5, 16), (-1e-3, 7e-4, 3)])
def test_fake_quant_matches_litert(lo, hi, bits):
    narrow = False
    content = fake_quant_model(lo, hi, bits, narrow, n=256)
    rng = np.random.default_rng(bits)
    scale = (hi - lo) / ((1 << bits) - 1 - int(narrow))
    # values on, between and exactly half-way between levels, beyond the range, and specials
    k = rng.integers(-5, (1 << min(bits, 8)) + 5, 200)
    x = np.concatenate([(lo + (k + rng.choice([0.0, 0.5, 0.25, -0.5], 200)) * scale),
                        rng.standard_normal(50) * (hi - lo),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, lo, hi]]).astype(F32)[:250]
    # just below a half step above the minimum: a rounding that adds 0.5 in float32 gets 1
    below_half = np.nextafter(F32(0.5), F32(0)) * F32(scale)
    x = np.concatenate([x, np.full(6, F32(lo) + below_half, F32)])
    ref = litert_interpreter(content)
    ref.allocate_tensors()
    ref.set_tensor(ref.get_input_details()[0]["index"], x)
    ref.invoke()
    want = ref.get_tensor(ref.get_output_details()[0]["index"])
    got = Interpreter(model_content=content).run([x])[0]
    np.testing.assert_array_equal(got, want)


def test_fake_quant_narrow_range_is_refused_as_litert():
    content = fake_quant_model(-1.0, 1.0, 8, True)
    with pytest.raises(RuntimeError, match="narrow_range"):
        litert_interpreter(content).allocate_tensors()
    with pytest.raises(UnsupportedOpError, match="FAKE_QUANT.*narrow_range"):
        Interpreter(model_content=content).allocate_tensors()


@pytest.mark.parametrize("lo,hi,bits", [(1.0, 2.0, 8), (-1.0, -0.5, 8), (0.0, 0.0, 8),
                                         (-1.0, 1.0, 1), (-1.0, np.inf, 8)])
def test_fake_quant_rejects_ranges_without_zero_or_bad_bits(lo, hi, bits):
    with pytest.raises(ModelError, match="FAKE_QUANT"):
        Interpreter(model_content=fake_quant_model(lo, hi, bits, False)).allocate_tensors()
