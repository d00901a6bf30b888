"""REDUCE_WINDOW, STABLEHLO_REDUCE_WINDOW, STABLEHLO_GATHER and STABLEHLO_SCATTER against LiteRT:
random shapes, options and every element type LiteRT accepts, compared byte for byte (floats
included: the kernels fold in LiteRT's order), plus the edge cases and the typed errors where
LiteRT refuses the model (at load, prepare or invoke) or would read out of bounds."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import workbench as wb
from tests.litert_oracle import litert_interpreter
from workbench.errors import ModelError, WorkbenchError
from workbench.ir.graph import Model, Operator, Subgraph
from workbench.ir.ops import (
    Op,
    ReduceWindowOptions,
    StablehloGatherOptions,
    StablehloReduceWindowOptions,
    StablehloScatterOptions,
)


# -- building and running ----------------------------------------------------------------------
def build(code, ins, out_shape, out_dtype, options=None, body=None, body_dtype=None, nops=1
          ) -> bytes:
    """One-op model; ``ins`` are arrays (model inputs) or ``("const", array)``. ``body``: the op
    code of a second subgraph's single operator, "none" for an empty second subgraph, or None
    for no second subgraph. ``options`` go to the second options union."""
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    tin = []
    for k, x in enumerate(ins):
        if isinstance(x, tuple):
            tin.append(sg.new_tensor(f"c{k}", x[1].shape, x[1].dtype, data=x[1]))
        else:
            t = sg.new_tensor(f"in{k}", x.shape, x.dtype)
            tin.append(t)
            sg.inputs.append(t)
    out = sg.new_tensor("out", out_shape, out_dtype)
    sg.outputs.append(out)
    sg.add_operator(Operator(m.opcode(code), tin, [out], options2=options))
    if body is not None:
        dt = body_dtype or out_dtype
        b = Subgraph(name="body")
        a, c = b.new_tensor("a", (), dt), b.new_tensor("b", (), dt)
        b.inputs += [a, c]
        cur = a
        if body != "none":
            for k in range(nops):
                o = b.new_tensor(f"o{k}", (), dt)
                b.add_operator(Operator(m.opcode(body), [cur, c], [o]))
                cur = o
        b.outputs.append(cur)
        m.subgraphs.append(b)
    return m.to_bytes()


def feeds(ins):
    return [x for x in ins if not isinstance(x, tuple)]


def run(it, xs):
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]


def same_bytes(got, exp, what=""):
    assert got.shape == exp.shape and got.dtype == exp.dtype, \
        (what, got.dtype, got.shape, exp.dtype, exp.shape)
    g = np.ascontiguousarray(got).view(np.uint8)
    e = np.ascontiguousarray(exp).view(np.uint8)
    assert np.array_equal(g, e), f"{what}\ngot {got}\nexpected {exp}"


def compare(content, ins, what=""):
    xs = feeds(ins)
    exp = run(litert_interpreter(content), xs)
    got = run(wb.Interpreter(model_content=content), xs)
    for g, e in zip(got, exp):
        same_bytes(g, e, what)
    return got[0]


def litert_stage(content, xs):
    """Where LiteRT refuses: "load", "prepare", "invoke", or None."""
    try:
        it = litert_interpreter(content)
    except (ValueError, RuntimeError):
        return "load"
    try:
        it.allocate_tensors()
    except RuntimeError:
        return "prepare"
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    try:
        it.invoke()
    except RuntimeError:
        return "invoke"
    return None


def our_stage(content, xs):
    """Where we refuse (with a typed error): "load", "prepare", "invoke", or None."""
    try:
        it = wb.Interpreter(model_content=content)
    except WorkbenchError:
        return "load"
    try:
        it.allocate_tensors()
    except WorkbenchError:
        return "prepare"
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    try:
        it.invoke()
    except WorkbenchError:
        return "invoke"
    return None


def assert_refused_like_litert(content, ins):
    """LiteRT refuses; so do we, no later than LiteRT (a load-time refusal of LiteRT may be
    ours at allocate)."""
    xs = feeds(ins)
    theirs, mine = litert_stage(content, xs), our_stage(content, xs)
    assert theirs is not None, "LiteRT accepts this model"
    order = ["load", "prepare", "invoke"]
    assert mine is not None, f"LiteRT refuses at {theirs}, we accept"
    if theirs == "invoke":
        assert mine == "invoke", mine
    else:
        assert order.index(mine) <= 1, mine


def assert_we_refuse_at_prepare(content, ins):
    """For models LiteRT crashes on or would read out of bounds with (not run in LiteRT)."""
    it = wb.Interpreter(model_content=content)
    with pytest.raises(ModelError):
        it.allocate_tensors()


RNG = np.random.default_rng(7)


def rand(shape, dt, rng=RNG, specials=False):
    dt = np.dtype(dt)
    if dt == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(max(info.min, -100), min(info.max, 100), shape,
                            endpoint=True).astype(dt)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    x = (rng.standard_normal(shape) * 10).astype(dt)
    if specials and x.size:
        flat = x.reshape(-1)
        pick = rng.random(flat.size)
        flat[pick < 0.08] = 0.0
        flat[(pick >= 0.08) & (pick < 0.16)] = -0.0
        flat[(pick >= 0.16) & (pick < 0.2)] = np.nan
        flat[(pick >= 0.2) & (pick < 0.22)] = np.inf
    return x


def init_value(dt, rng=RNG):
    return rand((), dt, rng)


# -- STABLEHLO_REDUCE_WINDOW -------------------------------------------------------------------
RW_DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.float32, np.float64]
BODIES = [Op.ADD, Op.STABLEHLO_ADD, Op.MUL, Op.STABLEHLO_MULTIPLY, Op.MAXIMUM,
          Op.STABLEHLO_MAXIMUM, Op.MINIMUM, Op.STABLEHLO_MINIMUM, Op.LOGICAL_AND,
          Op.STABLEHLO_AND, Op.LOGICAL_OR]  # LiteRT 2.3 cannot load STABLEHLO_OR at all


def shlo_rw(x, init, wd, ws=None, bd=None, wdl=None, pad=None, body=Op.ADD, nops=1, bidx=1):
    opts = StablehloReduceWindowOptions(window_dimensions=tuple(wd), window_strides=ws,
                                        base_dilations=bd, window_dilations=wdl, padding=pad,
                                        body_subgraph_index=bidx)
    return build(Op.STABLEHLO_REDUCE_WINDOW, [x, init], (1,) * x.ndim, x.dtype, opts,
                 body=body, nops=nops)


def random_window_case(rng, dt, body):
    rank = int(rng.integers(1, 5))
    shape = tuple(int(n) for n in rng.integers(1, 6, rank))
    bd = tuple(int(v) for v in rng.integers(1, 3, rank))
    dil = [(n - 1) * d + 1 for n, d in zip(shape, bd)]
    pad = []
    for n in dil:
        lo, hi = (int(v) for v in rng.integers(-1, 3, 2))
        if n + lo + hi <= 0:
            lo, hi = 0, 0
        pad += [lo, hi]
    padded = [n + pad[2 * i] + pad[2 * i + 1] for i, n in enumerate(dil)]
    wd = tuple(int(rng.integers(1, p + 1)) for p in padded)
    wdl = tuple(int(rng.integers(1, 3)) if w > 1 and (w - 1) * 2 < p else 1
                for w, p in zip(wd, padded))
    ws = tuple(int(v) for v in rng.integers(1, 4, rank))
    x = rand(shape, dt, rng, specials=True)
    init = init_value(dt, rng)
    return x, init, dict(wd=wd, ws=ws, bd=bd, wdl=wdl, pad=tuple(pad), body=body)


@pytest.mark.parametrize("dt", RW_DTYPES, ids=lambda d: np.dtype(d).name)
def test_stablehlo_reduce_window_random(dt):
    rng = np.random.default_rng(zlib.crc32(np.dtype(dt).name.encode()))
    for body in BODIES:
        x, init, kw = random_window_case(rng, dt, body)
        compare(shlo_rw(x, init, **kw), [x, init], f"{np.dtype(dt).name} {body.name} {kw}")


def test_stablehlo_reduce_window_float_order_and_specials():
    rng = np.random.default_rng(1)
    # Sums of large and tiny values depend on the order: LiteRT's is init then row-major.
    x = np.array([[1e8, 1.0, -1e8, 1.0, 3.0], [0.5, 1e-3, 7.0, -1e8, 1e8]], np.float32)
    for body in (Op.ADD, Op.MUL):
        compare(shlo_rw(x, np.float32(0.25), (2, 3), ws=(1, 1), body=body), [x, np.float32(0.25)])
    # NaN and signed zeros in maximum/minimum: `a >= b ? a : b` keeps the first of equals and
    # drops a NaN that is not last.
    for body in (Op.MAXIMUM, Op.STABLEHLO_MINIMUM):
        for init in (np.float32(0.0), np.float32(-0.0), np.float32(np.nan)):
            x = rand((6, 7), np.float32, rng, specials=True)
            compare(shlo_rw(x, init, (3, 2), ws=(1, 1), body=body), [x, init], f"{body} {init}")
    x = np.array([0.0, -0.0, np.nan, 1.0, -0.0, 0.0, np.nan], np.float32)
    for body in (Op.MAXIMUM, Op.MINIMUM):
        compare(shlo_rw(x, np.float32(-0.0), (2,), body=body), [x, np.float32(-0.0)])


def test_stablehlo_reduce_window_edges():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    i0 = np.float32(100)
    # bool sums keep LiteRT's raw byte counts (13 here).
    b = np.ones((3, 4), bool)
    got = compare(shlo_rw(b, np.bool_(True), (3, 4)), [b, np.bool_(True)])
    assert got.view(np.uint8).tolist() == [[13]]
    compare(shlo_rw(x, i0, (4, 1)), [x, i0])  # window larger than the input: empty output
    compare(shlo_rw(x, i0, (2, 1), wdl=(2**31, 1)), [x, i0])  # huge dilation: empty output
    compare(shlo_rw(x, i0, (2, 1), ws=(2**62, 1)), [x, i0])  # huge stride: one output row
    compare(shlo_rw(x, i0, (1, 1), pad=(-1, 0, 0, -2)), [x, i0])  # cropping
    compare(shlo_rw(x, i0, (2, 2), pad=(-5, 3, 0, 0)), [x, i0])  # crop past the input
    compare(shlo_rw(x, i0, (2, 2, 2)), [x, i0])  # extra window values: LiteRT reads `rank`
    e = np.zeros((0, 4), np.float32)
    compare(shlo_rw(e, i0, (1, 1)), [e, i0])
    compare(shlo_rw(e, i0, (1, 1), pad=(1, 0, 0, 0)), [e, i0])
    init2 = np.array([5.0, 7.0], np.float32)  # LiteRT reads the first init element
    compare(shlo_rw(x, init2, (2, 1)), [x, init2])
    big = rand((2, 9, 9, 3), np.float32)
    compare(shlo_rw(big, np.float32(-np.inf), (1, 3, 3, 1), ws=(1, 2, 2, 1),
                    pad=(0, 0, 1, 1, 1, 1, 0, 0), body=Op.MAXIMUM), [big, np.float32(-np.inf)])


def test_stablehlo_reduce_window_refusals():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    i0 = np.float32(0)
    cases = [
        shlo_rw(x, i0, (2,)),  # window_dimensions shorter than the rank: prepare
        shlo_rw(x, i0, (0, 2)),  # window dimension 0: prepare
        shlo_rw(x, i0, (2, 2), ws=(1,)),  # strides of the wrong length: load
        shlo_rw(x, i0, (2, 2), pad=(1, 1)),  # padding of the wrong length: load
        shlo_rw(x, i0, ()),  # empty window_dimensions: load
        shlo_rw(x, i0, (1, 1), pad=(-4, 0, 0, 0)),  # negative padded size: prepare
        shlo_rw(x, i0, (1, 1), pad=(2**31, 0, 0, 0)),  # huge padding: prepare
        shlo_rw(x, i0, (1, 1), bd=(2**30, 1)),  # huge base dilation: prepare
        shlo_rw(x, np.int32(0), (2, 1)),  # init type: prepare
        shlo_rw(np.zeros((1,) * 7, np.float32), i0, (1,) * 7),  # rank 7: prepare
        shlo_rw(np.zeros((0, 4), np.float32), i0, (1, 1), bd=(2, 1)),  # dilating empty
        shlo_rw(x, i0, (2, 1), body=Op.SUB),  # unsupported body: invoke
        shlo_rw(x, i0, (2, 1), body=Op.ADD, nops=2),  # two body ops: invoke
        shlo_rw(x, i0, (2, 1), body="none"),  # no body op: invoke
        shlo_rw(x.astype(np.float16), np.float16(0), (2, 1)),  # float16: invoke
    ]
    for c in cases:
        ins = [np.zeros(t.shape, t.numpy_dtype) for t in wb.load(c).main.inputs]
        assert_refused_like_litert(c, ins)
    # Padding that leaves an empty tensor: LiteRT fails at invoke; the output is empty (never
    # evaluated here), so we refuse at prepare.
    c = shlo_rw(x, i0, (1, 1), pad=(-3, 0, 0, 0))
    assert litert_stage(c, [x, i0]) == "invoke"
    assert_we_refuse_at_prepare(c, [x, i0])
    # No options at all: LiteRT refuses the model.
    c = build(Op.STABLEHLO_REDUCE_WINDOW, [x, i0], (1, 1), np.float32, body=Op.ADD)
    assert_refused_like_litert(c, [x, i0])


def test_huge_padding_does_not_allocate():
    x = np.zeros((3, 4), np.float32)
    c = shlo_rw(x, np.float32(0), (1, 1), pad=(2**20, 0, 2**12, 0))  # ~16 GiB temporaries
    assert_we_refuse_at_prepare(c, [x, np.float32(0)])


def test_work_beyond_the_limit_is_refused_at_prepare():
    """A fuzzed padding of 2**25 on a small input: a 200M-value output (800 MB, within the
    memory limit) whose taps took 18 s of numpy passes; refused for its work instead."""
    x = np.zeros((2, 4, 4), np.float32)
    c = shlo_rw(x, np.float32(0), (1, 3, 1), ws=(2, 2, 1), bd=(2, 2, 1), wdl=(1, 2, 1),
                pad=(2, -1, -1, 33554434, 2, 0), body=Op.MAXIMUM)
    with pytest.raises(ModelError, match="element operations"):
        wb.Interpreter(model_content=c).allocate_tensors()


# -- REDUCE_WINDOW (TFLite) --------------------------------------------------------------------
def tfl_rw(x, init, wd, ws, wdl, fn=1, options=True, dts=np.int64):
    ins = [x, init, ("const", np.array(wd, dts)), ("const", np.array(ws, dts)),
           ("const", np.array(wdl, dts))]
    opts = ReduceWindowOptions(reduce_function=fn) if options else None
    return build(Op.REDUCE_WINDOW, ins, (1,) * x.ndim, x.dtype, opts), ins


@pytest.mark.parametrize("dt", RW_DTYPES, ids=lambda d: np.dtype(d).name)
def test_reduce_window_random(dt):
    rng = np.random.default_rng(zlib.crc32(("tfl" + np.dtype(dt).name).encode()))
    for fn in range(1, 7):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(n) for n in rng.integers(1, 6, rank))
        wd = tuple(int(rng.integers(1, n + 1)) for n in shape)
        wdl = tuple(int(rng.integers(0, 3)) if (w - 1) * 2 < n else 1
                    for w, n in zip(wd, shape))
        ws = tuple(int(v) for v in rng.integers(1, 4, rank))
        x, init = rand(shape, dt, rng, specials=True), init_value(dt, rng)
        c, ins = tfl_rw(x, init, wd, ws, wdl, fn)
        compare(c, ins, f"{np.dtype(dt).name} fn {fn} {wd} {ws} {wdl}")


def test_reduce_window_edges():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    i0 = np.float32(3)
    for wd, ws, wdl in (((0, 2), (1, 2), (1, 1)),  # empty windows: init everywhere
                        ((-1, 2), (1, 2), (1, 1)),
                        ((2, 2), (1, 2), (0, 1)),  # dilation 0 reads one element twice
                        ((1, 2), (1, 2), (-5, 1)),  # negative dilation of a 1-wide window
                        ((-1, 2), (1, 2), (-3, 1)),
                        ((2, 2, 7), (1, 2, 0), (1, 1, 0))):  # extra values are not read
        c, ins = tfl_rw(x, i0, wd, ws, wdl)
        compare(c, ins, f"{wd} {ws} {wdl}")


def test_reduce_window_refusals():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    i0 = np.float32(0)
    for kw in (dict(dts=np.int32), dict(options=False), dict(fn=0), dict(fn=9)):
        c, ins = tfl_rw(x, i0, (2, 2), (1, 2), (1, 1), **kw)
        assert_refused_like_litert(c, ins)
    c, ins = tfl_rw(x.astype(np.float16), np.float16(0), (2, 2), (1, 2), (1, 1))
    assert_refused_like_litert(c, ins)
    # LiteRT crashes on these (division by a zero stride; reading 2 values from a 1-value
    # tensor); we refuse them.
    for wd, ws, wdl in (((1, 2), (0, 2), (1, 1)), ((2,), (1,), (1,)),
                        ((2, 2), (1, 2), (-1, 1)), ((-2**33, 2), (1, 2), (1, 1))):
        c, ins = tfl_rw(x, i0, wd, ws, wdl)
        assert_we_refuse_at_prepare(c, ins)


# -- STABLEHLO_GATHER --------------------------------------------------------------------------
def gather_model(x, idx, out_shape, **kw):
    o = dict(offset_dims=None, collapsed_slice_dims=None, start_index_map=None,
             index_vector_dim=0, slice_sizes=None, indices_are_sorted=False)
    o.update(kw)
    return build(Op.STABLEHLO_GATHER, [x, idx], out_shape, x.dtype, StablehloGatherOptions(**o))


def gather_shape(xs, ids, offset, collapsed, sizes, ivd):
    batch = [n for k, n in enumerate(ids) if k != ivd]
    kept = [sizes[d] for d in range(len(xs)) if d not in collapsed]
    rank = len(batch) + len(offset)
    out, bi, ki = [], 0, 0
    for r in range(rank):
        if r in offset:
            out.append(kept[ki])
            ki += 1
        else:
            out.append(batch[bi])
            bi += 1
    return tuple(out)


GATHER_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.float16, np.int32,
                 np.uint32, np.float32, np.int64, np.uint64, np.float64, np.complex64]


def random_gather(rng, dt, idt):
    rank = int(rng.integers(1, 4))
    xs = tuple(int(n) for n in rng.integers(1, 5, rank))
    nmap = int(rng.integers(1, rank + 1))
    sim = tuple(int(d) for d in rng.permutation(rank)[:nmap])
    collapsed = tuple(sorted(int(d) for d in rng.permutation(sim)[:int(rng.integers(0, nmap + 1))]))
    sizes = tuple(1 if d in collapsed else int(rng.integers(0 if rng.random() < 0.1 else 1,
                                                             xs[d] + 1)) for d in range(rank))
    nbatch = int(rng.integers(0, 3))
    bshape = [int(n) for n in rng.integers(1, 4, nbatch)]
    ivd = int(rng.integers(0, nbatch + 1))
    ids = tuple(bshape[:ivd] + [nmap] + bshape[ivd:])
    nkept = rank - len(collapsed)
    result_rank = nbatch + nkept
    offset = tuple(sorted(int(d) for d in rng.permutation(result_rank)[:nkept]))
    x = rand(xs, dt, rng)
    idx = rng.integers(-3, max(xs) + 3, ids).astype(idt)  # out of range: clamped
    out = gather_shape(xs, ids, offset, collapsed, sizes, ivd)
    c = gather_model(x, idx, out, offset_dims=offset, collapsed_slice_dims=collapsed,
                     start_index_map=sim, index_vector_dim=ivd, slice_sizes=sizes)
    return c, [x, idx], (xs, ids, offset, collapsed, sim, sizes, ivd)


@pytest.mark.parametrize("dt", GATHER_DTYPES, ids=lambda d: np.dtype(d).name)
def test_stablehlo_gather_random(dt):
    rng = np.random.default_rng(zlib.crc32(("g" + np.dtype(dt).name).encode()))
    for k in range(6):
        c, ins, desc = random_gather(rng, dt, np.int32 if k % 2 else np.int64)
        compare(c, ins, f"{np.dtype(dt).name} {desc}")


def test_stablehlo_gather_rows_clamped_and_edges():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    rows = dict(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,),
                index_vector_dim=1, slice_sizes=(1, 4))
    idx = np.array([[0], [2], [5], [-3], [2**31 - 1], [-2**31]], np.int32)
    got = compare(gather_model(x, idx, (6, 4), **rows), [x, idx])
    assert got[:, 0].tolist() == [0, 8, 8, 0, 8, 0]
    e = np.zeros((0, 1), np.int32)
    compare(gather_model(x, e, (0, 4), **rows), [x, e])
    # offset dims before the batch dims, slices of 2x2 clamped at the corner.
    idx = np.array([[1, 3], [2, 2], [-1, 9]], np.int64)
    compare(gather_model(x, idx, (2, 2, 3), offset_dims=(0, 1), collapsed_slice_dims=(),
                         start_index_map=(0, 1), index_vector_dim=1, slice_sizes=(2, 2)),
            [x, idx])


def test_stablehlo_gather_refusals():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    idx = np.array([[0], [2]], np.int32)
    rows = dict(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,),
                index_vector_dim=1, slice_sizes=(1, 4))
    assert_refused_like_litert(gather_model(x, idx.astype(np.int16), (2, 4), **rows),
                               [x, idx.astype(np.int16)])
    assert_refused_like_litert(gather_model(x, idx, (2, 4)), [x, idx])  # no slice sizes
    # LiteRT reads out of bounds with these (its behaviour varies from run to run: an error, a
    # hang, or a result): an output rank that is not the result rank, a slice larger than the
    # operand, a start index map longer than the index vectors, too few offset dims.
    assert_we_refuse_at_prepare(gather_model(x, idx, (2, 4, 1), **rows), [x, idx])
    # A collapsed dimension sliced 0 or 2 wide (a fuzzed slice size 0: LiteRT read one past
    # the start it clamped to the operand's end; we raised a raw IndexError).
    for kw in (dict(rows, slice_sizes=(1, 5)), dict(rows, start_index_map=(0, 1)),
               dict(rows, offset_dims=()), dict(rows, slice_sizes=(0, 4)),
               dict(rows, slice_sizes=(2, 4))):
        assert_we_refuse_at_prepare(gather_model(x, idx, (2, 4), **kw), [x, idx])
    # index_vector_dim == indices rank (StableHLO's implicit index vector): LiteRT crashes.
    flat = np.array([0, 2], np.int32)
    assert_we_refuse_at_prepare(gather_model(x, flat, (2, 4), **rows), [x, flat])


# -- STABLEHLO_SCATTER -------------------------------------------------------------------------
def scatter_model(x, idx, upd, body, nops=1, **kw):
    o = dict(indices_are_sorted=False, update_window_dims=None, inserted_window_dims=None,
             scatter_dims_to_operand_dims=None, index_vector_dim=0, unique_indices=False,
             update_computation_subgraph_index=1)
    o.update(kw)
    return build(Op.STABLEHLO_SCATTER, [x, idx, upd], x.shape, x.dtype,
                 StablehloScatterOptions(**o), body=body, nops=nops)


SCATTER_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.float16, np.int32,
                  np.uint32, np.float32, np.int64, np.uint64, np.float64]
COMPUTATIONS = ["none", Op.STABLEHLO_ADD, Op.STABLEHLO_MULTIPLY, Op.STABLEHLO_MAXIMUM,
                Op.STABLEHLO_MINIMUM]


def random_scatter(rng, dt, body, idt):
    rank = int(rng.integers(1, 4))
    xs = tuple(int(n) for n in rng.integers(1, 5, rank))
    ninserted = int(rng.integers(0, rank + 1))
    iwd = tuple(sorted(int(d) for d in rng.permutation(rank)[:ninserted]))
    nmap = int(rng.integers(1, rank + 1))
    sdod = tuple(int(d) for d in rng.permutation(rank)[:nmap])
    nbatch = int(rng.integers(1, 3))
    bshape = [int(n) for n in rng.integers(1, 5, nbatch)]
    ivd = int(rng.integers(0, nbatch + 1))
    ids = tuple(bshape[:ivd] + [nmap] + bshape[ivd:])
    win = [int(rng.integers(1, xs[d] + 1)) for d in range(rank) if d not in iwd]
    urank = nbatch + len(win)
    uwd = tuple(sorted(int(d) for d in rng.permutation(urank)[:len(win)]))
    us, bi, wi = [], 0, 0
    for r in range(urank):
        if r in uwd:
            us.append(win[wi])
            wi += 1
        else:
            us.append(bshape[bi])
            bi += 1
    x = rand(xs, dt, rng, specials=True)
    upd = rand(tuple(us), dt, rng, specials=True)
    idx = rng.integers(-2, max(xs) + 1, ids).astype(idt)  # duplicates and out of bounds
    c = scatter_model(x, idx, upd, body, update_window_dims=uwd, inserted_window_dims=iwd,
                      scatter_dims_to_operand_dims=sdod, index_vector_dim=ivd)
    return c, [x, idx, upd], (xs, ids, us, uwd, iwd, sdod, ivd)


@pytest.mark.parametrize("dt", SCATTER_DTYPES, ids=lambda d: np.dtype(d).name)
def test_stablehlo_scatter_random(dt):
    rng = np.random.default_rng(zlib.crc32(("s" + np.dtype(dt).name).encode()))
    for k, body in enumerate(COMPUTATIONS * 2):
        c, ins, desc = random_scatter(rng, dt, body, np.int32 if k % 2 else np.int64)
        compare(c, ins, f"{np.dtype(dt).name} {body} {desc}")


def test_stablehlo_scatter_duplicates_and_specials():
    rows = dict(update_window_dims=(1,), inserted_window_dims=(0,),
                scatter_dims_to_operand_dims=(0,), index_vector_dim=1)
    rng = np.random.default_rng(3)
    idx = rng.integers(-1, 4, (40, 1)).astype(np.int32)  # many repeats, some out of bounds
    for body in COMPUTATIONS:
        x = rand((3, 5), np.float32, rng, specials=True)
        upd = rand((40, 5), np.float32, rng, specials=True)
        upd[::3] *= 1e7  # float sums depend on the order of the repeats
        compare(scatter_model(x, idx, upd, body, **rows), [x, idx, upd], str(body))
    # partial windows: elements past either edge are skipped one by one.
    x = np.zeros((3, 4), np.float32)
    idx = np.array([[0, 2], [1, -1]], np.int32)
    upd = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    compare(scatter_model(x, idx, upd, "none", update_window_dims=(1,),
                          inserted_window_dims=(0,), scatter_dims_to_operand_dims=(0, 1),
                          index_vector_dim=1), [x, idx, upd])
    e = np.zeros((0, 1), np.int32)
    compare(scatter_model(x, e, np.zeros((0, 4), np.float32), "none", **rows),
            [x, e, np.zeros((0, 4), np.float32)])


def test_stablehlo_scatter_refusals():
    x = np.zeros((3, 4), np.float32)
    idx = np.array([[0], [2]], np.int32)
    upd = np.ones((2, 4), np.float32)
    rows = dict(update_window_dims=(1,), inserted_window_dims=(0,),
                scatter_dims_to_operand_dims=(0,), index_vector_dim=1)
    assert_refused_like_litert(scatter_model(x, idx, upd, Op.ADD, **rows), [x, idx, upd])
    assert_refused_like_litert(scatter_model(x, idx, upd, Op.STABLEHLO_ADD, nops=2, **rows),
                               [x, idx, upd])
    assert_refused_like_litert(scatter_model(x, idx.astype(np.int16), upd, "none", **rows),
                               [x, idx.astype(np.int16), upd])
    xc, uc = x.astype(np.complex64), upd.astype(np.complex64)
    assert_refused_like_litert(scatter_model(xc, idx, uc, "none", **rows), [xc, idx, uc])
    c = build(Op.STABLEHLO_SCATTER, [x, idx, upd], x.shape, x.dtype, body="none")
    assert_refused_like_litert(c, [x, idx, upd])  # no options: subgraph 0 is the computation
    # LiteRT crashes (index_vector_dim == indices rank) or reads out of bounds / reinterprets
    # bytes with these.
    flat = np.array([0, 2], np.int32)
    assert_we_refuse_at_prepare(scatter_model(x, flat, upd, "none", **rows), [x, flat, upd])
    assert_we_refuse_at_prepare(scatter_model(x, idx, upd.astype(np.int32), "none", **rows),
                                [x, idx, upd.astype(np.int32)])
    big = np.ones((5, 4), np.float32)  # more update rows than index vectors
    assert_we_refuse_at_prepare(scatter_model(x, idx, big, "none", **rows), [x, idx, big])
