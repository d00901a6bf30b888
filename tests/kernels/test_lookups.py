"""EMBEDDING_LOOKUP_SPARSE, LSH_PROJECTION and HASHTABLE_LOOKUP against LiteRT's built-in
kernels, on one-op models with random data: outputs bit for bit (float outputs compared as
their bits), the errors LiteRT raises at allocate or at invoke raised by us at the same step,
and FarmHash's Fingerprint64 against reference values (TensorFlow's ``tf.fingerprint``)."""

from __future__ import annotations

import numpy as np
import pytest
from workbench.kernels._farmhash import fingerprint64

from tests.kernels.test_elementwise import Const, feeds, one_op, run_ours
from tests.litert_oracle import litert_interpreter
from workbench.errors import InputError, ModelError, UnsupportedOpError
from workbench.interpreter import Interpreter
from workbench.ir import ops as O

Op = O.Op
F32, I32 = np.float32, np.int32
SUM, MEAN, SQRTN = 0, 1, 2
SPARSE, DENSE = 1, 2


def run_litert(content: bytes, xs) -> list[np.ndarray]:
    """LiteRT's outputs; an output with no elements has no data there (``get_tensor`` fails),
    so it is built from its details."""
    it = litert_interpreter(content)
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()
    outs = []
    for d in it.get_output_details():
        if 0 in d["shape"]:
            outs.append(np.zeros(d["shape"], object if d["dtype"] is np.bytes_ else d["dtype"]))
        else:
            outs.append(it.get_tensor(d["index"]).copy())
    return outs


def same(content: bytes, ins, what: str = "") -> list[np.ndarray]:
    xs = feeds(ins)
    exp, got = run_litert(content, xs), run_ours(content, xs)
    assert len(got) == len(exp)
    for k, (g, e) in enumerate(zip(got, exp)):
        assert g.dtype == e.dtype and g.shape == e.shape, \
            f"{what} output {k}: got {g.dtype}{list(g.shape)}, expected {e.dtype}{list(e.shape)}"
        if e.dtype == object:  # STRING tensors: arrays of bytes
            assert g.tolist() == e.tolist(), f"{what} output {k}"
            continue
        if e.dtype.kind == "f":  # bits, so NaN, infinities and zero signs count too
            g, e = g.view(f"u{e.itemsize}"), e.view(f"u{e.itemsize}")
        np.testing.assert_array_equal(g, e, err_msg=f"{what} output {k}")
    return got


def _step(it, xs, at: str):
    if at == "allocate":
        it.allocate_tensors()
        return
    it.allocate_tensors()
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    it.invoke()


def refused(content: bytes, ins, at: str, ours=ModelError, litert: bool = True) -> None:
    """Both runtimes fail at ``at`` ("allocate" or "invoke"); ours with ``ours``. With
    ``litert=False`` only ours is checked (LiteRT runs the model with undefined results)."""
    xs = feeds(ins)
    if litert:
        lit = litert_interpreter(content)
        if at == "invoke":
            lit.allocate_tensors()
        with pytest.raises(RuntimeError):
            _step(lit, xs, at)
    it = Interpreter(model_content=content)
    if at == "invoke":
        it.allocate_tensors()
    with pytest.raises(ours) as err:
        _step(it, xs, at)
    assert "operators[0]" in str(err.value)  # names the op


# -- FarmHash ----------------------------------------------------------------------------------
#: Fingerprint64 of ``(arange(n) * 151 + 17 * n + 3) % 256`` as bytes, from TensorFlow's
#: ``tf.fingerprint`` (FarmHash's own code): every length branch (0-16, 17-32, 33-64, > 64 with
#: one to four 64-byte blocks and a partial last block).
GOLDEN = {
    0: 11160318154034397263, 1: 14553896469309921886, 2: 3819723377146115350,
    3: 10904660399785958656, 4: 6031926023854866252, 5: 9276634899229995124,
    7: 2095324550507849511, 8: 10361756204935622712, 9: 854076551222547966,
    12: 6520356617808443642, 15: 15736619576599240770, 16: 9561659105019224455,
    17: 890034392561902071, 20: 1279154134332156715, 24: 13670560670732422944,
    31: 11829017195503697937, 32: 10626239388504171498, 33: 15199700928927898285,
    40: 17977133242205596679, 48: 5530825032742331776, 63: 16714545661016458322,
    64: 14910369141968652743, 65: 9810868939396518858, 100: 6770428899171414526,
    127: 12521788805353744909, 128: 9265461396593429082, 129: 8980378920676957408,
    191: 14173791351161694687, 192: 17556232508720868681, 193: 104712886193700756,
    255: 3244198310224861249, 256: 8899615123811255857, 300: 9813719055786623012,
}


def test_fingerprint64_reference_values():
    for n, want in GOLDEN.items():
        key = ((np.arange(n) * 151 + 17 * n + 3) % 256).astype(np.uint8).reshape(1, n)
        assert int(fingerprint64(key)[0]) == want, f"length {n}"


def test_fingerprint64_rows_are_independent():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 256, (5, 70), dtype=np.uint8)
    whole = fingerprint64(keys)
    assert [int(fingerprint64(keys[i:i + 1])[0]) for i in range(5)] == whole.tolist()
    assert len(set(whole.tolist())) == 5


# -- LSH_PROJECTION ----------------------------------------------------------------------------
def lsh_model(hash_, x, weight, kind, out_len=None, out_dtype=I32, extra=()):
    if out_len is None:
        n_hash, n_bits = hash_.value.shape if isinstance(hash_, Const) else hash_.shape
        out_len = n_hash if kind == SPARSE else n_hash * n_bits
    ins = [hash_, x] + ([] if weight is False else [weight]) + list(extra)
    return one_op(Op.LSH_PROJECTION, ins, [((out_len,), out_dtype)],
                  options=O.LSHProjectionOptions(type=kind)), ins


#: Input row shapes whose bytes plus the 4 seed bytes hit every length branch of the hash.
ROWS = {np.float32: [(), (3,), (4,), (7,), (15,), (16,), (40,), (3, 33)],
        np.int8: [(), (5,), (12,), (13,), (28,), (29,), (60,), (61,), (124,), (200,)],
        np.uint8: [(1,), (14,), (66,)], np.int16: [(2,), (9,), (31,)],
        np.int32: [(1,), (8,), (20,)], np.int64: [(1,), (4,), (9,)],
        np.float16: [(3,), (17,)], np.bool_: [(1,), (13,), (70,)], np.float64: [(2,), (9,)]}


@pytest.mark.parametrize("dtype", list(ROWS), ids=lambda d: np.dtype(d).name)
def test_lsh_projection_matches_litert(dtype):
    rng = np.random.default_rng(np.dtype(dtype).num)
    for k, row in enumerate(ROWS[dtype]):
        for kind in (SPARSE, DENSE):
            n = int(rng.integers(1, 5))
            n_hash, n_bits = int(rng.integers(1, 4)), int(rng.integers(1, 9))
            hash_ = rng.standard_normal((n_hash, n_bits)).astype(F32)
            x = (rng.standard_normal((n, *row)) * 100).astype(dtype)
            for weight in (False, rng.standard_normal(n).astype(F32)):
                m, ins = lsh_model(Const(hash_) if k % 2 else hash_, x, weight, kind)
                same(m, ins, f"{np.dtype(dtype).name} row {row} kind {kind}")


def test_lsh_projection_bit_counts_and_offsets():
    """0 to 32 bits per hash function: the sparse offset ``i << bits`` wraps in int32 (31
    bits), and 32 bits shift by 32 mod 32 on x86 (offset ``i``)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2)).astype(F32)
    for bits in (0, 1, 2, 16, 30, 31, 32):
        hash_ = rng.standard_normal((5, bits)).astype(F32)
        for kind in (SPARSE, DENSE):
            m, ins = lsh_model(Const(hash_), x, False, kind)
            same(m, ins, f"{bits} bits kind {kind}")
    m, ins = lsh_model(Const(np.zeros((0, 4), F32)), x, False, SPARSE)  # no hash functions
    same(m, ins, "no hash functions")


def test_lsh_projection_edge_values():
    rng = np.random.default_rng(2)
    hash_ = np.array([[0.0, -0.0, np.nan, np.inf], [1e-45, -1.5, 3.0, 7.0]], F32)
    x = rng.standard_normal((4, 0)).astype(F32)  # empty rows: the key is the seed alone
    for kind in (SPARSE, DENSE):
        m, ins = lsh_model(Const(hash_), x, False, kind)
        same(m, ins, "empty rows")
        w = np.array([0.0, -0.0, np.nan, 1.0], F32)
        m, ins = lsh_model(Const(hash_), rng.standard_normal((4, 3)).astype(F32), w, kind)
        same(m, ins, "zero and NaN weights")
    many = rng.standard_normal((64, 5)).astype(F32)  # many rows: the double sum's order
    m, ins = lsh_model(Const(rng.standard_normal((8, 16)).astype(F32)), many,
                       rng.standard_normal(64).astype(F32), SPARSE)
    same(m, ins, "64 rows")


def test_lsh_projection_refusals():
    h = Const(np.ones((3, 4), F32))
    x = np.ones((3, 2), F32)
    for kind in (0, 3):  # UNKNOWN and out of range
        refused(*lsh_model(h, x, False, kind, out_len=3), "allocate")
    refused(*lsh_model(Const(np.ones((3, 33), F32)), x, False, SPARSE), "allocate")
    refused(*lsh_model(Const(np.ones(4, F32)), x, False, SPARSE, out_len=4), "allocate")
    refused(*lsh_model(h, np.zeros((0, 2), F32), False, SPARSE), "allocate")  # no rows
    refused(*lsh_model(h, np.float32(1).reshape(()), False, SPARSE), "allocate")  # rank 0
    refused(*lsh_model(h, x, None, SPARSE), "allocate")  # listed but omitted weight
    refused(*lsh_model(h, x, np.ones((3, 1), F32), SPARSE), "allocate")
    refused(*lsh_model(h, x, np.ones((2,), F32), SPARSE), "allocate")
    refused(*lsh_model(h, x, np.ones(3, F32), SPARSE, extra=[np.ones(3, F32)]), "allocate")
    # LiteRT runs these, reading the tensors' bytes as float32 or writing int32 bits: refused
    refused(*lsh_model(Const(np.ones((3, 4), I32)), x, False, SPARSE), "allocate",
            UnsupportedOpError, litert=False)
    refused(*lsh_model(h, x, np.ones(3, I32), SPARSE), "allocate", UnsupportedOpError,
            litert=False)
    refused(*lsh_model(h, x, False, SPARSE, out_dtype=F32), "allocate", litert=False)


def random_strings(rng, shape) -> np.ndarray:
    out = np.empty(int(np.prod(shape)), dtype=object)
    for k in range(out.size):
        out[k] = bytes(rng.integers(0, 256, int(rng.integers(0, 40))).tolist())
    return out.reshape(shape)


def test_lsh_projection_string_input():
    """LiteRT hashes a STRING input's raw buffer (count, offsets, bytes) cut into
    ``shape[0]`` equal rows, the remainder left out."""
    rng = np.random.default_rng(5)
    for t in range(16):
        n = int(rng.integers(1, 5))
        x = random_strings(rng, (n,) if t % 2 else (n, 2))
        if t % 4 == 3:
            x = Const(x)
        hash_ = rng.standard_normal((3, 5)).astype(F32)
        weight = rng.standard_normal(n).astype(F32) if t % 3 else False
        same(*lsh_model(Const(hash_), x, weight, SPARSE if t % 2 else DENSE), f"case {t}")


# -- HASHTABLE_LOOKUP --------------------------------------------------------------------------
def ht_model(lookup, keys, values, hits_dtype=np.uint8, out_dtype=None, outputs=2):
    v = values.value if isinstance(values, Const) else values
    outs = [((lookup.shape[0], *v.shape[1:]), out_dtype or v.dtype),
            ((lookup.shape[0],), hits_dtype)][:outputs]
    ins = [lookup, keys, values]
    return one_op(Op.HASHTABLE_LOOKUP, ins, outs), ins


HT_DTYPES = [np.float32, np.int32, np.int8, np.uint8, np.int16, np.int64, np.float16, np.bool_,
             np.float64, np.complex64]


def test_hashtable_lookup_matches_litert():
    rng = np.random.default_rng(3)
    for t in range(200):
        n_keys = int(rng.integers(1, 20))
        kind = t % 4
        if kind == 0:  # sorted, unique
            keys = np.sort(rng.choice(100, n_keys, replace=False))
        elif kind == 1:  # unsorted with repeats: bsearch's own path decides
            keys = rng.integers(-50, 50, n_keys)
        elif kind == 2:  # far apart: a wrapping int32 difference would flip comparisons
            keys = np.sort(rng.integers(-2**31, 2**31, n_keys))
        else:  # sorted with repeats
            keys = np.sort(rng.integers(-5, 5, n_keys))
        keys = keys.astype(I32)
        n = int(rng.integers(0, 10))
        lookup = np.concatenate([rng.choice(keys, n), rng.integers(-100, 100, 3),
                                 rng.integers(-2**31, 2**31, 2), [-2**31, 2**31 - 1]])
        lookup = rng.permutation(lookup).astype(I32)
        dtype = HT_DTYPES[t % len(HT_DTYPES)]
        vshape = (n_keys, *[(), (3,), (2, 2), (0,)][t % 4])
        values = (rng.standard_normal(vshape) * 50).astype(dtype)
        if t % 3 == 0:
            values, keys = Const(values), keys
        else:
            keys = Const(keys)
        same(*ht_model(lookup, keys, values), f"case {t}")


def test_hashtable_lookup_strings():
    rng = np.random.default_rng(6)
    for t in range(12):
        n_keys = int(rng.integers(1, 12))
        keys = np.sort(rng.choice(40, n_keys, replace=False)).astype(I32)
        values = random_strings(rng, (n_keys,))
        lookup = rng.integers(-2, 42, int(rng.integers(0, 9))).astype(I32)
        if t % 2:
            values = Const(values)
        same(*ht_model(lookup, Const(keys), values), f"case {t}")
    refused(*ht_model(np.array([1], I32), Const(np.array([1, 2], I32)),
                      random_strings(rng, (2, 2))), "allocate")


def test_hashtable_lookup_empty_and_refusals():
    L, K = np.array([1, 2, 3], I32), Const(np.array([1, 3], I32))
    V = np.arange(4, dtype=F32).reshape(2, 2)
    got = same(*ht_model(np.zeros(0, I32), K, V), "no lookups")
    assert got[0].shape == (0, 2) and got[1].shape == (0,)
    refused(*ht_model(L, Const(np.zeros(0, I32)), np.zeros((0, 2), F32)), "invoke")
    refused(*ht_model(L, np.zeros(0, I32), np.zeros((0, 2), F32)), "invoke")
    refused(*ht_model(L, K, V, hits_dtype=I32), "allocate")
    refused(*ht_model(L, K, V, out_dtype=I32), "allocate")
    refused(*ht_model(L, Const(np.array([1, 3], np.int64)), V), "allocate")
    refused(*ht_model(L.astype(np.int64), K, V), "allocate")
    refused(*ht_model(L.reshape(3, 1), K, V), "allocate")
    refused(*ht_model(L, Const(np.array([[1], [3]], I32)), V), "allocate")
    refused(*ht_model(L, Const(np.array([1], I32)), np.float32(2).reshape(())), "allocate")
    refused(*ht_model(L, K, V[:1]), "allocate")
    refused(*ht_model(L, K, V, outputs=1), "allocate")


# -- EMBEDDING_LOOKUP_SPARSE -------------------------------------------------------------------
def els_model(ids, idx, dshape, w, params, combiner=SUM, out_shape=None, out_dtype=F32,
              options=True):
    p = params.value if isinstance(params, Const) else params
    if out_shape is None:
        d = dshape.value if isinstance(dshape, Const) else dshape
        out_shape = tuple(int(v) for v in d[:-1]) + p.shape[1:]
    ins = [ids, idx, dshape, w, params]
    opts = O.EmbeddingLookupSparseOptions(combiner=combiner) if options else None
    return one_op(Op.EMBEDDING_LOOKUP_SPARSE, ins, [(out_shape, out_dtype)], options=opts), ins


def random_sparse(rng, n, dense, rows, emb, sort):
    idx = np.stack([rng.integers(0, d, n) for d in dense], 1).astype(I32).reshape(n, len(dense))
    if sort:
        idx = idx[np.lexsort(idx.T[::-1])]
    ids = rng.integers(0, rows, n).astype(I32)
    w = rng.standard_normal(n).astype(F32)
    params = rng.standard_normal((rows, *emb)).astype(F32)
    return ids, idx, np.asarray(dense, I32), w, params


@pytest.mark.parametrize("combiner", [SUM, MEAN, SQRTN, 7], ids=["sum", "mean", "sqrtn", "7"])
def test_embedding_lookup_sparse_matches_litert(combiner):
    """Sorted and unsorted indices (a bucket left and entered again is divided twice, as in
    LiteRT), lookup ranks 1-3, embeddings of rank 1-3; combiner 7 means SUM in LiteRT."""
    rng = np.random.default_rng(10 + combiner)
    for t in range(60):
        rank = 1 + t % 3
        dense = rng.integers(1, 4, rank)
        emb = [(3,), (2, 2), (1,), (5,), (2, 1, 3), (0,)][t % 6]
        ids, idx, dshape, w, params = random_sparse(rng, int(rng.integers(0, 14)), dense,
                                                    int(rng.integers(1, 6)), emb, t % 2 == 0)
        ds = Const(dshape) if t % 4 == 1 else dshape
        p = Const(params) if t % 5 == 2 else params
        same(*els_model(ids, idx, ds, w, p, combiner), f"case {t}")


def test_embedding_lookup_sparse_long_runs():
    """Many lookups: runs of very different lengths and buckets revisited many times."""
    rng = np.random.default_rng(4)
    for combiner in (SUM, MEAN, SQRTN):
        ids, idx, dshape, w, params = random_sparse(rng, 600, (7, 3), 20, (4,), False)
        idx[:300, 0] = 2  # one long run, then an unsorted tail
        idx[rng.random(600) < 0.3, 0] = 5
        same(*els_model(ids, idx, dshape, w, params, combiner), f"combiner {combiner}")


def test_embedding_lookup_sparse_special_values():
    ids = np.array([0, 1, 2, 3], I32)
    idx = np.array([[0, 0], [0, 1], [1, 0], [2, 0]], I32)
    params = np.array([[1, -0.0], [np.inf, 2], [np.nan, 0.0], [-0.0, -0.0]], F32)
    for w in ([1, -1, 0, -0.0], [0, 0, 0, 0], [-0.0, 1, 2, -0.0]):
        for combiner in (SUM, MEAN, SQRTN):
            same(*els_model(ids, idx, np.array([3, 2], I32), np.asarray(w, F32), params,
                            combiner), f"weights {w} combiner {combiner}")


def test_embedding_lookup_sparse_empty_and_options():
    P = np.arange(8, dtype=F32).reshape(4, 2)
    none = (np.zeros(0, I32), np.zeros((0, 2), I32))
    for combiner in (SUM, MEAN, SQRTN):
        same(*els_model(*none, np.array([3, 2], I32), np.zeros(0, F32), P, combiner), "empty")
    same(*els_model(*none, np.array([3, 2], I32), np.zeros(0, F32), np.zeros((0, 2), F32)),
         "empty params")
    ids, idx = np.array([0, 1, 2], I32), np.array([[0, 0], [0, 1], [1, 0]], I32)
    w = np.array([1, 2, 3], F32)
    same(*els_model(ids, idx, np.array([2, 2], I32), w, P, options=False), "no options: SUM")
    same(*els_model(ids, np.array([[0, 0], [0, 9], [1, -4]], I32), np.array([2, -2], I32), w,
                    P), "the last index column and dimension are not used")


def test_embedding_lookup_sparse_invoke_errors():
    P = np.arange(8, dtype=F32).reshape(4, 2)
    ids, idx = np.array([0, 1, 2], I32), np.array([[0, 0], [0, 1], [1, 0]], I32)
    ds, w = np.array([2, 2], I32), np.array([1, 2, 3], F32)
    for bad in ([0, 4, 1], [0, -1, 1]):
        refused(*els_model(np.array(bad, I32), idx, ds, w, P), "invoke")
    refused(*els_model(ids, idx, np.array([2, 2, 2], I32), w, P, out_shape=(2, 2, 2)),
            "invoke")
    refused(*els_model(ids, idx, Const(np.array([2, 2, 2], I32)), w, P, out_shape=(2, 2, 2)),
            "invoke")
    refused(*els_model(ids, np.array([[0, 0], [0, 1], [0, 0]], I32), np.array([-1, 2], I32), w,
                       P, out_shape=(1, 2)), "invoke")
    # An index outside dense_shape: LiteRT 2.3.0 drops or misplaces the row (TensorFlow's
    # current kernel refuses it); we refuse it.
    for bad in ([[0, 0], [2, 1], [1, 0]], [[0, 0], [-1, 1], [1, 0]]):
        refused(*els_model(ids, np.array(bad, I32), ds, w, P), "invoke", litert=False)
    idx3 = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0]], I32)
    refused(*els_model(ids, idx3, np.array([1 << 30, 1 << 30, 1], I32), w, P,
                       out_shape=(2, 2, 2)), "invoke", InputError, litert=False)  # 2**61 floats


def test_embedding_lookup_sparse_prepare_errors():
    P = np.arange(8, dtype=F32).reshape(4, 2)
    ids, idx = np.array([0, 1, 2], I32), np.array([[0, 0], [0, 1], [1, 0]], I32)
    ds, w = np.array([2, 2], I32), np.array([1, 2, 3], F32)
    for args in ((ids.astype(np.int64), idx, ds, w, P), (ids.reshape(3, 1), idx, ds, w, P),
                 (ids, idx[:, 0].copy(), ds, w, P), (ids, idx, ds.reshape(1, 2), w, P),
                 (ids, idx, ds, w.astype(I32), P), (ids, idx, ds, w[:2], P),
                 (ids, idx[:2], ds, w, P)):
        refused(*els_model(*args, out_shape=(2, 2)), "allocate")
    refused(*els_model(ids, idx, ds, w, np.arange(4, dtype=F32), out_shape=(2,)), "allocate")
    refused(*els_model(ids, idx, ds, w, P, out_dtype=I32), "allocate")
    # LiteRT reads non-float32 params' bytes as float32 (no hybrid path): refused
    for dtype in (np.int8, np.uint8, np.float16):
        refused(*els_model(ids, idx, ds, w, P.astype(dtype)), "allocate", UnsupportedOpError,
                litert=False)
    refused(*els_model(ids, np.zeros((3, 0), I32), np.zeros(0, I32), w, P, out_shape=(2,)),
            "allocate", litert=False)  # LiteRT writes past its output shape array
