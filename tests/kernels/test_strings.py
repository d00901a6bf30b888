"""STRING tensors end to end, and the string/table ops (HASHTABLE*, SKIP_GRAM), against LiteRT.

LiteRT's Python API reports ``dtype`` ``np.bytes_`` for STRING tensors in the details, returns
``object`` arrays of ``bytes`` from ``get_tensor`` and takes ``S``/``U``/``object`` arrays in
``set_tensor`` (``str`` UTF-8 encoded; ``S``/``U`` lose trailing NULs, as numpy's elements do).
LiteRT runs STRING tensors through a few ops only (RESHAPE, 1-D GATHER, GATHER_ND, SLICE,
STRIDED_SLICE, TILE, EXPAND_DIMS, SQUEEZE, EQUAL, NOT_EQUAL, FILL, SHAPE, RANK, the table ops,
SKIP_GRAM...); every other op refuses them, at prepare or at invoke, and so do we, at the same
stage. LiteRT crashes reading a string tensor no run has written (we give empty strings) and
fills garbage (pointer bytes) in FILL of a run-time string value (we fill the value).
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

import workbench as wb
from tests.kernels.test_elementwise import Const, one_op
from tests.litert_oracle import litert_interpreter
from workbench import Interpreter
from workbench.errors import InputError, ModelError
from workbench.ir.graph import Model, Operator, Subgraph, pack_strings, unpack_strings
from workbench.ir.ops import (
    CallOnceOptions,
    ConcatenationOptions,
    GatherOptions,
    HashtableOptions,
    Op,
    PackOptions,
    ShapeOptions,
    SkipGramOptions,
    SqueezeOptions,
    StridedSliceOptions,
    TensorType,
    VarHandleOptions,
)

O = object  # noqa: E741 - the dtype of string values
I32, I64 = np.int32, np.int64
S, R = TensorType.STRING, TensorType.RESOURCE
RNG = np.random.default_rng(7)
ALPHABET = [b"", b"a", b"ab", b"\x00", b"x\x00y", b"\xc3\xa9t\xc3\xa9", b"the quick", b" ", b"\xff"]


def strings(shape, rng=RNG) -> np.ndarray:
    out = np.empty(int(np.prod(shape)), dtype=O)
    for k in range(out.size):
        tail = bytes(rng.integers(97, 100, rng.integers(3)).tolist())
        out[k] = ALPHABET[rng.integers(len(ALPHABET))] + tail
    return out.reshape(shape)


def run(make, content, feeds):
    """("ok", outputs) or (stage, exception) with stage "alloc" / "invoke"."""
    it = make(content)
    try:
        it.allocate_tensors()
    except Exception as e:  # noqa: BLE001 - the stage and the error are what we compare
        return "alloc", e
    for d, x in zip(it.get_input_details(), feeds):
        it.set_tensor(d["index"], x)
    try:
        it.invoke()
    except Exception as e:  # noqa: BLE001
        return "invoke", e
    return "ok", [it.get_tensor(d["index"]) for d in it.get_output_details()]


def ours(content):
    return Interpreter(model_content=content)


def assert_same(content, feeds, what=""):
    exp = run(litert_interpreter, content, feeds)
    got = run(ours, content, feeds)
    assert got[0] == exp[0], f"{what}: LiteRT {exp}, ours {got}"
    if exp[0] != "ok":
        assert isinstance(got[1], ModelError), f"{what}: {got[1]!r}"
        return
    for g, e in zip(got[1], exp[1]):
        assert g.dtype == e.dtype and g.shape == e.shape, f"{what}: {g!r} vs {e!r}"
        assert g.tolist() == e.tolist(), f"{what}: {g!r} vs {e!r}"
    return got[1]


# -- the Python API -----------------------------------------------------------------------------
def test_string_io_details_and_values():
    content = one_op(Op.RESHAPE, [np.empty((2, 3), O), Const(np.array([6], I32))],
                     [((6,), O)])
    ref, it = litert_interpreter(content), ours(content)
    for x in (ref, it):
        x.allocate_tensors()
    for key in ("get_input_details", "get_output_details"):
        for d, e in zip(getattr(it, key)(), getattr(ref, key)()):
            assert d["dtype"] is e["dtype"] is np.bytes_
            assert d["shape"].tolist() == e["shape"].tolist()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    values = [
        strings((2, 3)),
        np.array([[b"ab", b"c\x00", b""], [b"\x00x", b"y", b"z"]], dtype=O),  # NULs kept
        np.array([[b"ab", b"c\x00", b""], [b"\x00x", b"y", b"z"]]),  # S: trailing NUL dropped
        np.array([["ab", "é", ""], ["x", "y", "日本"]]),  # U: UTF-8
        np.array([["ab", b"c", "é"], ["", b"\xff", "z"]], dtype=O),  # str and bytes mixed
        np.array([[b"ab", b"c", b"d", b"e"], [b"", b"f", b"g", b"h"]])[:, 1:],  # a view
    ]
    for v in values:
        outs = []
        for x in (ref, it):
            x.set_tensor(i, v)
            x.invoke()
            outs.append((x.get_tensor(i), x.get_tensor(o)))
        for got, exp in zip(outs[1], outs[0]):
            assert got.dtype == exp.dtype == O and got.shape == exp.shape
            assert got.tolist() == exp.tolist()
            assert all(type(b) is bytes for b in got.reshape(-1))
    for bad in (np.zeros((2, 3), I32), np.zeros((2, 3), bool), np.zeros((2, 3), np.float64),
                np.array([[1, 2, 3], [4, 5, 6]], dtype=O),
                np.array([[None, b"a", b"b"], [b"", b"", b""]], dtype=O),
                np.array([b"a", b"b"], dtype=O)):
        with pytest.raises(ValueError):
            ref.set_tensor(i, bad)
        with pytest.raises(InputError):
            it.set_tensor(i, bad)
    # A string tensor no run has written: LiteRT crashes reading it; ours shows empty strings.
    fresh = ours(content)
    fresh.allocate_tensors()
    assert fresh.get_tensor(o).tolist() == [b""] * 6
    # resize + run() with strings
    it.resize_tensor_input(i, [3, 2])
    it.allocate_tensors()
    assert it.get_input_details()[0]["shape"].tolist() == [3, 2]
    v = strings((3, 2))
    assert it.run([v])[0].tolist() == v.reshape(-1).tolist()


def test_string_constants_round_trip():
    vals = strings((2, 2))
    content = one_op(Op.EQUAL, [np.empty((2, 2), O), Const(vals)], [((2, 2), np.bool_)])
    m = wb.load(content)
    const = m.main.operators[0].inputs[1]
    assert const.type_name == "STRING" and const.strings.tolist() == vals.tolist()
    assert const.buffer.data.tobytes() == pack_strings(vals).tobytes()
    assert m.to_bytes() == wb.load(m.to_bytes()).to_bytes()
    x = vals.copy()
    x[0, 1] = b"different"
    assert_same(content, [x], "EQUAL with a string constant")
    # empty strings tensor: count 0, one offset
    assert unpack_strings(pack_strings(np.empty((0, 3), O)), (0, 3)).shape == (0, 3)


# -- ops LiteRT runs on strings -------------------------------------------------------------
def _supported_cases():
    a = strings((3, 4))
    v = strings((5,))
    yield "RESHAPE", one_op(Op.RESHAPE, [a, Const(np.array([2, 6], I32))], [((2, 6), O)]), [a]
    yield "GATHER", one_op(Op.GATHER, [v, Const(np.array([[4, 0], [2, 2]], I32))],
                           [((2, 2), O)], GatherOptions(axis=0)), [v]
    yield "GATHER i64 runtime", one_op(Op.GATHER, [v, np.zeros(3, I64)], [((3,), O)],
                                       GatherOptions(axis=0)), [v, np.array([3, 1, 4], I64)]
    yield "GATHER_ND", one_op(Op.GATHER_ND, [a, Const(np.array([[2, 3], [0, 0], [1, 2]], I32))],
                              [((3,), O)]), [a]
    yield "GATHER_ND rows", one_op(Op.GATHER_ND, [a, Const(np.array([[2], [0]], I32))],
                                   [((2, 4), O)]), [a]
    yield "SLICE", one_op(Op.SLICE, [a, Const(np.array([1, 1], I32)),
                                     Const(np.array([2, -1], I32))], [((2, 3), O)]), [a]
    yield "STRIDED_SLICE", one_op(
        Op.STRIDED_SLICE, [a, Const(np.array([2, -1], I32)), Const(np.array([-4, -5], I32)),
                           Const(np.array([-1, -2], I32))], [((3, 2), O)],
        StridedSliceOptions()), [a]
    yield "TILE", one_op(Op.TILE, [a, Const(np.array([2, 3], I32))], [((6, 12), O)]), [a]
    yield "EXPAND_DIMS", one_op(Op.EXPAND_DIMS, [a, Const(np.array([-1], I32))],
                                [((3, 4, 1), O)]), [a]
    sq = strings((1, 4, 1))
    yield "SQUEEZE", one_op(Op.SQUEEZE, [sq], [((4,), O)], SqueezeOptions(squeeze_dims=(0, 2))), \
        [sq]
    b = a.copy()
    b[::2, 1::2] = b"zz"
    yield "EQUAL", one_op(Op.EQUAL, [a, b], [((3, 4), np.bool_)]), [a, b]
    row = a[1].copy()
    yield "NOT_EQUAL broadcast", one_op(Op.NOT_EQUAL, [a, row], [((3, 4), np.bool_)]), [a, row]
    yield "EQUAL 5-D", one_op(Op.EQUAL, [a.reshape(1, 3, 1, 4, 1), row.reshape(4, 1)],
                              [((1, 3, 1, 4, 1), np.bool_)]), [a.reshape(1, 3, 1, 4, 1),
                                                                row.reshape(4, 1)]
    yield "FILL const", one_op(Op.FILL, [Const(np.array([2, 3], I32)),
                                         Const(np.array(b"fill me", dtype=O))],
                               [((2, 3), O)]), []
    yield "SHAPE", one_op(Op.SHAPE, [a], [((2,), I32)], ShapeOptions(out_type=TensorType.INT32)), \
        [a]
    yield "RANK", one_op(Op.RANK, [a], [((), I32)]), [a]
    e = np.empty((0, 4), O)
    yield "RESHAPE empty", one_op(Op.RESHAPE, [e, Const(np.array([4, 0], I32))],
                                  [((4, 0), O)]), [e]
    c = strings((3, 4))
    yield "RESHAPE const", one_op(Op.RESHAPE, [Const(c), Const(np.array([12], I32))],
                                  [((12,), O)]), []


@pytest.mark.parametrize("case", list(_supported_cases()), ids=lambda c: c[0])
def test_string_ops_litert_runs(case):
    name, content, feeds = case
    outs = assert_same(content, feeds, name)
    assert outs is not None, f"{name}: LiteRT refused"


def _refused_cases():
    a = strings((2, 3))
    v = strings((3,))
    yield "GATHER 2-D", one_op(Op.GATHER, [a, Const(np.array([1], I32))], [((1, 3), O)],
                               GatherOptions(axis=0)), [a]
    yield "GATHER out of range", one_op(Op.GATHER, [v, np.zeros(2, I32)], [((2,), O)],
                                        GatherOptions(axis=0)), [v, np.array([1, 3], I32)]
    yield "GATHER negative", one_op(Op.GATHER, [v, np.zeros(2, I32)], [((2,), O)],
                                    GatherOptions(axis=0)), [v, np.array([1, -1], I32)]
    yield "GATHER_ND out of range", one_op(Op.GATHER_ND, [v, np.zeros((1, 1), I32)],
                                           [((1,), O)]), [v, np.array([[3]], I32)]
    yield "CONCATENATION", one_op(Op.CONCATENATION, [a, a], [((4, 3), O)],
                                  ConcatenationOptions(axis=0)), [a, a]
    yield "PACK", one_op(Op.PACK, [v, v], [((2, 3), O)], PackOptions(values_count=2)), [v, v]
    yield "LESS", one_op(Op.LESS, [a, a], [((2, 3), np.bool_)]), [a, a]
    yield "REVERSE_V2", one_op(Op.REVERSE_V2, [a, Const(np.array([1], I32))], [((2, 3), O)]), [a]
    yield "TRANSPOSE", one_op(Op.TRANSPOSE, [a, Const(np.array([1, 0], I32))],
                              [((3, 2), O)]), [a]
    yield "SELECT_V2", one_op(Op.SELECT_V2, [Const(np.array([True, False, True])), v, v],
                              [((3,), O)]), [v, v]
    yield "PAD", one_op(Op.PAD, [a, Const(np.array([[0, 1], [1, 0]], I32))], [((3, 4), O)]), [a]
    yield "CAST", one_op(Op.CAST, [a], [((2, 3), I32)]), [a]
    yield "ADD", one_op(Op.ADD, [v, v], [((3,), O)]), [v, v]
    yield "ZEROS_LIKE", one_op(Op.ZEROS_LIKE, [a], [((2, 3), O)]), [a]


@pytest.mark.parametrize("case", list(_refused_cases()), ids=lambda c: c[0])
def test_string_ops_litert_refuses(case):
    name, content, feeds = case
    exp = run(litert_interpreter, content, feeds)
    assert exp[0] != "ok", f"{name}: LiteRT ran it"
    assert_same(content, feeds, name)


def test_string_ops_litert_mishandles():
    """Where LiteRT crashes or returns garbage: ours refuses, or gives the meaningful value."""
    a = strings((2, 3))
    # EMBEDDING_LOOKUP of string rows: LiteRT segfaults. Ours refuses at prepare.
    content = one_op(Op.EMBEDDING_LOOKUP, [Const(np.array([1, 0], I32)), a], [((2, 3), O)])
    with pytest.raises(ModelError, match="STRING"):
        ours(content).allocate_tensors()
    # FILL with a run-time string value: LiteRT fills pointer bytes; ours fills the value.
    content = one_op(Op.FILL, [Const(np.array([2, 2], I32)), np.empty((), O)], [((2, 2), O)])
    got = run(ours, content, [np.array(b"hi", dtype=O)])
    assert got[0] == "ok" and got[1][0].tolist() == [[b"hi", b"hi"], [b"hi", b"hi"]]


# -- malformed string buffers -----------------------------------------------------------------
def _const_model(values) -> tuple[bytes, bytes]:
    content = one_op(Op.RESHAPE, [Const(values), Const(np.array([values.size], I32))],
                     [((values.size,), O)])
    return content, pack_strings(values).tobytes()


@pytest.mark.parametrize("fault", ["count", "first offset", "offset past end", "decreasing",
                                   "last offset short", "huge count", "negative count"])
def test_malformed_string_buffer_is_model_error(fault):
    vals = np.array([b"alpha", b"beta", b"gamma"], dtype=O)
    content, packed = _const_model(vals)
    assert content.count(packed) == 1
    words = list(struct.unpack_from("<5i", packed))  # count, 4 offsets
    if fault == "count":
        words[0] = 2
    elif fault == "first offset":
        words[1] += 1
    elif fault == "offset past end":
        words[3] = len(packed) + 5
    elif fault == "decreasing":
        words[2], words[3] = words[3], words[2]
    elif fault == "last offset short":
        words[4] -= 1
    elif fault == "huge count":
        words[0] = 2**31 - 1
    elif fault == "negative count":
        words[0] = -3
    bad = struct.pack("<5i", *words) + packed[20:]
    broken = content.replace(packed, bad)
    with pytest.raises(ModelError, match="string buffer"):
        wb.load(broken)
    with pytest.raises(ModelError):
        Interpreter(model_content=broken)
    # truncated: a buffer shorter than its header
    with pytest.raises(ModelError):
        unpack_strings(np.frombuffer(packed[:10], np.uint8), (3,))


# -- hash tables ------------------------------------------------------------------------------
def table_model(key_t, val_t, keys, vals, query, default, table_id=0, once=False,
                runtime_import=False, find_out=None, size_out=TensorType.INT64):
    """HASHTABLE -> HASHTABLE_IMPORT (in a CALL_ONCE init subgraph with ``once``) ->
    HASHTABLE_FIND of input ``q`` + HASHTABLE_SIZE. ``runtime_import``: keys/values are inputs
    of the main graph (imported at every invoke: LiteRT keeps the first)."""
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)

    def table(g):
        h = g.new_tensor("h", (), R)
        g.add_operator(Operator(m.opcode(Op.HASHTABLE), [], [h], options=HashtableOptions(
            table_id=table_id, key_dtype=key_t, value_dtype=val_t)))
        return h

    q = sg.new_tensor("q", query.shape, key_t)
    sg.inputs.append(q)
    if once:
        init = Subgraph(name="init")
        m.subgraphs.append(init)
        hi = table(init)
        k = init.new_tensor("k", keys.shape, key_t, data=keys)
        v = init.new_tensor("v", vals.shape, val_t, data=vals)
        init.add_operator(Operator(m.opcode(Op.HASHTABLE_IMPORT), [hi, k, v], []))
        sg.add_operator(Operator(m.opcode(Op.CALL_ONCE), [], [],
                                 options=CallOnceOptions(init_subgraph_index=1)))
        h = table(sg)
    else:
        h = table(sg)
        if runtime_import:
            k = sg.new_tensor("k", keys.shape, key_t)
            v = sg.new_tensor("v", vals.shape, val_t)
            sg.inputs += [k, v]
        elif keys is not None:
            k = sg.new_tensor("k", keys.shape, key_t, data=keys)
            v = sg.new_tensor("v", vals.shape, val_t, data=vals)
        if keys is not None:
            sg.add_operator(Operator(m.opcode(Op.HASHTABLE_IMPORT), [h, k, v], []))
    d = sg.new_tensor("d", default.shape, val_t, data=default)
    out = sg.new_tensor("out", query.shape, find_out if find_out is not None else val_t)
    size = sg.new_tensor("size", (1,), size_out)
    sg.add_operator(Operator(m.opcode(Op.HASHTABLE_FIND), [h, q, d], [out]))
    sg.add_operator(Operator(m.opcode(Op.HASHTABLE_SIZE), [h], [size]))
    sg.outputs += [out, size]
    return m.to_bytes()


def _both(content, feeds_per_invoke):
    """Outputs of several invokes on one interpreter, LiteRT's and ours."""
    res = []
    for make in (litert_interpreter, ours):
        it = make(content)
        it.allocate_tensors()
        runs = []
        for feeds in feeds_per_invoke:
            for d, x in zip(it.get_input_details(), feeds):
                it.set_tensor(d["index"], x)
            it.invoke()
            runs.append([(it.get_tensor(d["index"]), d["dtype"], tuple(d["shape"]))
                         for d in it.get_output_details()])
        res.append(runs)
    return res


def assert_runs_equal(exp, got):
    for e_run, g_run in zip(exp, got):
        for (e, edt, esh), (g, gdt, gsh) in zip(e_run, g_run):
            assert (g.dtype, g.shape, gdt, gsh) == (e.dtype, e.shape, edt, esh)
            assert g.tolist() == e.tolist()


@pytest.mark.parametrize("once", [False, True], ids=["direct", "call_once"])
@pytest.mark.parametrize("table_id", [0, 5, -831659284])
def test_hashtable_string_to_int64(once, table_id):
    rng = np.random.default_rng(table_id & 0xFFFF)
    keys = np.array([b"apple", b"banana", b"", b"apple", b"\x00k", b"\xc3\xa9"], dtype=O)
    vals = rng.integers(-2**62, 2**62, keys.size).astype(I64)  # apple twice: the first wins
    query = np.array([[b"apple", b"x", b""], [b"banana", b"\x00k", b"APPLE"]], dtype=O)
    content = table_model(S, TensorType.INT64, keys, vals, query, np.array([-7, 3], I64),
                          table_id=table_id, once=once)
    q2 = strings((2, 3), rng)
    q2[0, 0] = b"\xc3\xa9"
    exp, got = _both(content, [[query], [q2], [query]])
    assert_runs_equal(exp, got)
    assert exp[0][0][0].tolist() == [[vals[0], -7, vals[2]], [vals[1], vals[4], -7]]
    assert exp[0][1][0].tolist() == [5]


def test_hashtable_int64_to_string():
    keys = np.array([5, 7, 5, -1, 2**40], I64)
    vals = np.array([b"five", b"seven", b"again", b"minus", b"\x00big"], dtype=O)
    query = np.array([5, 6, 7, -1, 2**40, 0, 5], I64)
    content = table_model(TensorType.INT64, S, keys, vals, query, np.array([b"?", b"!"], dtype=O),
                          table_id=3)
    exp, got = _both(content, [[query]])
    assert_runs_equal(exp, got)
    assert exp[0][0][0].tolist() == [b"five", b"?", b"seven", b"minus", b"\x00big", b"?", b"five"]


def test_hashtable_import_once():
    """Keys/values fed at run time: every invoke imports, LiteRT keeps the first import."""
    query = np.array([b"a", b"b", b"c"], dtype=O)
    content = table_model(S, TensorType.INT64, np.empty(2, O), np.zeros(2, I64), query,
                          np.array([0], I64), runtime_import=True)
    first = [query, np.array([b"a", b"b"], dtype=O), np.array([1, 2], I64)]
    second = [query, np.array([b"c", b"b"], dtype=O), np.array([30, 20], I64)]
    exp, got = _both(content, [first, second])
    assert_runs_equal(exp, got)
    assert exp[1][0][0].tolist() == [1, 2, 0]
    it = ours(content)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), first):
        it.set_tensor(d["index"], x)
    it.invoke()
    it.reset_all_variables()  # tables are resources, not variable tensors: they stay
    it.invoke()
    assert it.get_tensor(it.get_output_details()[1]["index"]).tolist() == [2]


def _table_faults():
    q = np.array([b"a"], dtype=O)
    keys, vals, d = np.array([b"a"], dtype=O), np.array([1], I64), np.array([0], I64)
    yield "int32 values", table_model(S, TensorType.INT32, keys, vals.astype(I32), q,
                                      d.astype(I32)), [q]
    yield "string -> string", table_model(S, S, keys, keys, q, keys), [q]
    yield "default type", table_model(S, TensorType.INT64, keys, vals, q, d,
                                      find_out=TensorType.INT32), [q]
    yield "size int32", table_model(S, TensorType.INT64, keys, vals, q, d,
                                    size_out=TensorType.INT32), [q]
    yield "find before import", table_model(S, TensorType.INT64, None, None, q, d), [q]
    # import keys and values of different shapes
    m = wb.load(table_model(S, TensorType.INT64, np.array([b"a", b"b"], dtype=O),
                            np.array([1, 2], I64), q, d))
    imp = m.main.operators[1]
    imp.inputs[2] = m.main.new_tensor("v3", (3,), I64, data=np.array([1, 2, 3], I64))
    yield "import shapes", m.to_bytes(), [q]
    # two HASHTABLE ops with one id and different types: the second finds the first's table
    m = wb.load(table_model(S, TensorType.INT64, keys, vals, q, d))
    sg = m.main
    h2 = sg.new_tensor("h2", (), R)
    op2 = Operator(m.opcode(Op.HASHTABLE), [], [h2], options=HashtableOptions(
        table_id=0, key_dtype=TensorType.INT64, value_dtype=S))
    qi = sg.new_tensor("qi", (1,), I64)
    sg.inputs.append(qi)
    out2 = sg.new_tensor("out2", (1,), S)
    sg.add_operator(op2)
    sg.add_operator(Operator(m.opcode(Op.HASHTABLE_FIND), [h2, qi, sg.new_tensor(
        "d2", (1,), S, data=np.array([b"?"], dtype=O))], [out2]))
    sg.outputs.append(out2)
    yield "one id two types", m.to_bytes(), [q, np.array([1], I64)]
    # a table whose id is a resource variable's: LiteRT refuses when the table is made
    m = wb.load(table_model(S, TensorType.INT64, keys, vals, q, d))
    sg = m.main
    vh = sg.new_tensor("vh", (), R)
    sg.add_operator(Operator(m.opcode(Op.VAR_HANDLE), [], [vh],
                             options=VarHandleOptions(shared_name="v")), index=0)
    sg.add_operator(Operator(m.opcode(Op.ASSIGN_VARIABLE), [vh, sg.new_tensor(
        "x", (1,), np.float32, data=np.ones(1, np.float32))], []), index=1)
    yield "id of a variable", m.to_bytes(), [q]


@pytest.mark.parametrize("case", list(_table_faults()), ids=lambda c: c[0])
def test_hashtable_faults(case):
    name, content, feeds = case
    exp = run(litert_interpreter, content, feeds)
    assert exp[0] != "ok", f"{name}: LiteRT ran it"
    assert_same(content, feeds, name)


def _converter_like() -> bytes:
    """What TF 2.21's converter makes of two ``tf.lookup.StaticHashTable``s (see
    ``test_converted_static_hash_table``): CALL_ONCE imports both, the tables' ids are hashes,
    outputs are recorded with shape [] and inputs with signature [-1]."""
    m = Model()
    main, init = Subgraph(name="main"), Subgraph(name="NoOp")
    m.subgraphs += [main, init]
    ids = (-831659284, 835449204)
    types = ((TensorType.INT64, S), (S, TensorType.INT64))
    data = ((np.array([5, 7, 11], I64), np.array([b"five", b"seven", b"eleven"], dtype=O)),
            (np.array([b"apple", b"banana", b"cherry"], dtype=O), np.array([1, 2, 3], I64)))

    def table(g, k):
        h = g.new_tensor(f"hash_table_{k}", (1,), R)
        g.add_operator(Operator(m.opcode(Op.HASHTABLE), [], [h], options=HashtableOptions(
            table_id=ids[k], key_dtype=types[k][0], value_dtype=types[k][1])))
        return h

    for k in range(2):
        h = table(init, k)
        kk = init.new_tensor(f"k{k}", (3,), types[k][0], data=data[k][0])
        vv = init.new_tensor(f"v{k}", (3,), types[k][1], data=data[k][1])
        init.add_operator(Operator(m.opcode(Op.HASHTABLE_IMPORT), [h, kk, vv], []))
    main.add_operator(Operator(m.opcode(Op.CALL_ONCE), [], [],
                               options=CallOnceOptions(init_subgraph_index=1)))
    hs = [table(main, 0), table(main, 1)]
    i = main.new_tensor("i", (1,), I64)
    s = main.new_tensor("s", (1,), S)
    i.shape_signature = s.shape_signature = (-1,)
    main.inputs += [i, s]
    names, ids_out, size = (main.new_tensor("names", (), S),
                            main.new_tensor("ids", (), I64), main.new_tensor("size", (), I64))
    main.add_operator(Operator(m.opcode(Op.HASHTABLE_FIND), [hs[0], i, main.new_tensor(
        "d0", (), S, data=np.array(b"?", dtype=O))], [names]))
    main.add_operator(Operator(m.opcode(Op.HASHTABLE_FIND), [hs[1], s, main.new_tensor(
        "d1", (), I64, data=np.array(-1, I64))], [ids_out]))
    main.add_operator(Operator(m.opcode(Op.HASHTABLE_SIZE), [hs[1]], [size]))
    main.outputs += [ids_out, size, names]
    return m.to_bytes()


def _check_table_file(content):
    """Both inputs resized, then every output equal to LiteRT's (values, dtypes, shapes)."""
    results = []
    for make in (litert_interpreter, ours):
        it = make(content)
        d = it.get_input_details()
        it.resize_tensor_input(d[0]["index"], [4])
        it.resize_tensor_input(d[1]["index"], [3])
        it.allocate_tensors()
        it.set_tensor(d[0]["index"], np.array([5, 7, 0, 11], I64))
        it.set_tensor(d[1]["index"], np.array(["apple", "durian", "cherry"]))
        it.invoke()
        results.append([(it.get_tensor(x["index"]), x["shape"].tolist())
                        for x in it.get_output_details()])
    for (e, es), (g, gs) in zip(*results):
        assert (g.dtype, g.tolist(), gs) == (e.dtype, e.tolist(), es)
    got = sorted((x.tolist() for x, _ in results[1]), key=str)
    assert got == sorted([[1, -1, 3], [3], [b"five", b"seven", b"?", b"eleven"]], key=str)


def test_converter_like_static_hash_table():
    _check_table_file(_converter_like())


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.mark.slow
def test_converted_static_hash_table(tf):
    """TF 2.21 lowers ``tf.lookup.StaticHashTable`` to these builtins (HASHTABLE, a CALL_ONCE
    init subgraph of HASHTABLE + HASHTABLE_IMPORT, HASHTABLE_FIND, HASHTABLE_SIZE)."""

    class Tables(tf.Module):
        def __init__(self):
            super().__init__()
            self.names = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant([5, 7, 11], tf.int64), tf.constant(["five", "seven", "eleven"])),
                default_value="?")
            self.ids = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(["apple", "banana", "cherry"]), tf.constant([1, 2, 3], tf.int64)),
                default_value=-1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64),
                                      tf.TensorSpec([None], tf.string)])
        def __call__(self, i, s):
            return {"ids": self.ids.lookup(s), "names": self.names.lookup(i),
                    "size": self.ids.size()}

    mod = Tables()
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [mod.__call__.get_concrete_function()], mod)
    content = conv.convert()
    ops = {op.name for sg in wb.load(content).subgraphs for op in sg.operators}
    assert {"HASHTABLE", "HASHTABLE_IMPORT", "HASHTABLE_FIND", "HASHTABLE_SIZE",
            "CALL_ONCE"} <= ops
    _check_table_file(content)
    runner = ours(content).get_signature_runner()
    out = runner(i=np.array([11], I64), s=np.array([b"banana"], dtype=O))
    assert out["names"].tolist() == [b"eleven"] and out["ids"].tolist() == [2]


# -- SKIP_GRAM --------------------------------------------------------------------------------
SENTENCES = [b"the quick brown fox jumps over", b" a b", b"a  b\tc\n", b" ", b"", b"x",
             b"  lead two", b"a b c d e f g", b"\xc3\xa9t\xc3\xa9 \x85 hi\x0bthere\r\nyes",
             b"trailing  ", b"one\x00two three"]


def _skip_gram_model(k, skip, include_all, const=None, n=1):
    x = Const(const) if const is not None else np.empty((n,), O)
    return one_op(Op.SKIP_GRAM, [x], [((0,), O)],
                  SkipGramOptions(ngram_size=k, max_skip_size=skip, include_all_ngrams=include_all))


@pytest.mark.parametrize("include_all", [False, True])
def test_skip_gram(include_all):
    rng = np.random.default_rng(int(include_all))
    cases = [(s, k, sk) for s in SENTENCES for k in (-1, 0, 1, 2, 3, 5) for sk in (-2, 0, 1, 3)]
    words = [b"w%d" % i for i in range(9)]
    for _ in range(10):
        s = b" ".join(rng.choice(words, rng.integers(1, 9)).tolist())
        cases.append((s, int(rng.integers(1, 5)), int(rng.integers(0, 4))))
    for s, k, sk in cases:
        content = _skip_gram_model(k, sk, include_all)
        outs = assert_same(content, [np.array([s], dtype=O)], f"{s!r} {k} {sk}")
        assert outs[0].ndim == 1


def test_skip_gram_details_and_constant_input():
    s = np.array([b"alpha beta gamma delta", b"not read"], dtype=O)
    for content, feeds in ((_skip_gram_model(2, 1, True, n=2), [s]),
                           (_skip_gram_model(2, 1, True, const=s), [])):
        exp = run(litert_interpreter, content, feeds)
        it = ours(content)
        it.allocate_tensors()
        for d, x in zip(it.get_input_details(), feeds):
            it.set_tensor(d["index"], x)
        it.invoke()
        d = it.get_output_details()[0]
        assert it.get_tensor(d["index"]).tolist() == exp[1][0].tolist()
        assert d["shape"].tolist() == [len(exp[1][0])] and d["dtype"] is np.bytes_


def test_skip_gram_faults():
    # a long sentence with a huge skip would enumerate combinations without end
    long = np.array([b" ".join(b"w%d" % i for i in range(300))], dtype=O)
    with pytest.raises(InputError, match="word sequences"):
        ours(_skip_gram_model(6, 2**31 - 1, False)).run([long])
    with pytest.raises(ModelError, match="word sequences"):
        ours(_skip_gram_model(6, 1000, True, const=long)).allocate_tensors()
    # a huge ngram_size with few words: no grams, quickly (as LiteRT)
    assert_same(_skip_gram_model(2**31 - 1, 2**31 - 1, True), [long[:1]], "huge ngram_size")
    # no string at all: LiteRT reads out of bounds; ours refuses
    with pytest.raises(ModelError, match="no string"):
        ours(_skip_gram_model(1, 0, False)).run([np.empty((0,), O)])
    # input that is not a string: both refuse at prepare
    content = one_op(Op.SKIP_GRAM, [np.zeros(2, I32)], [((0,), O)], SkipGramOptions())
    assert_same(content, [np.zeros(2, I32)], "int input")
