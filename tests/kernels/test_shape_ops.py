"""Shape and data-movement kernels against LiteRT's built-in kernels.

Each case converts a tiny TensorFlow function with TF's converter (cached per case), checks the
converter really emitted the op under test, runs it in ours and in LiteRT on the same inputs
and compares every output (float: 1e-4 of the range; everything else bit-exact). The same
models are re-typed (every float32 tensor becomes int8/uint8/int16 with quantization, int32,
int64, bool or float16) to prove these ops move any dtype; where LiteRT has no kernel for a
dtype, the float model's LiteRT output on the same (exactly representable) values is the
oracle. Options the converter never emits (ellipsis/new-axis masks, ``offset``, a fused
activation on CONCATENATION, legacy RESHAPE options) are set by editing the IR.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import workbench as wb
from tests.kernels.test_elementwise import Const, check_op, one_op
from tests.litert_oracle import litert_interpreter, random_inputs
from workbench.errors import InputError, ModelError, UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.ir import ops as O
from workbench.ir.graph import Buffer, Operator, QuantParams
from workbench.ir.ops import ActivationFunctionType, Op, ReshapeOptions, TensorType, tensor_type_of

_CACHE: dict[str, bytes] = {}


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def convert(tf, key: str, fn, specs, *, representative=None) -> bytes:
    """TFLite bytes of ``fn`` with the given input (shape, dtype) specs, cached per key."""
    if key not in _CACHE:
        f = tf.function(fn, input_signature=[tf.TensorSpec(s, d) for s, d in specs],
                        autograph=False)
        conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
        if representative is not None:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        _CACHE[key] = conv.convert()
    return _CACHE[key]


def op_names(content: bytes) -> list[str]:
    return [op.name for op in wb.load(content).main.operators]


def _run(it, xs, shapes=None):
    if shapes is not None:
        for d, s in zip(it.get_input_details(), shapes):
            it.resize_tensor_input(d["index"], list(s))
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def run_ours(content, xs, shapes=None):
    return _run(Interpreter(model_content=content), xs, shapes)


def run_litert(content, xs, shapes=None):
    return _run(litert_interpreter(content), xs, shapes)


def assert_same(got, expected, what=""):
    assert len(got) == len(expected)
    for k, (a, b) in enumerate(zip(got, expected)):
        assert a.shape == b.shape and a.dtype == b.dtype, \
            f"{what} output {k}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
        if b.dtype.kind == "f" and b.size:
            rng = float(np.max(b) - np.min(b))
            tol = 1e-4 * max(rng, 1e-6) + 1e-6
            np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64), rtol=0,
                                       atol=tol, err_msg=f"{what} output {k}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"{what} output {k}")


def check(content, xs=None, *, op=None, shapes=None, seed=0):
    """Ours == LiteRT on ``xs`` (default: the oracle's seeded random inputs)."""
    if op is not None:
        assert op in op_names(content), f"converter did not emit {op}: {op_names(content)}"
    if xs is None:
        ref = litert_interpreter(content)
        if shapes is not None:
            for d, s in zip(ref.get_input_details(), shapes):
                ref.resize_tensor_input(d["index"], list(s))
        ref.allocate_tensors()
        xs = random_inputs(ref.get_input_details(), seed)
    expected = run_litert(content, xs, shapes)
    got = run_ours(content, xs, shapes)
    assert_same(got, expected, op or "")
    return got


# --- IR editing helpers ---------------------------------------------------------------------

def edit(content: bytes, fn) -> bytes:
    m = wb.load(content)
    fn(m)
    return m.to_bytes()


def the_op(m, name: str):
    return next(o for o in m.main.operators if o.name == name)


def set_options(content, op_name, **changes) -> bytes:
    def f(m):
        op = the_op(m, op_name)
        op.options = dataclasses.replace(op.options, **changes)
    return edit(content, f)


def freeze_inputs(content, values: dict[int, np.ndarray]) -> bytes:
    """Turn model inputs (by position) into constants holding ``values``."""
    def f(m):
        sg = m.main
        for k, v in values.items():
            t = sg.inputs[k]
            v = np.asarray(v, dtype=t.numpy_dtype).reshape(t.shape)
            t.buffer = Buffer(v.reshape(-1).view(np.uint8).copy())
            t.shape_signature = None
        sg.inputs = [t for k, t in enumerate(sg.inputs) if k not in values]
    return edit(content, f)


QPARAMS = {np.dtype(np.int8): (0.5, -3), np.dtype(np.uint8): (0.5, 7),
           np.dtype(np.int16): (0.25, 0)}


def retype(content, dtype) -> bytes:
    """Every float32 tensor becomes ``dtype`` (quantized with one shared scale/zero point for
    int8/uint8/int16); float constants are converted."""
    dtype = np.dtype(dtype)

    def f(m):
        for t in m.main.tensors:
            if t.dtype != TensorType.FLOAT32:
                continue
            if t.is_constant:
                v = t.data.astype(dtype)
                t.buffer = Buffer(v.reshape(-1).view(np.uint8).copy())
            t.dtype = tensor_type_of(dtype)
            q = QPARAMS.get(dtype)
            t.quantization = QuantParams(scale=[q[0]], zero_point=[q[1]]) if q else None
    return edit(content, f)


def typed_inputs(content, dtype, seed=0):
    it = Interpreter(model_content=content)
    rng = np.random.default_rng(seed)
    out = []
    for d in it.get_input_details():
        dt = np.dtype(d["dtype"])
        if dt == np.bool_:
            out.append(rng.integers(0, 2, d["shape"]).astype(dt))
        elif dt.kind in "iu" and d["quantization"] == (0.0, 0) and dt != np.dtype(dtype):
            out.append(rng.integers(0, 3, d["shape"]).astype(dt))  # index inputs
        elif dt.kind in "iu":
            lo, hi = (0, 100) if dt.kind == "u" else (-60, 60)
            out.append(rng.integers(lo, hi, d["shape"]).astype(dt))
        else:
            out.append(rng.standard_normal(d["shape"]).astype(dt))
    return out


# --- the op zoo: (function, input specs, op) -------------------------------------------------

def _zoo(tf):
    F = tf.float32
    return {
        "concat_axis1": (lambda a, b: tf.concat([a, b], 1), [((2, 3, 4), F), ((2, 5, 4), F)],
                         "CONCATENATION"),
        "concat_neg_axis": (lambda a, b, c: tf.concat([a, b, c], -1),
                            [((2, 3), F), ((2, 1), F), ((2, 4), F)], "CONCATENATION"),
        "concat_rank1": (lambda a, b: tf.concat([a, b], 0), [((3,), F), ((5,), F)],
                         "CONCATENATION"),
        "concat_5d": (lambda a, b: tf.concat([a, b], 3),
                      [((1, 2, 1, 3, 2), F), ((1, 2, 1, 2, 2), F)], "CONCATENATION"),
        "split": (lambda x: tf.split(x, 3, axis=1), [((2, 6, 5), F)], "SPLIT"),
        "split_neg_axis": (lambda x: tf.split(x, 2, axis=-1), [((3, 4), F)], "SPLIT"),
        "split_v": (lambda x: tf.split(x, [1, -1, 2], axis=-1), [((2, 3, 7), F)], "SPLIT_V"),
        "split_v_axis0": (lambda x: tf.split(x, [2, 1, 0, 1], axis=0), [((4, 3), F)],
                          "SPLIT_V"),
        "pack": (lambda a, b, c: tf.stack([a, b, c], axis=1), [((2, 3), F)] * 3, "PACK"),
        "pack_neg_axis": (lambda a, b: tf.stack([a, b], axis=-1), [((4, 2), F)] * 2, "PACK"),
        "pack_scalars": (lambda a, b: tf.stack([a, b]), [((), F)] * 2, "PACK"),
        "unpack": (lambda x: tf.unstack(x, axis=1), [((2, 3, 4), F)], "UNPACK"),
        "unpack_neg_axis": (lambda x: tf.unstack(x, axis=-1), [((3, 2), F)], "UNPACK"),
        "transpose_3d": (lambda x: tf.transpose(x, [2, 0, 1]), [((2, 3, 4), F)], "TRANSPOSE"),
        "transpose_5d": (lambda x: tf.transpose(x, [4, 2, 0, 3, 1]), [((2, 3, 1, 4, 2), F)],
                         "TRANSPOSE"),
        "transpose_6d": (lambda x: tf.transpose(x, [5, 1, 0, 2, 4, 3]),
                         [((2, 1, 3, 2, 1, 2), F)], "TRANSPOSE"),
        "slice": (lambda x: tf.slice(x, [1, 0, 2], [1, -1, 2]), [((3, 4, 5), F)], "SLICE"),
        "slice_int64": (lambda x: tf.slice(x, tf.constant([0, 1], tf.int64),
                                           tf.constant([-1, 2], tf.int64)), [((3, 4), F)],
                        "SLICE"),
        "ss_basic": (lambda x: x[1:3, ::2], [((4, 5), F)], "STRIDED_SLICE"),
        "ss_reverse": (lambda x: x[::-1, 3:0:-2], [((3, 6), F)], "STRIDED_SLICE"),
        "ss_negative": (lambda x: x[-3:-1, -1:-6:-1], [((5, 7), F)], "STRIDED_SLICE"),
        "ss_shrink": (lambda x: x[:, 1, ::-1], [((2, 3, 4), F)], "STRIDED_SLICE"),
        "ss_shrink_neg": (lambda x: x[-1, :, -2], [((3, 4, 5), F)], "STRIDED_SLICE"),
        "ss_ellipsis": (lambda x: x[..., 1:3], [((2, 3, 4), F)], "STRIDED_SLICE"),
        "ss_clamp": (lambda x: x[-10:10, 2:100:3], [((3, 8), F)], "STRIDED_SLICE"),
        "ss_5d": (lambda x: x[:, 1:, ::-1, :, 1], [((2, 3, 2, 2, 3), F)], "STRIDED_SLICE"),
        "gather_axis0": (lambda x: tf.gather(x, [3, 0, 3, 1]), [((4, 3), F)], "GATHER"),
        "gather_axis1_2d_idx": (lambda x: tf.gather(x, [[0, 2], [1, 1]], axis=1),
                                [((2, 3, 4), F)], "GATHER"),
        "gather_neg_axis": (lambda x: tf.gather(x, [1, 0], axis=-1), [((2, 3, 2), F)],
                            "GATHER"),
        "gather_batch_dims": (lambda x: tf.gather(x, [[0, 2, 1, 3], [1, 1, 0, 3]], axis=1,
                                                  batch_dims=1), [((2, 4, 3), F)], "GATHER"),
        "gather_batch_dims2": (lambda x: tf.gather(x, [[[1, 0]], [[0, 0]]], axis=2,
                                                   batch_dims=2), [((2, 1, 3, 2), F)],
                               "GATHER"),
        "gather_int64_idx": (lambda x: tf.gather(x, tf.constant([2, 0], tf.int64), axis=1),
                             [((3, 4), F)], "GATHER"),
        "gather_nd_2": (lambda x: tf.gather_nd(x, [[0, 1], [2, 3], [0, 1]]), [((3, 4, 5), F)],
                        "GATHER_ND"),
        "gather_nd_full": (lambda x: tf.gather_nd(x, [[[0, 1, 2]], [[2, 3, 0]]]),
                           [((3, 4, 5), F)], "GATHER_ND"),
        "gather_nd_1": (lambda x: tf.gather_nd(x, [[1], [0]]), [((2, 3), F)], "GATHER_ND"),
        "scatter_nd": (lambda u: tf.scatter_nd([[0], [2], [0]], u, [4, 3]), [((3, 3), F)],
                       "SCATTER_ND"),
        "scatter_nd_2d": (lambda u: tf.scatter_nd([[[0, 1], [2, 2]], [[1, 0], [0, 1]]], u,
                                                  [3, 3, 2]), [((2, 2, 2), F)], "SCATTER_ND"),
        "pad_image": (lambda x: tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]]), [((1, 3, 4, 2), F)],
                      "PAD"),
        "pad_3d": (lambda x: tf.pad(x, [[1, 0], [0, 2], [3, 1]]), [((2, 3, 1), F)], "PAD"),
        "pad_5d": (lambda x: tf.pad(x, [[0, 1], [1, 0], [0, 0], [2, 1], [1, 1]]),
                   [((1, 2, 2, 1, 2), F)], "PAD"),
        "padv2": (lambda x: tf.pad(x, [[1, 1], [0, 2]], constant_values=3.0), [((2, 3), F)],
                  "PADV2"),
        "mirror_reflect": (lambda x: tf.pad(x, [[1, 2], [2, 0]], mode="REFLECT"),
                           [((3, 4), F)], "MIRROR_PAD"),
        "mirror_symmetric": (lambda x: tf.pad(x, [[0, 0], [3, 2], [1, 1], [0, 0]],
                                              mode="SYMMETRIC"), [((1, 3, 2, 2), F)],
                             "MIRROR_PAD"),
        "tile": (lambda x: tf.tile(x, [2, 1, 3]), [((2, 3, 2), F)], "TILE"),
        "tile_int64": (lambda x: tf.tile(x, tf.constant([3, 2], tf.int64)), [((1, 2), F)],
                       "TILE"),
        "broadcast_to": (lambda x: tf.broadcast_to(x, [2, 3, 4]), [((3, 1), F)],
                         "BROADCAST_TO"),
        "broadcast_to_5d": (lambda x: tf.broadcast_to(x, [2, 1, 3, 2, 4]), [((1, 3, 1, 4), F)],
                            "BROADCAST_TO"),
        "reverse_1": (lambda x: tf.reverse(x, [1]), [((2, 3, 4), F)], "REVERSE_V2"),
        "reverse_neg": (lambda x: tf.reverse(x, [-1]), [((2, 3), F)], "REVERSE_V2"),
        "reverse_multi": (lambda x: tf.reverse(x, [1, 2]), [((2, 3, 4), F)], "REVERSE_V2"),
        "depth_to_space": (lambda x: tf.nn.depth_to_space(x, 2), [((2, 2, 3, 8), F)],
                           "DEPTH_TO_SPACE"),
        "space_to_depth": (lambda x: tf.nn.space_to_depth(x, 2), [((1, 4, 6, 3), F)],
                           "SPACE_TO_DEPTH"),
        "space_to_batch": (lambda x: tf.space_to_batch_nd(x, [2, 2], [[1, 1], [0, 2]]),
                           [((2, 4, 4, 3), F)], "SPACE_TO_BATCH_ND"),
        "space_to_batch_3d": (lambda x: tf.space_to_batch_nd(x, [3], [[1, 2]]),
                              [((2, 6, 3), F)], "SPACE_TO_BATCH_ND"),
        "batch_to_space": (lambda x: tf.batch_to_space(x, [2, 2], [[0, 1], [1, 0]]),
                           [((8, 2, 3, 2), F)], "BATCH_TO_SPACE_ND"),
        "batch_to_space_3d": (lambda x: tf.batch_to_space(x, [3], [[1, 2]]),
                              [((6, 3, 2), F)], "BATCH_TO_SPACE_ND"),
        "reshape": (lambda x: tf.reshape(x, [-1, 6]), [((2, 3, 4), F)], "RESHAPE"),
        "squeeze": (lambda x: tf.squeeze(x, [1, -1]), [((None, 1, None, 1), F)], "SQUEEZE"),
        "squeeze_all": (lambda x: tf.squeeze(x), [((None, 1, None, 1), F)], "SQUEEZE"),
        "expand_dims": (lambda x: tf.expand_dims(x, -2), [((None, 3), F)], "EXPAND_DIMS"),
    }


ZOO_NAMES = [
    "concat_axis1", "concat_neg_axis", "concat_rank1", "concat_5d", "split", "split_neg_axis",
    "split_v", "split_v_axis0", "pack", "pack_neg_axis", "pack_scalars", "unpack",
    "unpack_neg_axis", "transpose_3d", "transpose_5d", "transpose_6d", "slice", "slice_int64",
    "ss_basic", "ss_reverse", "ss_negative", "ss_shrink", "ss_shrink_neg", "ss_ellipsis",
    "ss_clamp", "ss_5d", "gather_axis0", "gather_axis1_2d_idx", "gather_neg_axis",
    "gather_batch_dims", "gather_batch_dims2", "gather_int64_idx", "gather_nd_2",
    "gather_nd_full", "gather_nd_1", "scatter_nd", "scatter_nd_2d", "pad_image", "pad_3d",
    "pad_5d", "padv2", "mirror_reflect", "mirror_symmetric", "tile", "tile_int64",
    "broadcast_to", "broadcast_to_5d", "reverse_1", "reverse_neg", "reverse_multi",
    "depth_to_space", "space_to_depth", "space_to_batch", "space_to_batch_3d",
    "batch_to_space", "batch_to_space_3d", "reshape", "squeeze", "squeeze_all", "expand_dims",
]
#: Models with a dynamic (None) batch dimension run at this batch size.
DYNAMIC_BATCH = {"squeeze": [(3, 1, 2, 1)], "squeeze_all": [(1, 1, 3, 1)],
                 "expand_dims": [(4, 3)]}


def zoo_model(tf, name):
    fn, specs, op = _zoo(tf)[name]
    return convert(tf, name, fn, specs), op


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_float32_matches_litert(tf, name):
    content, op = zoo_model(tf, name)
    check(content, op=op, shapes=DYNAMIC_BATCH.get(name))


#: Per dtype, the zoo models LiteRT itself cannot run (it has no kernel for that dtype); the
#: float model's output on the same values is the oracle for those.
SWEEP_DTYPES = [np.int8, np.uint8, np.int16, np.int32, np.int64, np.bool_, np.float16]
SWEEP_NAMES = ZOO_NAMES


@pytest.mark.parametrize("dtype", SWEEP_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_dtype_moves_exactly(tf, dtype):
    """Each zoo model re-typed to ``dtype``: bit-exact with LiteRT, or with the float model's
    LiteRT output when LiteRT has no kernel for the dtype."""
    fallbacks = []
    for name in SWEEP_NAMES:
        content, op = zoo_model(tf, name)
        typed = retype(content, dtype)
        shapes = DYNAMIC_BATCH.get(name)
        if shapes is not None:
            it = litert_interpreter(typed)
            for d, s in zip(it.get_input_details(), shapes):
                it.resize_tensor_input(d["index"], list(s))
            it.allocate_tensors()
        xs = typed_inputs(typed, dtype) if shapes is None else [
            np.random.default_rng(0).integers(0, 2, s).astype(dtype) for s in shapes]
        got = run_ours(typed, xs, shapes)
        try:
            expected = run_litert(typed, xs, shapes)
        except (RuntimeError, ValueError):
            fallbacks.append(name)
            fx = [x.astype(np.float32) if x.dtype == np.dtype(dtype) else x for x in xs]
            expected = [e.astype(dtype) for e in run_litert(content, fx, shapes)]
        assert_same(got, expected, f"{name} as {np.dtype(dtype).name}")
    # LiteRT covers the quantized types for nearly everything: the fallback stays the exception.
    if np.dtype(dtype) in QPARAMS:
        assert len(fallbacks) < len(SWEEP_NAMES) // 2, fallbacks


# --- options the converter does not emit ------------------------------------------------------

def test_concatenation_fused_activation_on_float(tf):
    """LiteRT 2.x refuses a fused activation on CONCATENATION; we apply it (float only)."""
    content, _ = zoo_model(tf, "concat_axis1")
    xs = random_inputs(litert_interpreter(content).get_input_details(), 1)
    plain = run_litert(content, xs)[0]
    for act, ref in [(ActivationFunctionType.RELU, np.maximum(plain, 0)),
                     (ActivationFunctionType.RELU6, np.clip(plain, 0, 6)),
                     (ActivationFunctionType.RELU_N1_TO_1, np.clip(plain, -1, 1)),
                     # TFLite has no clamp range for a fused TANH: ops compute without it
                     (ActivationFunctionType.TANH, plain)]:
        (got,) = run_ours(set_options(content, "CONCATENATION", fused_activation_function=act),
                          xs)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    with pytest.raises(UnsupportedOpError):
        Interpreter(model_content=retype(set_options(
            content, "CONCATENATION", fused_activation_function=1), np.int32)).allocate_tensors()


# Strided-slice masks as (begin, end, strides, options): the begin/end/strides constants are
# replaced, and the same model runs in LiteRT. Input shape (2, 3, 4).
SS_CASES = {
    "ellipsis_first": ([0, 1], [0, 3], [1, 1], dict(ellipsis_mask=1)),
    "ellipsis_middle": ([1, 0, 2], [2, 0, 4], [1, 1, 1], dict(ellipsis_mask=2)),
    "ellipsis_last": ([1, 0], [2, 0], [1, 1], dict(ellipsis_mask=2)),
    "ellipsis_shrink": ([0, -1], [0, 0], [1, 1], dict(ellipsis_mask=1, shrink_axis_mask=2)),
    "new_axis_front": ([0, 0], [1, 2], [1, 1], dict(new_axis_mask=1)),
    "new_axis_middle": ([0, 0, 1], [2, 1, 3], [1, 1, 1], dict(new_axis_mask=2)),
    "new_axis_ellipsis": ([0, 0, 1], [1, 0, 3], [1, 1, 1],
                          dict(new_axis_mask=1, ellipsis_mask=2)),
    "new_axis_and_ellipsis_same_bit": ([0, 1], [0, 3], [1, 1],
                                       dict(new_axis_mask=1, ellipsis_mask=1)),
    "masks_negative_stride": ([1, 2, 3], [0, 0, 0], [-1, -1, -2],
                              dict(begin_mask=3, end_mask=6)),
    "shrink_all": ([1, -1, 2], [2, 0, 3], [1, 1, 1], dict(shrink_axis_mask=7)),
    "short_spec": ([1], [2], [1], dict()),
    "empty": ([1, 2], [1, 0], [1, 1], dict()),
    "empty_negative_stride": ([0, 3], [2, 0], [-1, -1], dict()),
    "offset": ([1, 0, 1], [1, 2, 3], [1, 1, 1], dict(offset=True)),
    "offset_strided": ([0, 2, 3], [2, -2, -3], [1, -1, -2], dict(offset=True)),
}


def _ss_model(tf, begin, end, strides, options):
    content = convert(tf, "ss_base3", lambda x: x[0:1, 0:2:2, 0:1], [((2, 3, 4), tf.float32)])

    def f(m):
        op = the_op(m, "STRIDED_SLICE")
        sg = m.main
        for k, v in ((1, begin), (2, end), (3, strides)):
            op.inputs[k] = sg.new_tensor(f"ss_{k}", [len(v)], np.int32, np.asarray(v, np.int32))
        base = dict(begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0,
                    shrink_axis_mask=0, offset=False)
        op.options = dataclasses.replace(op.options, **{**base, **options})
        op.outputs[0].shape = (1,)  # resized by both interpreters
        op.outputs[0].shape_signature = None
    return edit(content, f)


@pytest.mark.parametrize("case", list(SS_CASES))
def test_strided_slice_masks_match_litert(tf, case):
    content = _ss_model(tf, *SS_CASES[case])
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    check(content, [x], op="STRIDED_SLICE")


def test_strided_slice_offset_with_runtime_begin(tf):
    """With ``offset`` the output shape is known from ``end`` (the sizes) and ``strides`` even
    when ``begin`` is computed at run time."""
    content = convert(tf, "ss_dyn", lambda x, b: (x[0:2, 0:3:2], b + 1),
                      [((3, 5), tf.float32), ((2,), tf.int32)])

    def f(m):
        op = the_op(m, "STRIDED_SLICE")
        sg = m.main
        op.inputs[1] = sg.inputs[1]
        op.inputs[2] = sg.new_tensor("size", [2], np.int32, np.array([2, 3], np.int32))
        op.options = dataclasses.replace(op.options, offset=True, begin_mask=0, end_mask=0)
    content = edit(content, f)
    x = np.arange(15, dtype=np.float32).reshape(3, 5)
    for b in ([0, 0], [1, 0], [0, 1]):
        (got, _) = check(content, [x, np.array(b, np.int32)], op="STRIDED_SLICE")
        np.testing.assert_array_equal(got, x[b[0]:b[0] + 2, b[1]:b[1] + 3:2])


# --- RESHAPE edge cases --------------------------------------------------------------------------

def _with_reshape(content, target=None, new_shape=None, shape_dtype=np.int32):
    """The zoo reshape model with its shape input replaced (``target``) or removed, and
    ``ReshapeOptions.new_shape`` set."""
    def f(m):
        op = the_op(m, "RESHAPE")
        if target is None:
            op.inputs = op.inputs[:1]
        else:
            op.inputs[1] = m.main.new_tensor("t", [len(target)], shape_dtype,
                                             np.asarray(target, shape_dtype))
        if new_shape is not None:
            op.options = ReshapeOptions(new_shape=tuple(new_shape))
        op.outputs[0].shape, op.outputs[0].shape_signature = (1,), None
    return edit(content, f)


def test_reshape_new_shape_option_without_shape_tensor(tf):
    content, _ = zoo_model(tf, "reshape")
    (got,) = check(_with_reshape(content, new_shape=(4, -1)), op="RESHAPE")
    assert got.shape == (4, 6)
    (got,) = check(_with_reshape(content, new_shape=(2, 1, 12)), op="RESHAPE")
    assert got.shape == (2, 1, 12)


def test_reshape_int64_shape_tensor_falls_back_to_option(tf):
    """TFLite reads the shape input only when it is a 1-D int32 tensor."""
    content, _ = zoo_model(tf, "reshape")
    (got,) = check(_with_reshape(content, [3, 8], (12, 2), np.int64), op="RESHAPE")
    assert got.shape == (12, 2)


@pytest.mark.parametrize("in_shape,target", [
    ((2, 0, 3), [-1, 3]), ((2, 0, 3), [0, -1]), ((0,), [2, -1, 0]), ((1, 1), []),
    ((2, 3, 4), [4, -1, 2]), ((6,), [1, 6, 1]), ((1,), [-1]),
])
def test_reshape_inference_and_empty(tf, in_shape, target):
    content, _ = zoo_model(tf, "reshape")
    content = _with_reshape(content, target)
    x = np.arange(int(np.prod(in_shape)), dtype=np.float32).reshape(in_shape)
    (got,) = check(content, [x], op="RESHAPE", shapes=[in_shape])
    assert got.size == x.size


def test_reshape_legacy_scalar_option(tf):
    """No shape input and ``new_shape`` [0] (legacy) or absent: a scalar."""
    content, _ = zoo_model(tf, "reshape")
    for opt in ((0,), None):
        model = _with_reshape(content, new_shape=opt)
        if opt is None:
            model = edit(model, lambda m: setattr(the_op(m, "RESHAPE"), "options", None))
        x = np.array([[[2.5]]], np.float32)
        (got,) = check(model, [x], op="RESHAPE", shapes=[(1, 1, 1)])
        assert got.shape == ()


def test_reshape_bad_target_is_a_model_error(tf):
    content, _ = zoo_model(tf, "reshape")
    with pytest.raises(ModelError, match="RESHAPE"):
        Interpreter(model_content=_with_reshape(content, [5, -1])).allocate_tensors()


# --- ops with value-defined shapes, tested with constant inputs ---------------------------------

def test_shape_int32_and_int64_follow_resize(tf):
    for out_type in (tf.int32, tf.int64):
        content = convert(tf, f"shape_{out_type.name}",
                          lambda x, t=out_type: tf.shape(x, out_type=t),
                          [((None, 3, None), tf.float32)])
        for shape in ((1, 3, 1), (4, 3, 0), (2, 3, 5)):
            (got,) = check(content, op="SHAPE", shapes=[shape])
            np.testing.assert_array_equal(got, shape)


def test_fill_with_runtime_value(tf):
    content = convert(tf, "fill", lambda v: tf.fill([2, 3], v), [((), tf.float32)])
    check(content, [np.float32(2.5)], op="FILL")
    ints = convert(tf, "fill_int", lambda v: tf.fill([4, 1, 2], v), [((), tf.int32)])
    check(ints, [np.int32(-7)], op="FILL")
    bools = convert(tf, "fill_bool", lambda v: tf.fill([3], v), [((), tf.bool)])
    check(bools, [np.bool_(True)], op="FILL")


def test_fill_with_constant_dims_computes_shape_in_prepare(tf):
    content = convert(tf, "fill_dyn", lambda d, v: tf.fill(d, v),
                      [((3,), tf.int32), ((), tf.float32)])
    frozen = freeze_inputs(content, {0: np.array([2, 0, 3], np.int32)})
    check(frozen, [np.float32(1.5)], op="FILL")


def test_zeros_like(tf):
    content = convert(tf, "zeros_like", lambda x: tf.zeros_like(x), [((None, 3), tf.float32)])
    check(content, op="ZEROS_LIKE", shapes=[(5, 3)])
    ints = convert(tf, "zeros_like_i", lambda x: tf.zeros_like(x), [((None, 2), tf.int64)])
    check(ints, op="ZEROS_LIKE", shapes=[(3, 2)])


@pytest.mark.parametrize("dtype,start,limit,delta", [
    ("float32", 0.0, 1.0, 0.1), ("float32", 3.0, -2.5, -0.7), ("float32", -1.0, 7.0, 0.3),
    ("int32", 2, 17, 3), ("int32", 5, -6, -2), ("int64", 0, 10, 1),
])
def test_range_with_constant_inputs(tf, dtype, start, limit, delta):
    dt = getattr(tf, dtype)
    content = convert(tf, f"range_{dtype}", lambda a, b, c: tf.range(a, b, c),
                      [((), dt), ((), dt), ((), dt)])
    assert "RANGE" in op_names(content)
    frozen = freeze_inputs(content, {0: start, 1: limit, 2: delta})
    got = check(frozen, [], op="RANGE")
    # accumulated, not start + i * delta: bit-exact with LiteRT above
    assert got[0].dtype == np.dtype(dtype)


def test_range_can_be_empty(tf):
    content = convert(tf, "range_float32", lambda a, b, c: tf.range(a, b, c),
                      [((), tf.float32)] * 3)
    (got,) = run_ours(freeze_inputs(content, {0: 1.0, 1: 1.0, 2: 0.5}), [])
    assert got.shape == (0,) and got.dtype == np.float32
    with pytest.raises(ModelError, match="RANGE"):
        run_ours(freeze_inputs(content, {0: 1.0, 1: 2.0, 2: -0.5}), [])


def test_embedding_lookup_float_and_int(tf):
    content = convert(tf, "embed", lambda p: tf.nn.embedding_lookup(p, [1, 0, 3, 3]),
                      [((5, 3, 2), tf.float32)])

    def to_embedding(m):
        op = the_op(m, "GATHER")
        params, idx = op.inputs
        m.main.replace_operator(op, Operator(m.opcode(Op.EMBEDDING_LOOKUP), [idx, params],
                                             op.outputs))
    emb = edit(content, to_embedding)
    check(emb, op="EMBEDDING_LOOKUP")
    check(retype(emb, np.int32), op="EMBEDDING_LOOKUP")
    check(retype(emb, np.int8), op="EMBEDDING_LOOKUP")

    def hybrid(m):  # int8 weights, float output: the hybrid path
        t = m.main.operators[0].inputs[1]
        t.dtype = TensorType.INT8
        t.quantization = QuantParams(scale=[0.1], zero_point=[0])
    check(edit(emb, hybrid), op="EMBEDDING_LOOKUP")  # dequantizing lookup, vs LiteRT


def test_dequantize_float16_weights(tf):
    w = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)

    def f(x):
        return x * tf.constant(w)
    key = "fp16"
    if key not in _CACHE:
        g = tf.function(f, input_signature=[tf.TensorSpec((2, 3, 4), tf.float32)],
                        autograph=False)
        conv = tf.lite.TFLiteConverter.from_concrete_functions([g.get_concrete_function()], g)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
        _CACHE[key] = conv.convert()
    content = _CACHE[key]
    check(content, op="DEQUANTIZE")
    # the dequantized constant is exactly the float16 value
    m = wb.load(content)
    deq = the_op(m, "DEQUANTIZE")
    it = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.ones((2, 3, 4), np.float32))
    it.invoke()
    got = it.get_tensor(m.main.tensor_index(deq.outputs[0]))
    np.testing.assert_array_equal(got, deq.inputs[0].data.astype(np.float32))


# --- quantization parameter rules ---------------------------------------------------------------

def _requant(content, op_name, dtype, in_q, out_q):
    def f(m):
        op = the_op(m, op_name)
        for t in m.main.tensors:
            if t.dtype == TensorType.FLOAT32:
                if t.is_constant:
                    v = t.data.astype(dtype)
                    t.buffer = Buffer(v.reshape(-1).view(np.uint8).copy())
                t.dtype = tensor_type_of(dtype)
                t.quantization = QuantParams(scale=[in_q[0]], zero_point=[in_q[1]])
        op.outputs[0].quantization = QuantParams(scale=[out_q[0]], zero_point=[out_q[1]])
    return edit(content, f)


def test_concatenation_quantization_rules(tf):
    content, _ = zoo_model(tf, "concat_axis1")
    # int8: TFLite refuses different parameters (a model error); uint8 would requantize.
    bad8 = _requant(content, "CONCATENATION", np.int8, (0.5, 1), (0.25, 1))
    with pytest.raises(ModelError, match="CONCATENATION"):
        Interpreter(model_content=bad8).allocate_tensors()
    with pytest.raises(RuntimeError):
        litert_interpreter(bad8).allocate_tensors()
    # uint8 with different parameters requantizes, bit-exact with LiteRT.
    badu8 = _requant(content, "CONCATENATION", np.uint8, (0.5, 1), (0.25, 1))
    xs = [np.random.default_rng(0).integers(0, 255, d["shape"]).astype(np.uint8)
          for d in litert_interpreter(badu8).get_input_details()]
    (got,) = run_ours(badu8, xs)
    (expected,) = run_litert(badu8, xs)
    np.testing.assert_array_equal(got, expected)
    bad16 = _requant(content, "CONCATENATION", np.int16, (0.5, 3), (0.5, 3))
    with pytest.raises(ModelError, match="zero point 0"):
        Interpreter(model_content=bad16).allocate_tensors()
    # int16 with zero point 0 but different scales: TFLite copies the raw values
    raw16 = _requant(content, "CONCATENATION", np.int16, (0.5, 0), (0.25, 0))
    check(raw16, typed_inputs(raw16, np.int16))


@pytest.mark.parametrize("name,op", [("pack", "PACK"), ("unpack", "UNPACK"),
                                     ("space_to_batch", "SPACE_TO_BATCH_ND"),
                                     ("batch_to_space", "BATCH_TO_SPACE_ND")])
def test_ops_that_require_equal_quantization(tf, name, op):
    content, _ = zoo_model(tf, name)
    bad = _requant(content, op, np.int8, (0.5, 1), (0.5, 2))
    with pytest.raises(ModelError, match=op):
        Interpreter(model_content=bad).allocate_tensors()
    with pytest.raises(RuntimeError):
        litert_interpreter(bad).allocate_tensors()


@pytest.mark.parametrize("dtype,zp", [(np.int8, -5), (np.uint8, 130), (np.int16, 0)])
@pytest.mark.parametrize("name", ["pad_image", "pad_3d", "space_to_batch", "mirror_reflect"])
def test_quantized_padding_writes_the_zero_point(tf, name, dtype, zp):
    content, op = zoo_model(tf, name)
    typed = _requant(content, op, dtype, (0.1, zp), (0.1, zp))
    got = check(typed, typed_inputs(typed, dtype), op=op)
    if op != "MIRROR_PAD":
        assert (got[0] == zp).any()


def test_padv2_quantized_constant_must_match_output(tf):
    content, _ = zoo_model(tf, "padv2")
    ok = _requant(content, "PADV2", np.int8, (0.1, 4), (0.1, 4))
    check(ok, typed_inputs(ok, np.int8), op="PADV2")

    def other_const_scale(m):
        the_op(m, "PADV2").inputs[2].quantization = QuantParams(scale=[0.2], zero_point=[4])
    with pytest.raises(ModelError, match="constant_values"):
        Interpreter(model_content=edit(ok, other_const_scale)).allocate_tensors()


def test_full_int8_model_from_the_converter(tf):
    """A real int8 conversion: every tensor shares the input's parameters, no requantization."""
    def f(x):
        a = tf.transpose(x, [0, 2, 1, 3])
        b = tf.pad(a[:, 1:, ::-1, :], [[0, 0], [1, 0], [0, 1], [0, 0]])
        c = tf.concat([b, tf.reverse(b, [2])], axis=-1)
        return tf.reshape(tf.gather(c, [1, 0], axis=3), [2, -1])

    def rep():
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield [rng.uniform(-2, 2, (2, 3, 4, 2)).astype(np.float32)]
    content = convert(tf, "int8_model", f, [((2, 3, 4, 2), tf.float32)], representative=rep)
    names = op_names(content)
    assert "QUANTIZE" not in names and "CONCATENATION" in names, names
    check(content, typed_inputs(content, np.int8))


# --- errors at run time -------------------------------------------------------------------------

def test_out_of_range_indices_fail_like_litert(tf):
    content = convert(tf, "gather_rt", lambda x, i: tf.gather(x, i, axis=1),
                      [((2, 3), tf.float32), ((2,), tf.int32)])
    x = np.zeros((2, 3), np.float32)
    for bad in ([0, 3], [-1, 0]):
        idx = np.array(bad, np.int32)
        with pytest.raises(RuntimeError):
            run_litert(content, [x, idx])
        with pytest.raises(ModelError, match="GATHER"):
            run_ours(content, [x, idx])
    check(content, [x + 1, np.array([2, 0], np.int32)], op="GATHER")


# --- resize_tensor_input propagation ------------------------------------------------------------

def test_resize_batch_propagates_through_reshape_concat_strided_slice(tf):
    def f(x, y):
        a = tf.reshape(x, [-1, 12])
        b = tf.concat([a, tf.reshape(y, [-1, 4])], axis=1)
        c = b[:, 2:14:3]
        d = tf.transpose(tf.reshape(c, [-1, 2, 2]), [0, 2, 1])
        e = tf.pad(d, [[0, 0], [1, 0], [0, 1]])
        return e, tf.split(b, 2, axis=1)[1], tf.gather(b, [0, 15, 3], axis=1)

    content = convert(tf, "resize", f, [((None, 3, 4), tf.float32), ((None, 2, 2), tf.float32)])
    for batch in (1, 3, 7, 0):
        shapes = [(batch, 3, 4), (batch, 2, 2)]
        got = check(content, op="STRIDED_SLICE", shapes=shapes, seed=batch)
        assert got[0].shape == (batch, 3, 3)


# --- shape-defining values computed at run time -------------------------------------------------

def _record_true_output_shapes(content, shapes) -> bytes:
    """The model with its outputs' recorded shapes set to ``shapes``: the kernels take their
    run-time path (values known only at eval) while the interpreter's check of eval shapes
    against prepared ones still holds (data-dependent output shapes are a separate issue)."""
    def f(m):
        for t, s in zip(m.main.outputs, shapes):
            t.shape, t.shape_signature = tuple(s), None
    return edit(content, f)


def _runtime_cases(tf):
    F, I = tf.float32, tf.int32
    x234 = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    i32 = lambda *v: np.array(v, np.int32)  # noqa: E731
    return {
        "TRANSPOSE": (lambda x, p: tf.transpose(x, p), [((2, 3, 4), F), ((3,), I)],
                      [x234, i32(2, 0, 1)]),
        "SLICE": (lambda x, b, s: tf.slice(x, b, s), [((2, 3, 4), F), ((3,), I), ((3,), I)],
                  [x234, i32(1, 0, 1), i32(1, -1, 2)]),
        "STRIDED_SLICE": (lambda x, b, e, s: tf.strided_slice(x, b, e, s),
                          [((2, 3, 4), F), ((3,), I), ((3,), I), ((3,), I)],
                          [x234, i32(0, 2, -1), i32(2, -5, 0), i32(1, -1, -2)]),
        "PAD": (lambda x, p: tf.pad(x, p), [((2, 3, 4), F), ((3, 2), I)],
                [x234, i32(0, 1, 2, 0, 1, 1).reshape(3, 2)]),
        "PADV2": (lambda x, p, c: tf.pad(x, p, constant_values=c),
                  [((2, 3, 4), F), ((3, 2), I), ((), F)],
                  [x234, i32(1, 0, 0, 0, 0, 2).reshape(3, 2), np.float32(-4)]),
        "MIRROR_PAD": (lambda x, p: tf.pad(x, p, mode="SYMMETRIC"), [((2, 3, 4), F), ((3, 2), I)],
                       [x234, i32(1, 1, 0, 3, 2, 0).reshape(3, 2)]),
        "TILE": (lambda x, m: tf.tile(x, m), [((2, 3, 4), F), ((3,), I)], [x234, i32(1, 2, 3)]),
        "BROADCAST_TO": (lambda x, s: tf.broadcast_to(x, s), [((3, 1), F), ((3,), I)],
                         [np.ones((3, 1), np.float32), i32(2, 3, 5)]),
        "RESHAPE": (lambda x, s: tf.reshape(x, s), [((2, 3, 4), F), ((2,), I)],
                    [x234, i32(-1, 8)]),
        "EXPAND_DIMS": (lambda x, a: tf.expand_dims(x, a), [((2, 3, 4), F), ((), I)],
                        [x234, np.int32(-2)]),
        "SPLIT": (lambda x, a: tf.split(x, 2, axis=a), [((2, 4, 4), F), ((), I)],
                  [np.arange(32, dtype=np.float32).reshape(2, 4, 4), np.int32(1)]),
        "SPLIT_V": (lambda x, s: tf.split(x, s, num=3, axis=2), [((2, 3, 4), F), ((3,), I)],
                    [x234, i32(1, -1, 2)]),
        "REVERSE_V2": (lambda x, a: tf.reverse(x, a), [((2, 3, 4), F), ((1,), I)],
                       [x234, i32(-2)]),
        "FILL": (lambda d, v: tf.fill(d, v), [((2,), I), ((), F)], [i32(3, 2), np.float32(7)]),
        "RANGE": (lambda a, b, c: tf.range(a, b, c), [((), F)] * 3,
                  [np.float32(-1), np.float32(2), np.float32(0.25)]),
        "SCATTER_ND": (lambda i, u, s: tf.scatter_nd(i, u, s),
                       [((2, 1), I), ((2, 3), F), ((2,), I)],
                       [i32(3, 1).reshape(2, 1), np.ones((2, 3), np.float32), i32(5, 3)]),
        "SPACE_TO_BATCH_ND": (lambda x, b, p: tf.space_to_batch_nd(x, b, p),
                              [((1, 4, 3, 2), F), ((2,), I), ((2, 2), I)],
                              [np.arange(24, dtype=np.float32).reshape(1, 4, 3, 2), i32(2, 3),
                               i32(0, 2, 1, 2).reshape(2, 2)]),
        "BATCH_TO_SPACE_ND": (lambda x, b, c: tf.batch_to_space(x, b, c),
                              [((4, 2, 3, 1), F), ((2,), I), ((2, 2), I)],
                              [np.arange(24, dtype=np.float32).reshape(4, 2, 3, 1), i32(2, 2),
                               i32(1, 0, 0, 2).reshape(2, 2)]),
    }


RUNTIME_OPS = ["TRANSPOSE", "SLICE", "STRIDED_SLICE", "PAD", "PADV2", "MIRROR_PAD", "TILE",
               "BROADCAST_TO", "RESHAPE", "EXPAND_DIMS", "SPLIT", "SPLIT_V", "REVERSE_V2",
               "FILL", "RANGE", "SCATTER_ND", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"]


@pytest.mark.parametrize("op", RUNTIME_OPS)
def test_runtime_shape_values(tf, op):
    fn, specs, xs = _runtime_cases(tf)[op]
    content = convert(tf, f"runtime_{op}", fn, specs)
    assert op in op_names(content), op_names(content)
    expected = run_litert(content, xs)
    ours = _record_true_output_shapes(content, [e.shape for e in expected])
    it = Interpreter(model_content=ours)
    it.allocate_tensors()
    the = next(n for n in it._plans[0].nodes if n.op.name == op)
    assert the.state.get("dynamic_outputs")
    assert_same(run_ours(ours, xs), expected, op)


def test_resize_through_shape_arithmetic(tf):
    """Keras-style dynamic batch: the target shape of RESHAPE is computed from SHAPE ->
    STRIDED_SLICE -> PACK (-> CONCATENATION). Known shapes fold at prepare, so resizing the
    batch propagates (LiteRT resolves these with dynamic tensors at eval)."""
    def f(x):
        n = tf.shape(x)[0]
        flat = tf.reshape(x, [n, -1])
        split = tf.reshape(flat, tf.concat([tf.shape(x)[:1], [2, -1]], axis=0))
        return tf.transpose(split, [0, 2, 1]), tf.fill(tf.shape(flat), 2.0) + flat

    content = convert(tf, "shape_arith", f, [((None, 3, 4), tf.float32)])
    names = op_names(content)
    assert {"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"} <= set(names), names
    for batch in (1, 5, 0):
        got = check(content, op="RESHAPE", shapes=[(batch, 3, 4)], seed=batch)
        assert got[0].shape == (batch, 6, 2)


def test_shape_arithmetic_through_any_op_resolves_at_prepare(tf):
    """Shape arithmetic through reductions and integer math (as Keras' Tensordot for a Dense on
    a 3-D input emits: SHAPE -> GATHER -> REDUCE_PROD -> PACK -> RESHAPE) is evaluated at
    prepare whatever the op, so nothing downstream is left dynamic: the FULLY_CONNECTED is
    prepared, checked and planned with its real input shape before the first invoke, and each
    kernel fed LiteRT's values gives LiteRT's outputs."""
    from tests.litert_oracle import check_every_op_in_isolation

    w = tf.constant(np.linspace(-1, 1, 30, dtype=np.float32).reshape(6, 5))

    def f(x):
        s = tf.shape(x)
        rows = tf.reduce_prod(tf.gather(s, [0, 1]))
        cols = tf.maximum(s[2] * 2 - s[2], 1)
        y = tf.reshape(x, tf.stack([rows, cols])) @ w
        return tf.reshape(y, tf.concat([tf.gather(s, [0, 1]), [5]], axis=0))

    content = convert(tf, "shape_arith_prod", f, [((None, 4, 6), tf.float32)])
    names = set(op_names(content))
    assert {"SHAPE", "GATHER", "REDUCE_PROD", "FULLY_CONNECTED"} <= names, names
    for batch in (1, 3):
        it = Interpreter(model_content=content)
        it.resize_tensor_input(it.get_input_details()[0]["index"], [batch, 4, 6])
        it.allocate_tensors()
        plan = it._plans[0]
        assert not [n.path for n in plan.nodes if n.state.get("dynamic_outputs")]
        fc = next(n for n in plan.nodes if n.op.name == "FULLY_CONNECTED")
        assert fc.inputs[0].shape == (batch * 4, 6)
        assert it.get_output_details()[0]["shape"].tolist() == [batch, 4, 5]
        got = check(content, shapes=[(batch, 4, 6)], seed=batch)
        assert got[0].shape == (batch, 4, 5)
    assert check_every_op_in_isolation(content)


def _dynamic_slice_concat(tf):
    """Keras 3 RNNs write their outputs to a TensorList inside a WHILE body; the converter
    lowers the write to SLICE (run-time size: the loop counter) + CONCATENATION."""
    def f(x, y, i):
        head = tf.slice(x, [0, 0], tf.stack([i, -1]))
        tail = tf.slice(x, tf.stack([i + 1, 0]), [-1, -1])
        return tf.concat([head, 2.0 * y, tail], axis=0)

    return convert(tf, "dynamic_slice_concat", f,
                   [((5, 3), tf.float32), ((1, 3), tf.float32), ((), tf.int32)])


@pytest.mark.parametrize("i", [0, 1, 3, 4])
def test_concatenation_of_a_dynamic_slice(tf, i):
    """The SLICE's output shape is a placeholder at prepare (it depends on ``i``), which does
    not fit the other inputs of CONCATENATION: as LiteRT, the CONCATENATION is prepared once
    the slice has run, whatever its real shape (``i = 1`` equals the placeholder)."""
    content = _dynamic_slice_concat(tf)
    assert op_names(content).count("SLICE") == 2 and "CONCATENATION" in op_names(content)
    rng = np.random.default_rng(i)
    xs = [rng.standard_normal((5, 3)).astype(np.float32),
          rng.standard_normal((1, 3)).astype(np.float32), np.int32(i)]
    got = check(content, xs, op="CONCATENATION")
    assert got[0].shape == (5, 3)
    it = Interpreter(model_content=content)
    it.allocate_tensors()
    concat = next(n for n in it._plans[0].nodes if n.op.name == "CONCATENATION")
    assert concat.state.get("dynamic_outputs")  # deferred at prepare, not rejected


@pytest.mark.parametrize("i", [1, 2])
def test_inconsistent_concatenation_after_a_dynamic_slice_fails_at_invoke(tf, i):
    """Deferring a check must not lose it: with ``y`` widened to 4 columns (an IR edit) no
    real shape of the slice fits, so invoke raises the CONCATENATION's ModelError, whether
    or not the slice's real shape differs from its placeholder (``i = 1``: equal)."""
    def widen(m):
        y = m.main.inputs[1]
        y.shape, y.shape_signature = (1, 4), None

    content = edit(_dynamic_slice_concat(tf), widen)
    it = Interpreter(model_content=content)
    it.allocate_tensors()  # deferred: the slice's shape is not known yet
    xs = [np.zeros((5, 3), np.float32), np.zeros((1, 4), np.float32), np.int32(i)]
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    with pytest.raises(ModelError, match=r"CONCATENATION.*does not match"):
        it.invoke()


def test_inconsistent_concatenation_of_static_shapes_fails_at_allocate(tf):
    """Without a dynamic input the check is not deferred: allocate_tensors raises."""
    def widen(m):
        sg = m.main
        concat = the_op(m, "CONCATENATION")
        sg.inputs[1].shape, sg.inputs[1].shape_signature = (1, 4), None
        # Concatenate the static model input x and 2 * y: no input is dynamic.
        concat.inputs = [sg.inputs[0], concat.inputs[1]]

    content = edit(_dynamic_slice_concat(tf), widen)
    with pytest.raises(ModelError, match=r"CONCATENATION.*does not match"):
        Interpreter(model_content=content).allocate_tensors()


# --- ONE_HOT, WHERE, segment reductions, REVERSE_SEQUENCE, MATRIX_(SET_)DIAG ---------------------
# One-op models built in the IR (tests/kernels/test_elementwise.py's helpers) reach the options,
# dtypes and edge values; converted models prove what the converter emits.


def _allocate(content):
    it = Interpreter(model_content=content)
    it.allocate_tensors()
    return it


@pytest.mark.parametrize("axis", [-1, 0, 1, 2])
@pytest.mark.parametrize("idx_dt", [np.int32, np.int64])
def test_one_hot_axes_and_out_of_range_indices(axis, idx_dt):
    idx = np.array([[0, 3, -1], [4, 2, 7]], idx_dt)  # -1, 4 and 7 are outside [0, 4)
    depth = 4
    shape = list(idx.shape)
    shape.insert(len(shape) if axis == -1 else axis, depth)
    for dt, on, off in ((np.float32, 2.5, -1.0), (np.int32, 7, 3), (np.int64, -9, 1),
                        (np.int8, 5, -5), (np.uint8, 200, 1), (np.bool_, True, False)):
        ins = [idx, Const(np.array(depth, np.int32)), Const(np.array(on, dt)),
               Const(np.array(off, dt))]
        check_op(Op.ONE_HOT, ins, [(tuple(shape), dt)], O.OneHotOptions(axis),
                 f"ONE_HOT axis={axis} {np.dtype(dt).name}")


def test_one_hot_run_time_depth_and_values():
    idx = np.array([1, 0, 2], np.int32)
    # Depth and on/off fed at run time; the recorded output shape is a placeholder.
    ins = [idx, np.array(5, np.int32), np.array(3.0, np.float32), np.array(0.5, np.float32)]
    (got,) = check_op(Op.ONE_HOT, ins, [((1, 1), np.float32)], O.OneHotOptions(-1),
                      "ONE_HOT run-time depth")
    assert got.shape == (3, 5)
    with pytest.raises(ModelError, match="depth"):
        _allocate(one_op(Op.ONE_HOT, [idx, Const(np.array([2, 3], np.int32)),
                                      Const(np.array(1.0, np.float32)),
                                      Const(np.array(0.0, np.float32))],
                         [((3, 2), np.float32)], O.OneHotOptions(-1)))


@pytest.mark.parametrize("dt", [np.bool_, np.float32, np.int32, np.int64, np.int8, np.uint8])
def test_where_coordinates(dt):
    rng = np.random.default_rng(3)
    x = (rng.integers(-1, 2, (3, 4, 5)) * (rng.random((3, 4, 5)) < 0.4)).astype(dt)
    (got,) = check_op(Op.WHERE, [x], [((1, 3), np.int64)], what=f"WHERE {np.dtype(dt).name}")
    np.testing.assert_array_equal(got, np.argwhere(x))
    # Nothing true: LiteRT's Python API cannot return the empty [0, 2] result ("Invalid tensor
    # size"), so the oracle here is numpy.
    none = np.zeros((2, 3), dt)
    (got,) = run_ours(one_op(Op.WHERE, [none], [((1, 2), np.int64)]), [none])
    assert got.shape == (0, 2) and got.dtype == np.int64


def test_where_of_a_constant_is_computed_at_prepare():
    c = np.array([[True, False, True], [False, False, True]])
    it = _allocate(one_op(Op.WHERE, [Const(c)], [((1, 2), np.int64)]))
    out = it._plans[0].nodes[0].outputs[0]
    assert out.shape == (3, 2)
    np.testing.assert_array_equal(out.data, [[0, 0], [0, 2], [1, 2]])


SEGMENT_OPS = [Op.UNSORTED_SEGMENT_SUM, Op.UNSORTED_SEGMENT_PROD, Op.UNSORTED_SEGMENT_MAX,
               Op.UNSORTED_SEGMENT_MIN]


@pytest.mark.parametrize("op", SEGMENT_OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("dt", [np.float32, np.int32])
def test_unsorted_segment_ops(op, dt):
    rng = np.random.default_rng(5)
    data = (rng.uniform(-3, 3, (7, 3, 2)) if dt == np.float32
            else rng.integers(-9, 10, (7, 3, 2))).astype(dt)
    if dt == np.float32:
        data[2, 1, 0] = np.nan  # MAX/MIN keep the running value, SUM/PROD propagate
    ids = np.array([3, 0, -1, 3, 1, 0, 3], np.int32)  # -1 skipped; segment 2 and 4 empty
    for ids_in in (Const(ids), ids):
        check_op(op, [data, ids_in, Const(np.array(5, np.int32))], [((5, 3, 2), dt)],
                 what=f"{op.name} {np.dtype(dt).name}")
    # segment ids over the first two dimensions; num_segments a one-element vector
    ids2 = rng.integers(-1, 4, (7, 3)).astype(np.int32)
    check_op(op, [data, Const(ids2), Const(np.array([4], np.int32))], [((4, 2), dt)],
             what=f"{op.name} 2-D ids")
    # num_segments fed at run time: the output shape is known at eval
    (got,) = check_op(op, [data, Const(ids), np.array(6, np.int32)], [((1, 3, 2), dt)],
                      what=f"{op.name} run-time num_segments")
    assert got.shape == (6, 3, 2)


def test_unsorted_segment_id_too_large_fails_at_invoke():
    data = np.ones((3, 2), np.float32)
    content = one_op(Op.UNSORTED_SEGMENT_SUM, [data, np.array([0, 4, 1], np.int32),
                                              Const(np.array(3, np.int32))],
                     [((3, 2), np.float32)])
    with pytest.raises(RuntimeError):
        run_litert(content, [data, np.array([0, 4, 1], np.int32)])
    with pytest.raises(InputError, match="segment id 4"):
        run_ours(content, [data, np.array([0, 4, 1], np.int32)])


def test_segment_sum_sorted_ids():
    rng = np.random.default_rng(6)
    for dt in (np.float32, np.int32):
        data = rng.uniform(-5, 5, (6, 4)).astype(dt)
        ids = np.array([0, 0, 1, 2, 2, 3], np.int32)
        for ids_in in (Const(ids), ids):
            (got,) = check_op(Op.SEGMENT_SUM, [data, ids_in], [((1, 4), dt)],
                              what=f"SEGMENT_SUM {np.dtype(dt).name}")
            assert got.shape == (4, 4)
    # LiteRT: ids start at 0 and grow by 0 or 1 (a gap, a decrease or a start above 0 fail)
    for bad in ([0, 2, 2, 3, 3, 3], [0, 1, 0, 1, 2, 2], [1, 1, 2, 2, 3, 3]):
        bad = np.array(bad, np.int32)
        content = one_op(Op.SEGMENT_SUM, [np.ones((6, 4), np.float32), bad],
                         [((4, 4), np.float32)])
        with pytest.raises(RuntimeError):
            run_litert(content, [np.ones((6, 4), np.float32), bad])
        with pytest.raises(InputError, match="start at 0"):
            run_ours(content, [np.ones((6, 4), np.float32), bad])
    with pytest.raises(ModelError, match="start at 0"):
        _allocate(one_op(Op.SEGMENT_SUM, [np.ones((6, 4), np.float32), Const(bad)],
                         [((4, 4), np.float32)]))


@pytest.mark.parametrize("seq_dim,batch_dim", [(1, 0), (0, 1), (2, 0), (1, 2), (2, 1)])
def test_reverse_sequence(seq_dim, batch_dim):
    x = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    n_batch = x.shape[batch_dim]
    n_seq = x.shape[seq_dim]
    for dt in (np.float32, np.int32, np.int64, np.int16, np.uint8):
        lens = np.array([n_seq, 0, 1, 2, n_seq - 1][:n_batch], np.int32)
        for lens_in in (Const(lens), lens, lens.astype(np.int64)):
            check_op(Op.REVERSE_SEQUENCE, [x.astype(dt), lens_in], [(x.shape, dt)],
                     O.ReverseSequenceOptions(seq_dim, batch_dim),
                     f"REVERSE_SEQUENCE seq={seq_dim} batch={batch_dim} {np.dtype(dt).name}")


def test_reverse_sequence_bad_lengths():
    x = np.zeros((2, 3), np.float32)
    content = one_op(Op.REVERSE_SEQUENCE, [x, np.array([1, 4], np.int32)], [((2, 3), np.float32)],
                     O.ReverseSequenceOptions(1, 0))
    with pytest.raises(InputError, match="sequence lengths"):
        run_ours(content, [x, np.array([1, 4], np.int32)])
    for opts, match in (((0, 0), "differ"), ((-1, 0), "outside")):  # LiteRT fails both
        content = one_op(Op.REVERSE_SEQUENCE, [x, np.array([1, 2], np.int32)],
                         [((2, 3), np.float32)], O.ReverseSequenceOptions(*opts))
        with pytest.raises(RuntimeError):
            run_litert(content, [x, np.array([1, 2], np.int32)])
        with pytest.raises(ModelError, match=match):
            _allocate(content)


@pytest.mark.parametrize("shape", [(3,), (2, 4), (2, 3, 5)])
def test_matrix_diag_and_set_diag(shape):
    rng = np.random.default_rng(7)
    for dt in (np.float32, np.int32, np.int64, np.int16, np.int8, np.uint8):
        d = rng.integers(-5, 5, shape).astype(dt)
        check_op(Op.MATRIX_DIAG, [d], [(shape + (shape[-1],), dt)],
                 what=f"MATRIX_DIAG {np.dtype(dt).name}")
    for m, n in ((3, 3), (2, 5), (4, 2)):
        x = rng.uniform(-1, 1, shape[:-1] + (m, n)).astype(np.float32)
        diag = rng.uniform(5, 6, shape[:-1] + (min(m, n),)).astype(np.float32)
        for diag_in in (diag, Const(diag)):
            check_op(Op.MATRIX_SET_DIAG, [x, diag_in], [(x.shape, np.float32)],
                     what=f"MATRIX_SET_DIAG {m}x{n}")
    # LiteRT would read bool values as float32: refused.
    with pytest.raises(UnsupportedOpError):
        _allocate(one_op(Op.MATRIX_DIAG, [np.zeros((3,), np.bool_)], [((3, 3), np.bool_)]))
    with pytest.raises(ModelError, match="diagonal shape"):
        _allocate(one_op(Op.MATRIX_SET_DIAG, [np.zeros((2, 3), np.float32),
                                             np.zeros((3,), np.float32)],
                         [((2, 3), np.float32)]))


def test_segment_one_hot_where_reverse_diag_converted(tf):
    def f(x, ids, lens):
        return (tf.math.unsorted_segment_sum(x, ids, 4), tf.math.unsorted_segment_max(x, ids, 4),
                tf.math.unsorted_segment_min(x, ids, 4), tf.math.unsorted_segment_prod(x, ids, 4),
                tf.math.segment_sum(x, [0, 0, 1, 2, 2]),
                tf.one_hot(tf.argmax(x, axis=-1), 6, on_value=2.0, off_value=-1.0, axis=0),
                tf.where(x > 0.5), tf.reverse_sequence(x, lens, seq_axis=1, batch_axis=0),
                tf.linalg.diag(x[:, :4]), tf.linalg.set_diag(x[:, :4, None] * x[:, None, :4],
                                                            x[:, :4]))

    content = convert(tf, "segments_onehot_where", f,
                      [((5, 6), tf.float32), ((5,), tf.int32), ((5,), tf.int32)])
    names = op_names(content)
    for name in ("UNSORTED_SEGMENT_SUM", "UNSORTED_SEGMENT_MAX", "UNSORTED_SEGMENT_MIN",
                 "UNSORTED_SEGMENT_PROD", "SEGMENT_SUM", "ONE_HOT", "WHERE",
                 "REVERSE_SEQUENCE", "MATRIX_DIAG", "MATRIX_SET_DIAG"):
        assert name in names, (name, names)
    rng = np.random.default_rng(8)
    for seed in range(3):
        xs = [rng.uniform(-1, 1, (5, 6)).astype(np.float32),
              rng.integers(-1, 4, 5).astype(np.int32), rng.integers(0, 7, 5).astype(np.int32)]
        check(content, xs)


@pytest.mark.parametrize("dt", [np.int8, np.uint8, np.int16, np.int32, np.int64, np.float32])
@pytest.mark.parametrize("idx_dt", [np.int32, np.int64])
def test_unique_first_appearance_order(dt, idx_dt):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 12, 40).astype(dt)
    if dt == np.float32:
        x[[3, 17]] = [-0.0, 0.0]  # one value for LiteRT's ordered map
    idx_type = O.TensorType.INT64 if idx_dt == np.int64 else O.TensorType.INT32
    vals, idx = check_op(Op.UNIQUE, [x], [((1,), dt), (x.shape, idx_dt)],
                         O.UniqueOptions(idx_type), f"UNIQUE {np.dtype(dt).name}")
    np.testing.assert_array_equal(vals[idx], x)
    with pytest.raises(ModelError, match="idx_out_type"):
        _allocate(one_op(Op.UNIQUE, [x], [((1,), dt), (x.shape, idx_dt)],
                         O.UniqueOptions(O.TensorType.INT32 if idx_dt == np.int64
                                         else O.TensorType.INT64)))


def test_unique_converted(tf):
    def f(x):
        v, i = tf.unique(tf.reshape(tf.round(x * 2), [-1]))
        return v * 2.0, i

    content = convert(tf, "unique", f, [((4, 5), tf.float32)])
    assert "UNIQUE" in op_names(content)
    check(content, [np.random.default_rng(2).uniform(-2, 2, (4, 5)).astype(np.float32)])


@pytest.mark.parametrize("dt", [np.float32, np.int32, np.int64, np.int8, np.uint8])
def test_sparse_to_dense(dt):
    rng = np.random.default_rng(11)
    for shape in ((7,), (3, 4), (2, 3, 4), (2, 2, 3, 2)):
        n = 6
        idx = np.stack([rng.integers(0, d, n) for d in shape], axis=1).astype(np.int32)
        idx[-1] = idx[0]  # a repeated index: the last value wins
        vals = rng.integers(-9, 10, n).astype(dt) if dt != np.uint8 else \
            rng.integers(0, 200, n).astype(dt)
        default = np.array(7, dt)
        for idx_in, shape_in in ((Const(idx), Const(np.array(shape, np.int32))),
                                 (idx.astype(np.int64), Const(np.array(shape, np.int64))),
                                 (idx, np.array(shape, np.int32))):
            (got,) = check_op(Op.SPARSE_TO_DENSE, [idx_in, shape_in, vals, Const(default)],
                              [((1,) * len(shape), dt)],
                              what=f"SPARSE_TO_DENSE {shape} {np.dtype(dt).name}")
            assert got.shape == shape
    # 1-D indices for a 1-D output; one index with a scalar value
    check_op(Op.SPARSE_TO_DENSE, [np.array([4, 0, 2], np.int32), Const(np.array([6], np.int32)),
                                  np.array([1, 2, 3], dt), Const(np.array([5], dt))],
             [((6,), dt)], what="SPARSE_TO_DENSE 1-D indices")
    check_op(Op.SPARSE_TO_DENSE, [np.array([[1, 2]], np.int32), Const(np.array([3, 3], np.int32)),
                                  np.array(9, dt), Const(np.array(1, dt))],
             [((3, 3), dt)], what="SPARSE_TO_DENSE scalar value")


def test_sparse_to_dense_bad_inputs():
    idx = np.array([[0, 1], [5, 0]], np.int32)
    content = one_op(Op.SPARSE_TO_DENSE, [idx, Const(np.array([3, 3], np.int32)),
                                          np.ones(2, np.float32), Const(np.float32(0))],
                     [((3, 3), np.float32)])
    with pytest.raises(InputError, match="outside"):
        run_ours(content, [idx, np.ones(2, np.float32)])
    with pytest.raises(ModelError, match="indices for values"):
        _allocate(one_op(Op.SPARSE_TO_DENSE, [idx, Const(np.array([3, 3], np.int32)),
                                              np.float32(1), Const(np.float32(0))],
                         [((3, 3), np.float32)]))


def test_sparse_to_dense_converted(tf):
    def f(v):
        return tf.compat.v1.sparse_to_dense([[0, 1], [2, 3], [1, 0]], [3, 5], v, -1.0)

    content = convert(tf, "sparse_to_dense", f, [((3,), tf.float32)])
    assert "SPARSE_TO_DENSE" in op_names(content)
    check(content, [np.array([1.5, -2.0, 3.0], np.float32)])


def test_rank_is_known_at_prepare():
    for shape in ((), (3,), (2, 1, 4), (1, 2, 1, 3, 2)):
        x = np.zeros(shape, np.float32)
        content = one_op(Op.RANK, [x], [((), np.int32)])
        (got,) = check_op(Op.RANK, [x], [((), np.int32)], what=f"RANK {shape}")
        assert int(got) == len(shape)
        assert int(_allocate(content)._plans[0].nodes[0].outputs[0].data) == len(shape)


@pytest.mark.parametrize("dt", [np.int32, np.int64])
def test_broadcast_args(dt):
    for a, b in (([2, 1, 3], [4, 1]), ([5], [1]), ([1, 1], [3, 1, 4]), ([1, 5], [1, 1])):
        a, b = np.array(a, dt), np.array(b, dt)
        n = len(np.broadcast_shapes(tuple(a), tuple(b)))
        check_op(Op.BROADCAST_ARGS, [a, b], [((n,), dt)], what=f"BROADCAST_ARGS {a} {b}")
        check_op(Op.BROADCAST_ARGS, [Const(a), b], [((n,), dt)], what="BROADCAST_ARGS const")
    # A scalar's empty shape and zero-size dimensions: LiteRT aborts the process on these, so
    # numpy's broadcasting rule is the oracle.
    for a, b in (([], [2, 3]), ([0, 1], [1, 6])):
        a, b = np.array(a, dt), np.array(b, dt)
        want = np.broadcast_shapes(tuple(a), tuple(b))
        (got,) = run_ours(one_op(Op.BROADCAST_ARGS, [a, b], [((len(want),), dt)]), [a, b])
        np.testing.assert_array_equal(got, want)
        assert got.dtype == dt
    bad = [np.array([2, 3], dt), np.array([4, 3], dt)]
    content = one_op(Op.BROADCAST_ARGS, bad, [((2,), dt)])  # LiteRT aborts the process here
    with pytest.raises(InputError, match="do not broadcast"):
        run_ours(content, bad)
    with pytest.raises(ModelError, match="do not broadcast"):
        _allocate(one_op(Op.BROADCAST_ARGS, [Const(b) for b in bad], [((2,), dt)]))


def test_broadcast_args_and_rank_converted(tf):
    def f(x, y):
        shape = tf.broadcast_dynamic_shape(tf.shape(x), tf.shape(y))
        return tf.broadcast_to(x, shape) + y, tf.rank(x) + tf.rank(y)

    content = convert(tf, "broadcast_args", f, [((None, 3), tf.float32),
                                                 ((4, None, 3), tf.float32)])
    names = op_names(content)
    assert "BROADCAST_ARGS" in names, names
    rng = np.random.default_rng(12)
    for n in (1, 2):
        xs = [rng.standard_normal((n, 3)).astype(np.float32),
              rng.standard_normal((4, 1 if n == 2 else 5, 3)).astype(np.float32)]
        check(content, xs, shapes=[x.shape for x in xs])


@pytest.mark.parametrize("op", ["gather_nd", "scatter_nd"])
@pytest.mark.parametrize("idx,ok", [([[2, 3], [0, 0]], True), ([[0, 5], [1, 1]], False),
                                    ([[3, 0], [0, 0]], False), ([[1, -1], [0, 0]], False)])
def test_nd_indices_checked_per_dimension_as_litert(tf, op, idx, ok):
    """Run-time GATHER_ND/SCATTER_ND indices: each component must lie in its dimension, as
    LiteRT checks ([0, 5] into [3, 4] is refused although its flat offset 5 is inside)."""
    I32, F = np.int32, np.float32
    if op == "gather_nd":
        content = convert(tf, "gnd_rt", lambda x, i: tf.gather_nd(x, i),
                          [((3, 4), F), ((2, 2), I32)])
        xs = [np.arange(12, dtype=F).reshape(3, 4), np.array(idx, I32)]
    else:
        content = convert(tf, "snd_rt", lambda i, u: tf.scatter_nd(i, u, [3, 4]),
                          [((2, 2), I32), ((2,), F)])
        xs = [np.array(idx, I32), np.array([1, 2], F)]
    if ok:
        assert_same(run_ours(content, xs)[0], run_litert(content, xs)[0])
        return
    with pytest.raises(RuntimeError, match="out of bounds|positive"):
        run_litert(content, xs)
    with pytest.raises(ModelError, match=rf"{op} (index out of bounds|has a negative index)"):
        run_ours(content, xs)


@pytest.mark.parametrize("case", ["fill", "tile", "resize"])
def test_value_dependent_outputs_beyond_memory_are_refused(tf, case):
    """An output whose shape comes from run-time values (FILL's dims, TILE's multiples, a
    resize's size) and would not fit in memory is an InputError naming the op and the size,
    raised before allocating (numpy would get the pages by overcommit and the process could be
    killed while filling them)."""
    I32, F = np.int32, np.float32
    if case == "fill":
        content = convert(tf, "fill_rt", lambda d: tf.fill(d, 1.0), [((2,), I32)])
        xs, name = [np.array([2**20, 2**20], I32)], "FILL"
    elif case == "tile":
        content = convert(tf, "tile_rt", lambda x, m: tf.tile(x, m), [((2, 3), F), ((2,), I32)])
        xs, name = [np.ones((2, 3), F), np.array([2**18, 2**18], I32)], "TILE"
    else:
        content = convert(tf, "resize_rt", lambda x, s: tf.image.resize(x, s),
                          [((1, 4, 4, 1), F), ((2,), I32)])
        xs, name = [np.ones((1, 4, 4, 1), F), np.array([2**19, 2**19], I32)], "RESIZE_BILINEAR"
    with pytest.raises(InputError, match=rf"\({name}\): output .* would need [\d.]+ GiB; "
                                          r"the limit is [\d.]+ GiB \(half the [\d.]+ GiB"):
        run_ours(content, xs)
    small = [x if x.dtype != I32 else np.minimum(x, 3).astype(I32) for x in xs]
    assert_same(run_ours(content, small)[0], run_litert(content, small)[0])


def test_arg_max_over_an_empty_axis_is_refused_as_litert(tf):
    content = convert(tf, "argmax_dyn", lambda x: tf.argmax(x, 1), [((2, None, 3), np.float32)])
    x = np.zeros((2, 0, 3), np.float32)
    with pytest.raises(RuntimeError, match="empty"):
        run_litert(content, [x], shapes=[x.shape])
    with pytest.raises(ModelError, match=r"\(ARG_MAX\): cannot take the arg max over axis 1 of "
                                         r"size 0"):
        run_ours(content, [x], shapes=[x.shape])
    y = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    assert_same(run_ours(content, [y], [y.shape])[0], run_litert(content, [y], [y.shape])[0])


@pytest.mark.parametrize("src,dst,shape", [
    (np.float32, np.int32, (2, 4)), (np.float32, np.uint8, (2, 3)),
    (np.int16, np.int32, (3, 2)), (np.int8, np.float32, (2, 4)), (np.int64, np.int16, (3,)),
    (np.uint8, np.int8, (5,))])
def test_bitcast_matches_litert(tf, src, dst, shape):
    content = convert(tf, f"bitcast_{np.dtype(src)}_{np.dtype(dst)}_{shape}",
                      lambda x: tf.bitcast(x, tf.as_dtype(dst)), [(shape, src)])
    assert op_names(content) == ["BITCAST"]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 1000).astype(src)
    got, want = run_ours(content, [x])[0], run_litert(content, [x])[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


def _dus_model(tf, shape, upd_shape, dtype, idx_dtype):
    from tensorflow.compiler.tf2xla.python import xla

    return convert(tf, f"dus_{shape}_{upd_shape}_{np.dtype(dtype)}_{np.dtype(idx_dtype)}",
                   lambda x, u, i: xla.dynamic_update_slice(x, u, i),
                   [(shape, dtype), (upd_shape, dtype), ((len(shape),), idx_dtype)])


@pytest.mark.parametrize("shape,upd_shape,dtype,idx_dtype", [
    ((4, 5), (2, 2), np.float32, np.int32), ((2, 6, 3), (1, 6, 2), np.float32, np.int64),
    ((5,), (5,), np.int32, np.int32), ((3, 4), (2, 3), np.int8, np.int32),
    ((3, 4), (3, 0), np.float32, np.int32)])
def test_dynamic_update_slice_matches_litert(tf, shape, upd_shape, dtype, idx_dtype):
    """Start indices out of range (negative, past the end, int extremes) are clamped so the
    update fits, as XLA and LiteRT do."""
    content = _dus_model(tf, shape, upd_shape, dtype, idx_dtype)
    assert op_names(content) == ["DYNAMIC_UPDATE_SLICE"]
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 50).astype(dtype)
    u = (rng.standard_normal(upd_shape) * 50).astype(dtype)
    info = np.iinfo(idx_dtype)
    for start in ([0] * len(shape), [1] * len(shape), [-3] + [2] * (len(shape) - 1),
                  [info.max] * len(shape), [info.min, 1, 7][:len(shape)]):
        xs = [x, u, np.array(start, idx_dtype)]
        got, want = run_ours(content, xs)[0], run_litert(content, xs)[0]
        np.testing.assert_array_equal(got, want, err_msg=str(start))


# --- SHAPE's out_type -------------------------------------------------------------------------
@pytest.mark.parametrize("out_type,out_dtype,ok", [
    (TensorType.INT32, np.int32, True), (TensorType.INT64, np.int64, True),
    (None, np.int32, False), (TensorType.FLOAT32, np.int32, False),
    (TensorType.INT64, np.int32, False)])
def test_shape_out_type_as_litert(out_type, out_dtype, ok):
    """LiteRT takes SHAPE's output type from ShapeOptions.out_type: without options (or with
    another type) it refuses the op; we also refuse an out_type the output tensor does not have
    (LiteRT would retype the tensor)."""
    opts = None if out_type is None else O.ShapeOptions(out_type=out_type)
    x = np.zeros((2, 5, 3), np.float32)
    content = one_op(Op.SHAPE, [x], [((3,), out_dtype)], options=opts)
    ref = litert_interpreter(content)
    ours = wb.Interpreter(model_content=content)
    if ok:
        for it in (ref, ours):
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
        e = ref.get_tensor(ref.get_output_details()[0]["index"])
        g = ours.get_tensor(ours.get_output_details()[0]["index"])
        assert g.dtype == e.dtype and g.tolist() == e.tolist() == [2, 5, 3]
    else:
        if out_type != TensorType.INT64:  # the mismatch LiteRT accepts (it retypes the output)
            with pytest.raises(RuntimeError):
                ref.allocate_tensors()
        with pytest.raises(ModelError, match="out_type"):
            ours.allocate_tensors()
