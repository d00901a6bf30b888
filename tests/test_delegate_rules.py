"""Delegate op-support rules and TFLite-style partitioning.

Oracles:

* LiteRT's XNNPACK delegate on this machine (applied by default by ``ai_edge_litert``): the nodes
  each ``DELEGATE`` node replaced are recovered from the interpreter's op list, and our XNNPACK
  partitioning must equal them exactly, on the converter-built corpus (float32, int8, dynamic
  range, float16, 16x8) and on hand-built graphs whose partitioning is non-trivial.
* The published op lists of ``/work/shared/data/delegate_facts.md`` (GPU documentation list,
  NNAPI API levels, Hexagon, Core ML, XNNPACK): every listed op gets the listed verdict.
* The partition algorithm's own rules (greedy epochs, min nodes, max partitions, dependency
  splits, side-effect ordering), on synthetic graphs whose answer follows from TFLite's
  ``PartitionGraphIntoIndependentNodeSubsets`` by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from tests import corpus
from workbench.delegates import DELEGATES, check_op, partition
from workbench.delegates.partition import node_subsets
from workbench.errors import InputError
from workbench.ir import ops as O
from workbench.ir.graph import Model, Operator, QuantParams, Subgraph

Op = O.Op
F32, F16, I8, U8, I32 = np.float32, np.float16, np.int8, np.uint8, np.int32
Act = O.ActivationFunctionType


# -- building graphs with our IR -----------------------------------------------------------------
class Graph:
    """A small model under construction (our IR editing API, written by our writer)."""

    def __init__(self) -> None:
        self.m = Model()
        self.sg = Subgraph(name="main")
        self.m.subgraphs.append(self.sg)
        self.n = 0

    def _name(self, p: str) -> str:
        self.n += 1
        return f"{p}{self.n}"

    def input(self, shape, dtype=F32, q=None):
        t = self.sg.new_tensor(self._name("in"), shape, dtype, quantization=q)
        self.sg.inputs.append(t)
        return t

    def const(self, value, dtype=None, q=None):
        v = np.asarray(value, dtype=dtype)
        return self.sg.new_tensor(self._name("c"), v.shape, v.dtype, data=v, quantization=q)

    def op(self, code, ins, outs, options=None, version=1, custom=None):
        """Add an operator; ``outs`` are (shape, dtype[, quant]) tuples. Returns the output
        tensor (or the list of them)."""
        tout = [self.sg.new_tensor(self._name("t"), o[0], o[1],
                                   quantization=o[2] if len(o) > 2 else None) for o in outs]
        oc = self.m.opcode(code, None, version) if custom is None else \
            self.m.opcode(None, custom, version)
        self.sg.add_operator(Operator(oc, list(ins), tout, options=options))
        return tout[0] if len(tout) == 1 else tout

    def build(self, *outs) -> bytes:
        self.sg.outputs.extend(outs)
        return self.m.to_bytes()


def qp(scale=0.05, zp=0):
    return QuantParams(scale=np.array([scale], np.float32), zero_point=np.array([zp], np.int64))


# -- the LiteRT oracle ---------------------------------------------------------------------------
def litert_xnnpack_partitions(content: bytes) -> list[list[int]] | None:
    """Node lists of the XNNPACK delegate nodes LiteRT creates by default (None if LiteRT
    cannot prepare the model). A delegate node's inputs are its partition's boundary; walking
    back from its outputs to them visits exactly the nodes it replaced."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=content)
    try:
        it.allocate_tensors()
    except (RuntimeError, ValueError):
        return None
    ops = it._get_ops_details()
    producer = {int(t): d["index"] for d in ops if d["op_name"] != "DELEGATE"
                for t in d["outputs"]}
    parts = []
    for d in ops:
        if d["op_name"] != "DELEGATE":
            continue
        stop = {int(t) for t in d["inputs"]}
        seen: set[int] = set()
        todo = [int(t) for t in d["outputs"]]
        while todo:
            t = todo.pop()
            if t in stop or t not in producer or producer[t] in seen:
                continue
            seen.add(producer[t])
            todo += [int(x) for x in ops[producer[t]]["inputs"] if int(x) >= 0]
        parts.append(sorted(seen))
    return sorted(parts)


def ours_xnnpack(content: bytes, **kw) -> list[list[int]]:
    return sorted(sorted(p.ops) for p in partition(wb.load(content), "xnnpack",
                                                   **kw).delegate_partitions)


def assert_same_as_litert(content: bytes) -> None:
    ref = litert_xnnpack_partitions(content)
    if ref is None:
        pytest.skip("LiteRT cannot prepare this model")
    ours = ours_xnnpack(content)
    assert ours == ref, f"ours {ours} != LiteRT {ref}"


# -- (a) XNNPACK against LiteRT: corpus --------------------------------------------------------
SMALL = [n for n, s in corpus.MODELS.items() if not s.big]
BIG = ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0"]
CORPUS_CASES = [(n, m) for n in SMALL for m in corpus.MODELS[n].modes] + \
    [pytest.param(n, m, marks=pytest.mark.slow) for n in BIG
     for m in ("float32", "int8", "dynamic", "float16", "int16x8")]


@pytest.mark.parametrize("name,mode", CORPUS_CASES)
def test_xnnpack_partitions_equal_litert_on_corpus(name, mode):
    path = corpus.model_path(name, mode)
    if path is None:
        pytest.skip(corpus.unsupported_reason(name, mode))
    assert_same_as_litert(path.read_bytes())


# -- (a) XNNPACK against LiteRT: hand-built graphs ---------------------------------------------
def _chain_with_unsupported_middle() -> bytes:
    g = Graph()
    x = g.input((1, 8))
    a = g.op(Op.ADD, [x, g.const(np.ones((1, 8), F32))], [((1, 8), F32)], O.AddOptions())
    b = g.op(Op.MUL, [a, a], [((1, 8), F32)], O.MulOptions())
    c = g.op(Op.CUMSUM, [b, g.const(np.array(1, I32))], [((1, 8), F32)], O.CumsumOptions())
    d = g.op(Op.SUB, [c, a], [((1, 8), F32)], O.SubOptions())
    e = g.op(Op.TANH, [d], [((1, 8), F32)])
    return g.build(e)


def _dependency_split() -> bytes:
    # A (claimed) -> U (unclaimed) -> B(A, U) (claimed), plus an independent claimed node E
    # that greedy partitioning pulls into A's subset.
    g = Graph()
    x = g.input((1, 8))
    a = g.op(Op.ADD, [x, x], [((1, 8), F32)], O.AddOptions())
    u = g.op(Op.CUMSUM, [a, g.const(np.array(1, I32))], [((1, 8), F32)], O.CumsumOptions())
    b = g.op(Op.MUL, [a, u], [((1, 8), F32)], O.MulOptions())
    e = g.op(Op.ABS, [x], [((1, 8), F32)])
    return g.build(b, e)


def _quantized_scale_limits() -> bytes:
    # int8 ADD whose input/output scale ratio XNNPACK cannot represent (1e-4 < 2^-10), next to
    # ones it can: the rejected ADD splits the graph.
    g = Graph()
    x = g.input((1, 4, 4, 8), I8, qp(0.05))
    a = g.op(Op.ADD, [x, x], [((1, 4, 4, 8), I8, qp(0.1))], O.AddOptions())
    tiny = g.const(np.ones((1, 4, 4, 8), I8), q=qp(1e-5))
    b = g.op(Op.ADD, [a, tiny], [((1, 4, 4, 8), I8, qp(0.1))], O.AddOptions())
    c = g.op(Op.MUL, [b, b], [((1, 4, 4, 8), I8, qp(0.5))], O.MulOptions())
    return g.build(c)


def _fp16_weights() -> bytes:
    # DEQUANTIZE(float16 constant) feeding a delegated FC joins the delegate; one feeding an
    # unsupported op (CUMSUM) stays on the CPU.
    g = Graph()
    x = g.input((1, 8))
    w16 = g.const(np.ones((4, 8), F16))
    w = g.op(Op.DEQUANTIZE, [w16], [((4, 8), F32)])
    b16 = g.const(np.zeros((4,), F16))
    b = g.op(Op.DEQUANTIZE, [b16], [((4,), F32)])
    y = g.op(Op.FULLY_CONNECTED, [x, w, b], [((1, 4), F32)], O.FullyConnectedOptions())
    k16 = g.const(np.ones((1, 4), F16))
    k = g.op(Op.DEQUANTIZE, [k16], [((1, 4), F32)])
    z = g.op(Op.CUMSUM, [k, g.const(np.array(1, I32))], [((1, 4), F32)], O.CumsumOptions())
    out = g.op(Op.ADD, [y, z], [((1, 4), F32)], O.AddOptions())
    return g.build(out)


def _multi_output_split() -> bytes:
    # SPLIT with two outputs, one consumed by a claimed op, one by an unclaimed op.
    g = Graph()
    x = g.input((1, 8, 8, 4))
    s0, s1 = g.op(Op.SPLIT, [g.const(np.array(3, I32)), x], [((1, 8, 8, 2), F32)] * 2,
                  O.SplitOptions(num_splits=2))
    r = g.op(Op.RELU, [s0], [((1, 8, 8, 2), F32)])
    c = g.op(Op.CUMSUM, [s1, g.const(np.array(3, I32))], [((1, 8, 8, 2), F32)],
             O.CumsumOptions())
    out = g.op(Op.CONCATENATION, [r, c], [((1, 8, 8, 4), F32)],
               O.ConcatenationOptions(axis=3))
    return g.build(out, r)


@pytest.mark.parametrize("build", [_chain_with_unsupported_middle, _dependency_split,
                                   _quantized_scale_limits, _fp16_weights,
                                   _multi_output_split])
def test_xnnpack_partitions_equal_litert_on_crafted_graphs(build):
    assert_same_as_litert(build())


def test_crafted_graphs_partition_as_expected():
    # The oracle agreeing is not enough: these graphs must also be non-trivial.
    assert ours_xnnpack(_chain_with_unsupported_middle()) == [[0, 1], [3, 4]]
    assert ours_xnnpack(_dependency_split()) == [[0, 3], [2]]
    assert ours_xnnpack(_quantized_scale_limits()) == [[0], [2]]
    assert ours_xnnpack(_fp16_weights()) == [[0, 1, 2], [5]]


# -- single-op models ----------------------------------------------------------------------------
def single(code, kind: str = "f32", version: int = 1, bias: bool = True) -> bytes:
    """A one-op model of ``code`` with typical shapes. ``kind``: "f32", "i8" or "u8"
    (activations and weights 8-bit quantized, int32 bias)."""
    g = Graph()
    dt = {"f32": F32, "i8": I8, "u8": U8}[kind]
    q = None if kind == "f32" else qp(0.05, 0 if kind == "i8" else 128)
    qw = None if kind == "f32" else qp(0.02, 0 if kind == "i8" else 128)
    qb = None if kind == "f32" else qp(0.05 * 0.02)
    bdt = F32 if kind == "f32" else I32
    S = (1, 8, 8, 4)

    def x(shape=S):
        return g.input(shape, dt, q)

    def out(shape=S, d=None, qq="same"):
        return (shape, dt if d is None else d, q if qq == "same" else qq)

    def w(shape):
        return g.const(np.ones(shape, dt), q=qw)

    unary = {Op.ABS, Op.CEIL, Op.COS, Op.ELU, Op.EXP, Op.FLOOR, Op.GELU, Op.HARD_SWISH, Op.LOG,
             Op.LOGISTIC, Op.NEG, Op.RELU, Op.RELU6, Op.RELU_N1_TO_1, Op.ROUND, Op.RSQRT,
             Op.SIN, Op.SQRT, Op.SQUARE, Op.TANH, Op.LOG_SOFTMAX, Op.L2_NORMALIZATION}
    binary_opts = {Op.ADD: O.AddOptions(), Op.SUB: O.SubOptions(), Op.MUL: O.MulOptions(),
                   Op.DIV: O.DivOptions(), Op.MAXIMUM: O.MaximumMinimumOptions(),
                   Op.MINIMUM: O.MaximumMinimumOptions(), Op.POW: O.PowOptions(),
                   Op.SQUARED_DIFFERENCE: O.SquaredDifferenceOptions()}
    opts_for = {Op.LEAKY_RELU: O.LeakyReluOptions(alpha=0.2), Op.GELU: O.GeluOptions(),
                Op.L2_NORMALIZATION: O.L2NormOptions(), Op.LOG_SOFTMAX: O.LogSoftmaxOptions()}
    if code in unary or code == Op.LEAKY_RELU:
        y = g.op(code, [x()], [out()], opts_for.get(code), version)
    elif code in binary_opts:
        y = g.op(code, [x(), x()], [out()], binary_opts[code], version)
    elif code == Op.PRELU:
        y = g.op(code, [x(), g.const(np.ones((1, 1, 4), dt), q=q)], [out()], None, version)
    elif code in (Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D, Op.L2_POOL_2D):
        y = g.op(code, [x()], [out((1, 4, 4, 4))],
                 O.Pool2DOptions(padding=O.Padding.VALID, stride_w=2, stride_h=2,
                                 filter_width=2, filter_height=2), version)
    elif code == Op.CONV_2D:
        y = g.op(code, [x(), w((8, 3, 3, 4)), g.const(np.zeros(8, bdt), q=qb)],
                 [out((1, 8, 8, 8))], O.Conv2DOptions(stride_w=1, stride_h=1), version)
    elif code == Op.DEPTHWISE_CONV_2D:
        wq = None if kind == "f32" else QuantParams(scale=np.full(4, 0.02, np.float32),
                                                    zero_point=np.zeros(4, np.int64),
                                                    quantized_dimension=3)
        bq = QuantParams(scale=np.full(4, 0.05 * 0.02, np.float32),
                         zero_point=np.zeros(4, np.int64)) if kind == "i8" else qb
        y = g.op(code, [x(), g.const(np.ones((1, 3, 3, 4), dt), q=wq if kind == "i8" else qw),
                        g.const(np.zeros(4, bdt), q=bq)], [out()],
                 O.DepthwiseConv2DOptions(stride_w=1, stride_h=1, depth_multiplier=1), version)
    elif code == Op.TRANSPOSE_CONV:
        ins = [g.const(np.array([1, 16, 16, 4], I32)), w((4, 3, 3, 4)), x()]
        if bias:
            ins.append(g.const(np.zeros(4, bdt), q=qb))
        y = g.op(code, ins, [out((1, 16, 16, 4))],
                 O.TransposeConvOptions(stride_w=2, stride_h=2), version)
    elif code == Op.FULLY_CONNECTED:
        y = g.op(code, [x((1, 16)), w((8, 16)), g.const(np.zeros(8, bdt), q=qb)],
                 [out((1, 8))], O.FullyConnectedOptions(), version)
    elif code == Op.CONCATENATION:
        y = g.op(code, [x(), x()], [out((1, 8, 8, 8))], O.ConcatenationOptions(axis=3),
                 version)
    elif code == Op.RESHAPE:
        y = g.op(code, [x(), g.const(np.array([1, 64, 4], I32))], [out((1, 64, 4))],
                 O.ReshapeOptions(new_shape=(1, 64, 4)), version)
    elif code == Op.SOFTMAX:
        y = g.op(code, [x((1, 16))], [out((1, 16), qq=None if kind == "f32" else
                                           qp(1 / 256, -128 if kind == "i8" else 0))],
                 O.SoftmaxOptions(beta=1.0), version)
    elif code in (Op.RESIZE_BILINEAR, Op.RESIZE_NEAREST_NEIGHBOR):
        o = O.ResizeBilinearOptions() if code == Op.RESIZE_BILINEAR else \
            O.ResizeNearestNeighborOptions()
        y = g.op(code, [x(), g.const(np.array([16, 16], I32))], [out((1, 16, 16, 4))], o,
                 version)
    elif code in (Op.PAD, Op.MIRROR_PAD):
        o = O.PadOptions() if code == Op.PAD else O.MirrorPadOptions()
        y = g.op(code, [x(), g.const(np.array([[0, 0], [1, 1], [1, 1], [0, 0]], I32))],
                 [out((1, 10, 10, 4))], o, version)
    elif code == Op.STRIDED_SLICE:
        y = g.op(code, [x(), g.const(np.array([0, 0, 0, 0], I32)),
                        g.const(np.array([1, 4, 4, 4], I32)), g.const(np.array([1, 1, 1, 1],
                                                                               I32))],
                 [out((1, 4, 4, 4))], O.StridedSliceOptions(), version)
    elif code == Op.SLICE:
        y = g.op(code, [x(), g.const(np.array([0, 0, 0, 0], I32)),
                        g.const(np.array([1, 4, 4, 4], I32))], [out((1, 4, 4, 4))],
                 O.SliceOptions(), version)
    elif code == Op.TRANSPOSE:
        y = g.op(code, [x(), g.const(np.array([0, 2, 1, 3], I32))], [out()],
                 O.TransposeOptions(), version)
    elif code in (Op.MEAN, Op.SUM, Op.REDUCE_MAX):
        y = g.op(code, [x(), g.const(np.array([1, 2], I32))], [out((1, 1, 1, 4))],
                 O.ReducerOptions(keep_dims=True), version)
    elif code in (Op.SPACE_TO_DEPTH, Op.DEPTH_TO_SPACE):
        if code == Op.SPACE_TO_DEPTH:
            y = g.op(code, [x()], [out((1, 4, 4, 16))], O.SpaceToDepthOptions(block_size=2),
                     version)
        else:
            y = g.op(code, [x()], [out((1, 16, 16, 1))], O.DepthToSpaceOptions(block_size=2),
                     version)
    elif code == Op.SPLIT:
        y = g.op(code, [g.const(np.array(3, I32)), x()], [out((1, 8, 8, 2))] * 2,
                 O.SplitOptions(num_splits=2), version)[0]
    elif code == Op.PACK:
        y = g.op(code, [x((8, 4)), x((8, 4))], [out((2, 8, 4))],
                 O.PackOptions(values_count=2, axis=0), version)
    elif code == Op.ARG_MAX:
        y = g.op(code, [x(), g.const(np.array([3], I32))], [((1, 8, 8), I32)],
                 O.ArgMaxOptions(output_type=O.TensorType.INT32), version)
    elif code == Op.GATHER:
        y = g.op(code, [x((10, 4)), g.const(np.array([1, 2], I32))], [out((2, 4))],
                 O.GatherOptions(axis=0), version)
    elif code in (Op.GATHER_ND, Op.TOPK_V2):
        if code == Op.GATHER_ND:
            y = g.op(code, [x((4, 4)), g.const(np.array([[1], [2]], I32))], [out((2, 4))],
                     O.GatherNdOptions(), version)
        else:
            y = g.op(code, [x((1, 16)), g.const(np.array(2, I32))],
                     [out((1, 2)), ((1, 2), I32)], O.TopKV2Options(), version)[0]
    else:
        raise ValueError(f"no single-op builder for {O.op_name(code)}")
    return g.build(y)


def verdict(content: bytes, delegate: str, **opts):
    return check_op(wb.load(content), 0, delegate, **opts)


# -- (a) XNNPACK single ops against LiteRT -------------------------------------------------------
XNN_PUBLISHED_F32 = [Op.ABS, Op.ADD, Op.AVERAGE_POOL_2D, Op.CEIL, Op.CONV_2D, Op.DEPTH_TO_SPACE,
                     Op.DEPTHWISE_CONV_2D, Op.DIV, Op.ELU, Op.FULLY_CONNECTED, Op.FLOOR,
                     Op.HARD_SWISH, Op.LEAKY_RELU, Op.LOGISTIC, Op.MAX_POOL_2D, Op.MAXIMUM,
                     Op.MEAN, Op.MINIMUM, Op.MUL, Op.NEG, Op.PAD, Op.PRELU, Op.RELU, Op.RELU6,
                     Op.RELU_N1_TO_1, Op.RESHAPE, Op.RESIZE_BILINEAR, Op.ROUND, Op.SOFTMAX,
                     Op.SQRT, Op.SQUARE, Op.SQUARED_DIFFERENCE, Op.SUB]
XNN_PUBLISHED_Q8 = [Op.ADD, Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED, Op.MUL]
OTHER_OPS = [Op.TANH, Op.EXP, Op.LOG, Op.SIN, Op.COS, Op.RSQRT, Op.GELU, Op.TRANSPOSE_CONV,
             Op.CONCATENATION, Op.STRIDED_SLICE, Op.SLICE, Op.TRANSPOSE, Op.SUM,
             Op.REDUCE_MAX, Op.SPACE_TO_DEPTH, Op.SPLIT, Op.PACK, Op.ARG_MAX, Op.GATHER,
             Op.GATHER_ND, Op.TOPK_V2, Op.L2_POOL_2D, Op.LOG_SOFTMAX, Op.L2_NORMALIZATION,
             Op.POW, Op.MIRROR_PAD, Op.RESIZE_NEAREST_NEIGHBOR]


@pytest.mark.parametrize("code", XNN_PUBLISHED_F32, ids=O.op_name)
def test_xnnpack_published_float_ops_claimed_like_litert(code):
    content = single(code, "f32")
    assert verdict(content, "xnnpack").supported
    assert litert_xnnpack_partitions(content) == [[0]]


@pytest.mark.parametrize("code", XNN_PUBLISHED_Q8, ids=O.op_name)
def test_xnnpack_published_quantized_ops_claimed_like_litert(code):
    content = single(code, "i8")
    assert verdict(content, "xnnpack").supported
    assert litert_xnnpack_partitions(content) == [[0]]


@pytest.mark.parametrize("kind", ["f32", "i8", "u8"])
@pytest.mark.parametrize("code", XNN_PUBLISHED_F32 + OTHER_OPS, ids=O.op_name)
def test_xnnpack_single_op_verdict_equals_litert(code, kind):
    content = single(code, kind)
    ref = litert_xnnpack_partitions(content)
    if ref is None:
        pytest.skip("LiteRT's built-in kernels reject this op/type combination")
    v = verdict(content, "xnnpack")
    assert v.supported == (ref == [[0]]), v.reason


@pytest.mark.parametrize("act", [Act.TANH, Act.SIGN_BIT])
def test_xnnpack_rejects_tanh_and_sign_bit_fused_activations(act):
    g = Graph()
    x = g.input((1, 8, 8, 4))
    y = g.op(Op.CONV_2D, [x, g.const(np.ones((8, 3, 3, 4), F32)), g.const(np.zeros(8, F32))],
             [((1, 8, 8, 8), F32)],
             O.Conv2DOptions(stride_w=1, stride_h=1, fused_activation_function=act))
    content = g.build(y)
    v = verdict(content, "xnnpack")
    assert not v.supported and "fused activation" in v.reason
    assert litert_xnnpack_partitions(content) == []


def test_xnnpack_published_constraints():
    # "1x1 pooling with non-unit stride is not supported"; "SOFTMAX only with beta = 1".
    g = Graph()
    x = g.input((1, 8, 8, 4))
    y = g.op(Op.MAX_POOL_2D, [x], [((1, 4, 4, 4), F32)],
             O.Pool2DOptions(padding=O.Padding.VALID, stride_w=2, stride_h=2, filter_width=1,
                             filter_height=1))
    c1 = g.build(y)
    g = Graph()
    x = g.input((1, 16))
    c2 = g.build(g.op(Op.SOFTMAX, [x], [((1, 16), F32)], O.SoftmaxOptions(beta=0.5)))
    for c in (c1, c2):
        assert not verdict(c, "xnnpack").supported
        assert litert_xnnpack_partitions(c) == []


# -- (b) the published op lists ----------------------------------------------------------------
GPU_DOC_LIST = [Op.ADD, Op.AVERAGE_POOL_2D, Op.CONCATENATION, Op.CONV_2D, Op.DEPTHWISE_CONV_2D,
                Op.EXP, Op.FULLY_CONNECTED, Op.LOGISTIC, Op.MAX_POOL_2D, Op.MAXIMUM,
                Op.MINIMUM, Op.MUL, Op.PAD, Op.PRELU, Op.RELU, Op.RELU6, Op.RESHAPE,
                Op.RESIZE_BILINEAR, Op.SOFTMAX, Op.STRIDED_SLICE, Op.SUB, Op.TRANSPOSE_CONV]
# In the checker's list too (facts 3.2), beyond the documentation list.
GPU_CHECKER_EXTRA = [Op.ABS, Op.COS, Op.DIV, Op.ELU, Op.FLOOR, Op.GELU, Op.HARD_SWISH,
                     Op.LEAKY_RELU, Op.LOG, Op.MEAN, Op.NEG, Op.POW, Op.RSQRT, Op.SIN, Op.SQRT,
                     Op.SQUARE, Op.SQUARED_DIFFERENCE, Op.TANH, Op.SLICE, Op.SPLIT,
                     Op.SPACE_TO_DEPTH, Op.DEPTH_TO_SPACE, Op.TRANSPOSE, Op.SUM, Op.REDUCE_MAX,
                     Op.PACK, Op.GATHER, Op.MIRROR_PAD, Op.RESIZE_NEAREST_NEIGHBOR]
# Not in either GPU list: "Every other builtin is rejected".
GPU_UNLISTED = [Op.ARG_MAX, Op.GATHER_ND, Op.TOPK_V2, Op.L2_POOL_2D, Op.LOG_SOFTMAX,
                Op.L2_NORMALIZATION, Op.CEIL, Op.ROUND]


@pytest.mark.parametrize("code", GPU_DOC_LIST + GPU_CHECKER_EXTRA, ids=O.op_name)
def test_gpu_listed_ops_supported_in_float(code):
    v = verdict(single(code, "f32"), "gpu")
    assert v.supported, v.reason


@pytest.mark.parametrize("code", GPU_UNLISTED, ids=O.op_name)
def test_gpu_unlisted_ops_rejected(code):
    v = verdict(single(code, "f32"), "gpu")
    assert not v.supported
    assert v.reason in ("Operation is not supported.", f"Not supported op {O.op_name(code)}")


@pytest.mark.parametrize("code", [Op.ADD, Op.CONV_2D, Op.DEPTHWISE_CONV_2D,
                                  Op.FULLY_CONNECTED, Op.MAX_POOL_2D], ids=O.op_name)
def test_gpu_quantized_needs_allow_quantized(code):
    # "Android APIs support quantized models by default"; without it the 8-bit tensors fail.
    content = single(code, "i8")
    assert verdict(content, "gpu").supported
    v = verdict(content, "gpu", allow_quantized=False)
    assert not v.supported
    assert v.reason == "OP is supported, but tensor type/shape isn't compatible."


def test_gpu_version_limit_message():
    v = verdict(single(Op.ADD, "f32", version=3), "gpu")
    assert v.reason == "Max version supported: 2. Requested version 3."
    assert verdict(single(Op.MUL, "f32", version=3), "gpu").supported


def test_gpu_checker_constraints():
    # Softmax beta != 1; DEPTHWISE multiplier with more than one input channel; 5D tensors.
    g = Graph()
    x = g.input((1, 16))
    c = g.build(g.op(Op.SOFTMAX, [x], [((1, 16), F32)], O.SoftmaxOptions(beta=2.0)))
    assert verdict(c, "gpu").reason == "Softmax.beta != 1 is not supported."
    g = Graph()
    x = g.input((1, 8, 8, 2))
    c = g.build(g.op(Op.DEPTHWISE_CONV_2D, [x, g.const(np.ones((1, 3, 3, 4), F32)),
                                            g.const(np.zeros(4, F32))], [((1, 8, 8, 4), F32)],
                     O.DepthwiseConv2DOptions(stride_w=1, stride_h=1, depth_multiplier=2)))
    assert verdict(c, "gpu").reason == "depth_multiplier != 1 && input.c != 1"
    g = Graph()
    x = g.input((1, 2, 2, 2, 2))
    c = g.build(g.op(Op.RELU, [x], [((1, 2, 2, 2, 2), F32)]))
    assert verdict(c, "gpu").reason == \
        "OP is supported, but tensor type/shape isn't compatible."


# NNAPI: (op, min API) from the facts table 3.3 (float32 inputs).
NNAPI_MIN_API = [(Op.ADD, 27), (Op.MUL, 27), (Op.AVERAGE_POOL_2D, 27), (Op.MAX_POOL_2D, 27),
                 (Op.L2_POOL_2D, 27), (Op.CONV_2D, 27), (Op.DEPTHWISE_CONV_2D, 27),
                 (Op.FULLY_CONNECTED, 27), (Op.CONCATENATION, 27), (Op.RESHAPE, 27),
                 (Op.SOFTMAX, 27), (Op.RESIZE_BILINEAR, 27), (Op.RELU, 27), (Op.RELU6, 27),
                 (Op.RELU_N1_TO_1, 27), (Op.LOGISTIC, 27), (Op.TANH, 27), (Op.HARD_SWISH, 27),
                 (Op.L2_NORMALIZATION, 27), (Op.FLOOR, 27), (Op.SPACE_TO_DEPTH, 27),
                 (Op.DEPTH_TO_SPACE, 27), (Op.SUB, 28), (Op.DIV, 28), (Op.PAD, 28),
                 (Op.STRIDED_SLICE, 28), (Op.TRANSPOSE, 28), (Op.MEAN, 28),
                 (Op.RESIZE_NEAREST_NEIGHBOR, 29), (Op.ABS, 29), (Op.EXP, 29), (Op.LOG, 29),
                 (Op.RSQRT, 29), (Op.POW, 29), (Op.SIN, 29), (Op.SQRT, 29), (Op.SLICE, 29),
                 (Op.TRANSPOSE_CONV, 29), (Op.MAXIMUM, 29), (Op.MINIMUM, 29),
                 (Op.LEAKY_RELU, 29), (Op.PRELU, 29), (Op.GATHER, 29), (Op.SPLIT, 29),
                 (Op.LOG_SOFTMAX, 29), (Op.REDUCE_MAX, 29), (Op.SUM, 29), (Op.ARG_MAX, 29),
                 # NEG: the facts table says 28; the delegate source we read
                 # (nnapi_delegate.cc Validate) requires kMinSdkVersionForNNAPI12 = 29.
                 (Op.TOPK_V2, 29), (Op.NEG, 29), (Op.ELU, 30), (Op.PACK, 30),
                 (Op.SQUARED_DIFFERENCE, 28)]


@pytest.mark.parametrize("code,api", NNAPI_MIN_API, ids=lambda v: O.op_name(v)
                         if isinstance(v, O.Op) else str(v))
def test_nnapi_min_api_levels(code, api):
    content = single(code, "f32")
    v = verdict(content, "nnapi", android_api=api)
    assert v.supported, v.reason
    if api > 27:
        v = verdict(content, "nnapi", android_api=api - 1)
        assert not v.supported
        assert "Android sdk version less than" in v.reason or "only support float" in v.reason


def test_nnapi_rejects_everything_else_and_old_android():
    v = verdict(single(Op.GATHER_ND, "f32"), "nnapi")
    assert v.reason == "Unsupported operation type."
    assert not verdict(single(Op.ADD, "f32"), "nnapi", android_api=26).supported


def test_nnapi_version_and_accelerator():
    c = single(Op.MUL, "f32", version=3)
    assert verdict(c, "nnapi").reason == "OP Version higher than 2"
    assert verdict(c, "nnapi", accelerator_name="qti-dsp").supported
    # A device whose only NNAPI device is the CPU reference runs nothing by default.
    c = single(Op.ADD, "f32")
    v = verdict(c, "nnapi", device_accelerators=["nnapi-reference"])
    assert "will not be executed by the delegate" in v.reason
    assert verdict(c, "nnapi", device_accelerators=["nnapi-reference"],
                   disallow_nnapi_cpu=False).supported
    assert verdict(c, "nnapi", device_accelerators=["nnapi-reference", "qti-dsp"]).supported


# Hexagon (facts 3.4): quantized ops supported; float rejected ("we only support quantized").
HEXAGON_LIST = [Op.ADD, Op.ARG_MAX, Op.AVERAGE_POOL_2D, Op.CONCATENATION, Op.CONV_2D,
                Op.DEPTH_TO_SPACE, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED, Op.HARD_SWISH,
                Op.L2_NORMALIZATION, Op.LOGISTIC, Op.MAXIMUM, Op.MAX_POOL_2D, Op.MEAN,
                Op.MINIMUM, Op.MIRROR_PAD, Op.MUL, Op.PACK, Op.PAD, Op.RELU6, Op.RESHAPE,
                Op.RESIZE_BILINEAR, Op.RESIZE_NEAREST_NEIGHBOR, Op.SLICE, Op.SOFTMAX,
                Op.SPACE_TO_DEPTH, Op.SPLIT, Op.STRIDED_SLICE, Op.SUB, Op.TANH, Op.TRANSPOSE,
                Op.TRANSPOSE_CONV]


@pytest.mark.parametrize("kind", ["u8", "i8"])
@pytest.mark.parametrize("code", HEXAGON_LIST, ids=O.op_name)
def test_hexagon_listed_quantized_ops(code, kind):
    # Hexagon's TransposeConv2D takes the 3-input form (no bias).
    v = verdict(single(code, kind, bias=code != Op.TRANSPOSE_CONV), "hexagon")
    assert v.supported, v.reason
    assert not verdict(single(code, "f32"), "hexagon").supported


def test_hexagon_constraints():
    # Conv2D stride <= 3; Resize Bilinear requested size <= 65; RELU needs version 2 (int8).
    g = Graph()
    x = g.input((1, 16, 16, 4), U8, qp(0.05, 128))
    y = g.op(Op.CONV_2D, [x, g.const(np.ones((8, 3, 3, 4), U8), q=qp(0.02, 128)),
                          g.const(np.zeros(8, I32), q=qp(0.001))],
             [((1, 4, 4, 8), U8, qp(0.05, 128))], O.Conv2DOptions(stride_w=4, stride_h=4))
    assert "stride" in verdict(g.build(y), "hexagon").reason
    g = Graph()
    x = g.input((1, 8, 8, 4), U8, qp(0.05, 128))
    y = g.op(Op.RESIZE_BILINEAR, [x, g.const(np.array([80, 80], I32))],
             [((1, 80, 80, 4), U8, qp(0.05, 128))], O.ResizeBilinearOptions())
    assert "65" in verdict(g.build(y), "hexagon").reason
    assert not verdict(single(Op.RELU, "i8", version=1), "hexagon").supported
    assert verdict(single(Op.RELU, "i8", version=2), "hexagon").supported


CORE_ML_LIST = [Op.ADD, Op.MUL, Op.AVERAGE_POOL_2D, Op.CONCATENATION, Op.MAX_POOL_2D,
                Op.HARD_SWISH, Op.LOGISTIC, Op.RELU, Op.RELU_N1_TO_1, Op.RELU6,
                Op.RESIZE_BILINEAR, Op.SOFTMAX, Op.TANH, Op.CONV_2D, Op.DEPTHWISE_CONV_2D,
                Op.MIRROR_PAD, Op.PAD, Op.TRANSPOSE_CONV, Op.MEAN]


@pytest.mark.parametrize("code", CORE_ML_LIST, ids=O.op_name)
def test_coreml_listed_float_ops(code):
    v = verdict(single(code, "f32"), "coreml")
    assert v.supported, v.reason
    assert not verdict(single(code, "i8"), "coreml").supported


def test_coreml_constraints():
    # Reshape only targeting Core ML 2; FC single batch with constant weights; device gate.
    c = single(Op.RESHAPE, "f32")
    assert not verdict(c, "coreml").supported
    g = Graph()
    x = g.input((1, 8, 8, 4))
    c2 = g.build(g.op(Op.RESHAPE, [x, g.const(np.array([1, 16, 4, 4], I32))],
                      [((1, 16, 4, 4), F32)], O.ReshapeOptions(new_shape=(1, 16, 4, 4))))
    assert verdict(c2, "coreml", coreml_version=2).supported
    assert verdict(single(Op.FULLY_CONNECTED, "f32"), "coreml").supported
    g = Graph()
    x = g.input((2, 16))
    c3 = g.build(g.op(Op.FULLY_CONNECTED, [x, g.const(np.ones((8, 16), F32))],
                      [((2, 8), F32)], O.FullyConnectedOptions()))
    assert "single-batch" in verdict(c3, "coreml").reason
    v = verdict(single(Op.ADD, "f32"), "coreml", has_neural_engine=False)
    assert "Neural Engine" in v.reason
    assert verdict(single(Op.ADD, "f32"), "coreml", has_neural_engine=False,
                   enabled_devices="all").supported


# -- (c) the partition algorithm -----------------------------------------------------------------
def _chain(n):
    # node i reads tensor i, writes tensor i+1
    return [([i], [i + 1]) for i in range(n)]


def test_subsets_alternate_in_execution_order():
    subsets = node_subsets(_chain(5), [True, True, False, True, True])
    assert [(s[0], s[1]) for s in subsets] == [(True, [0, 1]), (False, [2]), (True, [3, 4])]
    # boundaries: the first subset hands tensor 2 to the CPU node, which hands 3 back
    assert subsets[0][3] == [2] and subsets[1][2] == [2] and subsets[2][2] == [3]


def test_greedy_merges_independent_claimed_nodes():
    # n0 claimed, n1 unclaimed (independent), n2 claimed depends on n0 only -> {0, 2}, {1}
    nodes = [([0], [1]), ([0], [2]), ([1], [3])]
    subsets = node_subsets(nodes, [True, False, True])
    assert [(s[0], s[1]) for s in subsets] == [(True, [0, 2]), (False, [1])]
    # non-greedy keeps the execution order strictly
    subsets = node_subsets(nodes, [True, False, True], greedy=False)
    assert [s[1] for s in subsets] == [[0], [1], [2]]


def test_dependency_through_unclaimed_node_forces_split():
    # a claimed node depending on an unclaimed node that depends on an earlier claimed node
    nodes = [([0], [1]), ([1], [2]), ([1, 2], [3])]
    subsets = node_subsets(nodes, [True, False, True])
    assert [s[1] for s in subsets] == [[0], [1], [2]]
    assert subsets[2][2] == [1, 2]  # both the earlier delegate output and the CPU output


def test_side_effect_ops_keep_their_order():
    # n1 and n2 both have side effects; n2 must wait for n1 even though it is ready earlier
    nodes = [([0], [1]), ([1], [2]), ([0], [3])]
    free = node_subsets(nodes, [True, False, True])
    assert [s[1] for s in free] == [[0, 2], [1]]
    ordered = node_subsets(nodes, [True, False, True], side_effect=[False, True, True])
    assert [s[1] for s in ordered] == [[0], [1], [2]]


def _graph_with_subsets(sizes_and_gaps) -> bytes:
    """A chain: runs of ABS (claimed by the float delegates) separated by REVERSE_V2
    (claimed by none), e.g. [3, 1, 2] -> ABS ABS ABS | REVERSE_V2 | ABS ABS."""
    g = Graph()
    t = g.input((1, 8))
    for k, n in enumerate(sizes_and_gaps):
        for _ in range(n):
            if k % 2 == 0:
                t = g.op(Op.ABS, [t], [((1, 8), F32)])
            else:
                t = g.op(Op.REVERSE_V2, [t, g.const(np.array([1], I32))], [((1, 8), F32)],
                         O.ReverseV2Options())
    return g.build(t)


def test_max_delegated_partitions_keeps_the_largest():
    m = wb.load(_graph_with_subsets([2, 1, 4, 1, 3]))
    p = partition(m, "gpu")  # GPU default: 1 partition
    assert [q.ops for q in p.delegate_partitions] == [[3, 4, 5, 6]]
    assert p.reason(0).startswith("Partition not among the 1 largest")
    p = partition(m, "gpu", max_delegated_partitions=2)
    assert sorted(q.ops for q in p.delegate_partitions) == [[3, 4, 5, 6], [8, 9, 10]]
    p = partition(m, "gpu", max_delegated_partitions=0)  # 0 = unlimited
    assert len(p.delegate_partitions) == 3


def test_min_nodes_per_partition():
    m = wb.load(_graph_with_subsets([1, 1, 2, 1, 3]))
    p = partition(m, "xnnpack", min_nodes_per_partition=2)
    assert [q.ops for q in p.delegate_partitions] == [[2, 3], [5, 6, 7]]
    assert "min_nodes_per_partition=2" in p.reason(0)
    p = partition(m, "coreml")  # Core ML default: 2
    assert p.min_nodes_per_partition == 2 and [0] not in [q.ops for q in p.delegate_partitions]


def test_boundary_tensors_and_bytes():
    m = wb.load(_graph_with_subsets([2, 1, 2]))
    p = partition(m, "xnnpack")
    first, second = p.delegate_partitions
    assert [t.shape for t in first.outputs] == [(1, 8)] and first.output_bytes == 32
    assert first.input_bytes == 32  # the model input
    assert second.input_bytes == 32 and second.output_bytes == 32  # model output
    s = p.summary
    assert s["ops_delegated"] == 4 and s["delegate_partitions"] == 2
    assert s["transfer_in_bytes"] == 64 and s["transfer_out_bytes"] == 64
    df = p.df
    assert list(df.columns) == ["index", "op", "claimed", "delegated", "partition",
                                "processor", "reason"]
    assert df.loc[2, "reason"] == "unsupported operator type REVERSE_V2"
    assert "Following operations are not supported" in p.log
    assert "<table>" in p._repr_html_()


def test_dynamic_tensors_disable_static_delegates_but_not_xnnpack():
    g = Graph()
    x = g.input((2, 4))
    s = g.input((2,), I32)
    a = g.op(Op.ADD, [x, x], [((2, 4), F32)], O.AddOptions())
    r = g.op(Op.RESHAPE, [a, s], [((4, 2), F32)], O.ReshapeOptions())
    y = g.op(Op.MUL, [r, r], [((4, 2), F32)], O.MulOptions())
    content = g.build(y)
    assert_same_as_litert(content)  # XNNPACK delegates around the dynamic tensor
    p = partition(wb.load(content), "gpu")
    assert p.summary["ops_delegated"] == 0
    assert "dynamic-sized tensors" in p.reason(0)


def test_cpu_claims_nothing_and_bad_input_errors():
    m = wb.load(_graph_with_subsets([2]))
    assert partition(m, "cpu").summary["ops_delegated"] == 0
    assert set(DELEGATES) == {"xnnpack", "gpu", "nnapi", "hexagon", "coreml", "cpu"}
    with pytest.raises(InputError, match="unknown delegate"):
        partition(m, "tpu")
    with pytest.raises(InputError, match="unknown option"):
        partition(m, "gpu", android_api=30)
    with pytest.raises(InputError, match="subgraph"):
        partition(m, "gpu", subgraph=3)
    with pytest.raises(InputError, match="out of range"):
        check_op(m, 7, "gpu")
    with pytest.raises(InputError, match="android_api"):
        partition(m, "nnapi", android_api="Q")
    with pytest.raises(InputError, match="coreml_version"):
        partition(m, "coreml", coreml_version=4)
    with pytest.raises(InputError, match="min_nodes_per_partition"):
        partition(m, "gpu", min_nodes_per_partition=-1)
    with pytest.raises(InputError, match="max_delegated_partitions"):
        partition(m, "gpu", max_delegated_partitions=1.5)


def test_plot_marks_processors():
    p = partition(wb.load(_graph_with_subsets([2, 1, 4, 1, 3])), "gpu")
    fig = p.plot()
    ax = fig.axes[0]
    colors = [tuple(round(c, 3) for c in bar.get_facecolor()[:3]) for bar in ax.patches]
    assert len(colors) == 11  # one bar per op
    # delegated (largest partition), claimed-but-kept (limits) and CPU fallback all appear
    assert len(set(colors)) == 3
    assert fig._repr_png_()[:4] == b"\x89PNG"


# -- (a) randomized single ops against LiteRT ----------------------------------------------------
def _random_op(r: np.random.Generator) -> bytes:
    """A random one-op model: op kind, dtype (float32/int8/uint8), rank, options, constant or
    runtime parameters and quantization scales all drawn from ``r``."""
    g = Graph()
    dt = [F32, F32, I8, U8][r.integers(4)]

    def q(d, s=None):
        if d in (F32, I32):
            return None
        return qp(float(s if s is not None else r.choice([0.05, 0.1, 0.01, 1e-5, 2.0])),
                  0 if d == I8 else 128)

    acts = [Act.NONE, Act.RELU, Act.RELU6, Act.RELU_N1_TO_1, Act.TANH]
    act = acts[r.integers(len(acts))]
    kind = r.choice(["binary", "conv", "fc", "pool", "reshape", "concat", "transpose",
                     "sslice", "reduce", "softmax", "pad", "resize", "unary", "bmm", "tconv"])
    if kind == "binary":
        code, opts = [(Op.ADD, O.AddOptions(fused_activation_function=act)),
                      (Op.SUB, O.SubOptions(fused_activation_function=act)),
                      (Op.MUL, O.MulOptions(fused_activation_function=act)),
                      (Op.DIV, O.DivOptions(fused_activation_function=act)),
                      (Op.MAXIMUM, None), (Op.MINIMUM, None),
                      (Op.SQUARED_DIFFERENCE, None)][r.integers(7)]
        rank_ = int(r.integers(0, 7))
        s0 = tuple(int(r.choice([1, 3])) for _ in range(rank_))
        s1 = tuple(d if r.random() < .7 else 1 for d in s0)
        if r.random() < .3:
            s1 = s1[int(r.integers(0, len(s1) + 1)):]
        out = tuple(max(a, b) for a, b in zip(s0, (1,) * (len(s0) - len(s1)) + s1))
        a = g.input(s0, dt, q(dt))
        b = g.const(np.ones(s1, dt), q=q(dt)) if r.random() < .4 else g.input(s1, dt, q(dt))
        y = g.op(code, [a, b], [(out, dt, q(dt))], opts)
    elif kind == "conv":
        cin, cout, k, st = int(r.choice([1, 4])), int(r.choice([4, 8])), int(r.choice([1, 3])), \
            int(r.choice([1, 2]))
        x = g.input((1, 8, 8, cin), dt, q(dt, 0.05))
        wq = q(dt, 0.02)
        w = g.const(np.ones((cout, k, k, cin), dt), q=wq) if r.random() < .85 else \
            g.input((cout, k, k, cin), dt, wq)
        b = None if r.random() < .15 else (g.const(np.zeros(cout, F32)) if dt == F32 else
                                           g.const(np.zeros(cout, I32), q=qp(0.001)))
        oh = (8 + st - 1) // st
        y = g.op(Op.CONV_2D, [x, w, b], [((1, oh, oh, cout), dt,
                                          q(dt, r.choice([0.05, 0.5, 1e-6])))],
                 O.Conv2DOptions(stride_w=st, stride_h=st, fused_activation_function=act))
    elif kind == "fc":
        keep = bool(r.random() < .3)
        shp = (1, 4, 16) if r.random() < .5 else (2, 16)
        x = g.input(shp, dt, q(dt, 0.05))
        w = g.const(np.ones((8, 16), dt), q=q(dt, 0.02)) if r.random() < .85 else \
            g.input((8, 16), dt, q(dt, 0.02))
        b = None if r.random() < .3 else (g.const(np.zeros(8, F32)) if dt == F32 else
                                          g.const(np.zeros(8, I32), q=qp(0.001)))
        out = shp[:-1] + (8,) if keep else (int(np.prod(shp[:-1])), 8)
        y = g.op(Op.FULLY_CONNECTED, [x, w, b], [(out, dt, q(dt, 0.05))],
                 O.FullyConnectedOptions(keep_num_dims=keep, fused_activation_function=act))
    elif kind == "pool":
        f, st = int(r.integers(1, 4)), int(r.integers(1, 4))
        x = g.input((1, 8, 8, 4), dt, q(dt, .05))
        oh = (8 - f) // st + 1
        code = [Op.AVERAGE_POOL_2D, Op.MAX_POOL_2D][r.integers(2)]
        y = g.op(code, [x], [((1, oh, oh, 4), dt, q(dt, .05))],
                 O.Pool2DOptions(padding=O.Padding.VALID, stride_w=st, stride_h=st,
                                 filter_width=f, filter_height=f, fused_activation_function=act))
    elif kind == "reshape":
        tgt = [(64,), (4, 16), (2, 2, 16), (2, 2, 2, 2, 2, 2), (2,) * 6 + (1,)][r.integers(5)]
        x = g.input((4, 16), dt, q(dt, .05))
        ins = [x]
        if r.random() < .7:
            ins.append(g.const(np.array(tgt, I32)) if r.random() < .8 else
                       g.input((len(tgt),), I32))
        y = g.op(Op.RESHAPE, ins, [(tgt, dt, q(dt, r.choice([.05, .1])))],
                 O.ReshapeOptions(new_shape=tgt if r.random() < .5 else None))
    elif kind == "concat":
        n, axis = int(r.integers(1, 7)), int(r.choice([1, 3, -1]))
        ins = [g.input((1, 4, 4, 2), dt, q(dt, r.choice([.05, .05, .1]))) for _ in range(n)]
        out = [1, 4, 4, 2]
        out[axis % 4] *= n
        y = g.op(Op.CONCATENATION, ins, [(tuple(out), dt, q(dt, .05))],
                 O.ConcatenationOptions(axis=axis, fused_activation_function=acts[
                     int(r.integers(2))]))
    elif kind == "transpose":
        rank_ = int(r.integers(1, 8))
        shp = tuple(range(2, 2 + rank_))
        perm = [int(i) for i in r.permutation(rank_)]
        x = g.input(shp, dt, q(dt, .05))
        p = g.const(np.array(perm, I32)) if r.random() < .85 else g.input((rank_,), I32)
        y = g.op(Op.TRANSPOSE, [x, p], [(tuple(shp[i] for i in perm), dt, q(dt, .05))],
                 O.TransposeOptions())
    elif kind == "sslice":
        rank_, st = int(r.choice([2, 3, 4])), int(r.choice([1, 1, 2]))
        x = g.input((4,) * rank_, dt, q(dt, .05))
        shrink = int(r.random() < .2)
        out = tuple((4 + st - 1) // st for _ in range(rank_))[shrink:]
        y = g.op(Op.STRIDED_SLICE, [x, g.const(np.zeros(rank_, I32)),
                                    g.const(np.full(rank_, 4, I32)),
                                    g.const(np.full(rank_, st, I32))],
                 [(out, dt, q(dt, .05))], O.StridedSliceOptions(shrink_axis_mask=shrink))
    elif kind == "reduce":
        code = [Op.MEAN, Op.SUM, Op.REDUCE_MAX, Op.REDUCE_MIN, Op.REDUCE_PROD][r.integers(5)]
        rank_ = int(r.choice([2, 3, 4]))
        axes = sorted(int(a) for a in r.choice(rank_, int(r.integers(1, rank_ + 1)),
                                               replace=False))
        keep = bool(r.random() < .5)
        out = tuple(1 if i in axes else 2 for i in range(rank_)) if keep else \
            tuple(2 for i in range(rank_) if i not in axes)
        a = g.const(np.array(axes, I32)) if r.random() < .9 else g.input((len(axes),), I32)
        y = g.op(code, [g.input((2,) * rank_, dt, q(dt, .05)), a], [(out, dt, q(dt, .05))],
                 O.ReducerOptions(keep_dims=keep))
    elif kind == "softmax":
        shp = (2,) * int(r.integers(1, 5))
        y = g.op(Op.SOFTMAX, [g.input(shp, dt, q(dt, .05))],
                 [(shp, dt, None if dt == F32 else qp(1 / 256, -128 if dt == I8 else 0))],
                 O.SoftmaxOptions(beta=float(r.choice([1.0, 1.0, 0.5]))))
    elif kind == "pad":
        rank_ = int(r.integers(1, 7))
        x = g.input((2,) * rank_, dt, q(dt, .05))
        p = g.const(np.ones((rank_, 2), I32)) if r.random() < .85 else \
            g.input((rank_, 2), I32)
        code = [Op.PAD, Op.PAD, Op.PADV2, Op.MIRROR_PAD][r.integers(4)]
        ins = [x, p] + ([g.const(np.zeros((), dt), q=q(dt, .05))] if code == Op.PADV2 else [])
        opts = {Op.PAD: O.PadOptions(), Op.PADV2: O.PadV2Options(),
                Op.MIRROR_PAD: O.MirrorPadOptions()}[code]
        y = g.op(code, ins, [((4,) * rank_, dt, q(dt, .05))], opts)
    elif kind == "resize":
        code = [Op.RESIZE_BILINEAR, Op.RESIZE_NEAREST_NEIGHBOR][r.integers(2)]
        ac = bool(r.random() < .3)
        cls = O.ResizeBilinearOptions if code == Op.RESIZE_BILINEAR else \
            O.ResizeNearestNeighborOptions
        size = g.const(np.array([8, 8], I32)) if r.random() < .9 else g.input((2,), I32)
        y = g.op(code, [g.input((1, 4, 4, 2), dt, q(dt, .05)), size],
                 [((1, 8, 8, 2), dt, q(dt, .05))],
                 cls(align_corners=ac, half_pixel_centers=not ac and r.random() < .5))
    elif kind == "unary":
        code = [Op.ABS, Op.CEIL, Op.ELU, Op.EXP, Op.FLOOR, Op.GELU, Op.HARD_SWISH,
                Op.LEAKY_RELU, Op.LOG, Op.LOGISTIC, Op.NEG, Op.RELU, Op.RELU6, Op.ROUND,
                Op.RSQRT, Op.SQRT, Op.SQUARE, Op.TANH, Op.DEQUANTIZE, Op.QUANTIZE][
                    r.integers(20)]
        shp = (2,) * int(r.integers(0, 6))
        idt, odt = dt, dt
        if code == Op.DEQUANTIZE:
            idt, odt = [I8, U8, F32][r.integers(3)], F32
        if code == Op.QUANTIZE:
            idt, odt = [F32, I8, U8][r.integers(3)], [I8, U8][r.integers(2)]
        opts = O.LeakyReluOptions(alpha=0.2) if code == Op.LEAKY_RELU else \
            (O.GeluOptions() if code == Op.GELU else None)
        y = g.op(code, [g.input(shp, idt, q(idt, .05))], [(shp, odt, q(odt))], opts)
    elif kind == "bmm":
        bdt = dt if r.random() < .7 else I8
        b = g.const(np.ones((2, 4, 5), bdt), q=q(bdt, .05)) if r.random() < .5 else \
            g.input((2, 4, 5), bdt, q(bdt, .05))
        y = g.op(Op.BATCH_MATMUL, [g.input((2, 3, 4), dt, q(dt, .05)), b],
                 [((2, 3, 5), dt, q(dt, .05))], O.BatchMatMulOptions())
    else:  # tconv
        st, k = int(r.choice([1, 2])), int(r.integers(1, 4))
        pad = [O.Padding.SAME, O.Padding.VALID][r.integers(2)]
        oh = 4 * st if pad == O.Padding.SAME else 3 * st + k
        ins = [g.const(np.array([1, oh, oh, 4], I32)),
               g.const(np.ones((4, k, k, 4), dt), q=q(dt, .02)),
               g.input((1, 4, 4, 4), dt, q(dt, .05))]
        if r.random() < .5:
            ins.append(g.const(np.zeros(4, F32)) if dt == F32 else
                       g.const(np.zeros(4, I32), q=qp(0.001)))
        y = g.op(Op.TRANSPOSE_CONV, ins, [((1, oh, oh, 4), dt, q(dt, .05))],
                 O.TransposeConvOptions(padding=pad, stride_w=st, stride_h=st))
    return g.build(y)


@pytest.mark.parametrize("seed", range(4))
def test_xnnpack_random_single_ops_equal_litert(seed):
    r = np.random.default_rng(1000 + seed)
    checked, wrong = 0, []
    for _ in range(60):
        content = _random_op(r)
        ref = litert_xnnpack_partitions(content)
        if ref is None:  # LiteRT's own kernels reject the combination
            continue
        checked += 1
        m = wb.load(content)
        v = check_op(m, 0, "xnnpack")
        if v.supported != (ref == [[0]]):
            op = m.main.operators[0]
            wrong.append((op.name, [(t.type_name, t.shape) for t in op.inputs if t is not None],
                          op.options, v.reason))
    assert checked >= 30
    assert not wrong, wrong


@pytest.mark.parametrize("code", [Op.ADD, Op.SUB, Op.MUL, Op.QUANTIZE], ids=O.op_name)
def test_xnnpack_quantized_scale_bounds_equal_litert(code):
    # Sweep the input/output scale ratio over 2^-18 .. 2^9 in half-octave steps.
    opts = {Op.ADD: O.AddOptions(), Op.SUB: O.SubOptions(), Op.MUL: O.MulOptions()}
    for k in np.arange(-18, 10, 0.5):
        g = Graph()
        a = g.input((2, 2), I8, qp(1.0))
        ins = [a] if code == Op.QUANTIZE else [a, g.input((2, 2), I8, qp(1.0))]
        y = g.op(code, ins, [((2, 2), I8, qp(2.0 ** -k))], opts.get(code))
        content = g.build(y)
        ref = litert_xnnpack_partitions(content) == [[0]]
        assert verdict(content, "xnnpack").supported == ref, f"ratio 2^{k}"


def _random_dag(r: np.random.Generator, n: int) -> bytes:
    """A random DAG of ``n`` float ops on (1, 8) tensors: XNNPACK-claimed binary/unary ops mixed
    with unclaimed ones (CUMSUM, REVERSE_V2), inputs drawn from any earlier tensor; every
    unconsumed tensor is a model output (so no node is dead)."""
    g = Graph()
    pool = [g.input((1, 8)), g.input((1, 8))]
    used: set[int] = set()
    for _ in range(n):
        kind = r.integers(5)
        a = int(r.integers(len(pool)))
        used.add(a)
        if kind <= 1:
            b = int(r.integers(len(pool)))
            used.add(b)
            code, opts = [(Op.ADD, O.AddOptions()), (Op.MUL, O.MulOptions())][kind]
            t = g.op(code, [pool[a], pool[b]], [((1, 8), F32)], opts)
        elif kind == 2:
            t = g.op(Op.TANH, [pool[a]], [((1, 8), F32)])
        elif kind == 3:
            t = g.op(Op.CUMSUM, [pool[a], g.const(np.array(1, I32))], [((1, 8), F32)],
                     O.CumsumOptions())
        else:
            t = g.op(Op.REVERSE_V2, [pool[a], g.const(np.array([1], I32))], [((1, 8), F32)],
                     O.ReverseV2Options())
        pool.append(t)
    outs = [t for i, t in enumerate(pool) if i >= 2 and i not in used]
    return g.build(*outs)


@pytest.mark.parametrize("seed", range(3))
def test_xnnpack_random_graphs_partition_like_litert(seed):
    r = np.random.default_rng(seed)
    nontrivial = 0
    for _ in range(25):
        content = _random_dag(r, int(r.integers(4, 16)))
        ref = litert_xnnpack_partitions(content)
        assert ref is not None
        assert ours_xnnpack(content) == ref
        nontrivial += len(ref) >= 2
    assert nontrivial >= 5  # the sample must exercise multi-partition graphs


def test_fast_greedy_partitioner_equals_tflite_sweep_loop():
    # The event-driven partitioner must give exactly the subsets (and node order) of the
    # literal transcription of TFLite's sweep loop, on random DAGs with multi-output nodes,
    # repeated inputs and side-effect chains.
    from workbench.delegates.partition import _sweep_subsets

    r = np.random.default_rng(7)
    for _ in range(300):
        n = int(r.integers(1, 40))
        n_in = int(r.integers(1, 4))
        avail = list(range(n_in))
        nodes = []
        t_next = n_in
        for _i in range(n):
            k = int(r.integers(1, 4))
            ins = [int(r.choice(avail)) for _ in range(k)] + ([-1] if r.random() < .1 else [])
            outs = list(range(t_next, t_next + int(r.integers(1, 3))))
            t_next += len(outs)
            avail += outs
            nodes.append((ins, outs))
        claimed = [bool(c) for c in r.random(n) < r.random()]
        side = [bool(c) for c in r.random(n) < .15]
        assert node_subsets(nodes, claimed, side) == _sweep_subsets(nodes, claimed, side)
        assert node_subsets(nodes, claimed) == _sweep_subsets(nodes, claimed)


def _add(shape_a, shape_b, const_b=False) -> bytes:
    g = Graph()
    a = g.input(shape_a)
    b = g.const(np.ones(shape_b, F32)) if const_b else g.input(shape_b)
    out = tuple(np.broadcast_shapes(shape_a, shape_b))
    return g.build(g.op(Op.ADD, [a, b], [(out, F32)], O.AddOptions()))


def test_broadcasting_rules_of_gpu_and_coreml():
    # Core ML README: only [B,C,H,W], [B,C,1,1], [B,1,H,W], [B,1,1,1] broadcast.
    assert verdict(_add((1, 8, 8, 4), (1, 1, 1, 4)), "coreml").supported
    assert verdict(_add((1, 8, 8, 4), (1, 8, 8, 1)), "coreml").supported
    assert not verdict(_add((1, 8, 8, 4), (1, 8, 1, 4)), "coreml").supported
    # GPU checker without enhanced broadcast: 3D->4D with batch 1, [1,1]->4D, [b,c]->[b,x,y,c].
    assert verdict(_add((1, 8, 8, 4), (8, 8, 4)), "gpu").supported
    assert verdict(_add((1, 8, 8, 4), (1, 4)), "gpu").supported
    v = verdict(_add((2, 8, 8, 4), (8, 4)), "gpu")
    assert v.reason == "Doesn't support broadcasting - input0: [2,8,8,4], input1: [8,4]"
    assert verdict(_add((2, 8, 8, 4), (8, 4)), "gpu", enhanced_broadcast=True).supported


def test_nnapi_restricted_scales_before_api_29():
    # NNAPI 1.0/1.1: quantized conv needs input_scale * filter_scale < output_scale.
    g = Graph()
    x = g.input((1, 8, 8, 4), U8, qp(0.5, 128))
    y = g.op(Op.CONV_2D, [x, g.const(np.ones((8, 3, 3, 4), U8), q=qp(0.5, 128)),
                          g.const(np.zeros(8, I32), q=qp(0.25))],
             [((1, 8, 8, 8), U8, qp(0.1, 128))], O.Conv2DOptions(stride_w=1, stride_h=1))
    c = g.build(y)
    assert "input_scale * filter_scale < output_scale" in verdict(c, "nnapi",
                                                                  android_api=28).reason
    assert verdict(c, "nnapi", android_api=29).supported


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("code", [Op.CONV_2D, Op.DEPTHWISE_CONV_2D, Op.FULLY_CONNECTED],
                         ids=O.op_name)
def test_xnnpack_hybrid_weights_like_litert(code, per_channel):
    # Float activations with int8 weights (dynamic-range quantization): XNNPACK quantizes the
    # activations on the fly for CONV_2D and FULLY_CONNECTED, not for DEPTHWISE_CONV_2D.
    g = Graph()
    if code == Op.FULLY_CONNECTED:
        x, wshape, cout, qdim, out = g.input((1, 16)), (8, 16), 8, 0, (1, 8)
        opts = O.FullyConnectedOptions()
    elif code == Op.CONV_2D:
        x, wshape, cout, qdim, out = g.input((1, 8, 8, 4)), (8, 3, 3, 4), 8, 0, (1, 8, 8, 8)
        opts = O.Conv2DOptions(stride_w=1, stride_h=1)
    else:
        x, wshape, cout, qdim, out = g.input((1, 8, 8, 4)), (1, 3, 3, 4), 4, 3, (1, 8, 8, 4)
        opts = O.DepthwiseConv2DOptions(stride_w=1, stride_h=1, depth_multiplier=1)
    wq = QuantParams(scale=np.full(cout, .02, np.float32), zero_point=np.zeros(cout, np.int64),
                     quantized_dimension=qdim) if per_channel else qp(0.02)
    y = g.op(code, [x, g.const(np.ones(wshape, I8), q=wq), g.const(np.zeros(cout, F32))],
             [(out, F32)], opts)
    content = g.build(y)
    ref = litert_xnnpack_partitions(content)
    assert verdict(content, "xnnpack").supported == (ref == [[0]])
    assert (ref == [[0]]) == (code != Op.DEPTHWISE_CONV_2D)
