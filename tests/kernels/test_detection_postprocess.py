"""TFLite_Detection_PostProcess (custom op LiteRT resolves by default) against LiteRT: fast and
regular NMS, ties, uint8 inputs, a realistic SSD anchor grid, option parsing, and refusals.

LiteRT leaves some output slots unwritten (uninitialized memory, or the previous invoke's
values): in fast NMS every slot past ``num_detections`` anchors and the classes past
``num_classes`` of each anchor's ``max_classes_per_detection``; in regular NMS every slot past
``max_detections``. Only the slots it writes are compared (ours are 0 elsewhere)."""

from __future__ import annotations

import faulthandler
import multiprocessing

import numpy as np
import pytest
from flatbuffers import flexbuffers

from tests.kernels.test_elementwise import _run
from tests.litert_oracle import litert_interpreter
from workbench import Interpreter
from workbench.errors import InputError, ModelError
from workbench.ir.graph import Model, Operator, QuantParams, Subgraph

F32, U8 = np.float32, np.uint8
NAME = "TFLite_Detection_PostProcess"
BASE = dict(max_detections=6, max_classes_per_detection=1, detections_per_class=4,
            use_regular_nms=False, nms_score_threshold=0.2, nms_iou_threshold=0.5, num_classes=3,
            y_scale=10.0, x_scale=10.0, h_scale=5.0, w_scale=5.0)


def model(opts, boxes, scores, anchors, *, const_anchors=False, qb=None, qc=None, qa=None,
          raw=None, n_in=3, n_out=4, out_dtype=F32) -> bytes:
    """One-op model; ``boxes``/``scores``/``anchors`` are arrays (their shape and dtype
    matter; ``anchors`` is a constant with ``const_anchors``). ``raw``: custom option bytes
    (``b""``: none) instead of the FlexBuffer of ``opts``."""
    m = Model()
    sg = Subgraph(name="main")
    m.subgraphs.append(sg)
    tb = sg.new_tensor("boxes", boxes.shape, boxes.dtype, quantization=qb)
    tc = sg.new_tensor("scores", scores.shape, scores.dtype, quantization=qc)
    if const_anchors:
        ta = sg.new_tensor("anchors", anchors.shape, anchors.dtype, data=anchors, quantization=qa)
        sg.inputs += [tb, tc]
    else:
        ta = sg.new_tensor("anchors", anchors.shape, anchors.dtype, quantization=qa)
        sg.inputs += [tb, tc, ta]
    shapes = [(1, 1, 4), (1, 1), (1, 1), (1,)]
    outs = [sg.new_tensor(f"out{k}", shapes[k % 4], out_dtype) for k in range(n_out)]
    sg.outputs += outs
    ins = ([tb, tc, ta] + [ta] * 3)[:n_in]
    data = flexbuffers.Dumps(opts) if raw is None else raw
    sg.add_operator(Operator(m.opcode(None, NAME), ins, outs,
                             custom_options=np.frombuffer(data, U8) if data else None,
                             custom_options_format=0))
    return m.to_bytes()


def _i32(v) -> int:
    """flexbuffers' AsInt32 of a number: truncated, low 32 bits."""
    return (int(v) + 2**31) % 2**32 - 2**31


def written(opts: dict, num: float, d: int) -> np.ndarray:
    """Mask of the output slots LiteRT writes."""
    md, mc, nc = (_i32(opts.get(k, 0)) for k in ("max_detections", "max_classes_per_detection",
                                                  "num_classes"))
    m = np.zeros(d, bool)
    if opts.get("use_regular_nms"):
        m[:md] = True
    else:
        for a in range(int(num)):
            m[a * mc:a * mc + min(mc, nc)] = True
    return m


def check(opts, xs, content=None, **kw):
    """Compare ours with LiteRT bit for bit on the written slots; returns LiteRT's outputs."""
    content = content or model(opts, *xs, **kw)
    feed = xs[:2] if kw.get("const_anchors") else xs
    exp = _run(litert_interpreter(content), feed)
    got = _run(Interpreter(model_content=content), feed)
    assert [g.shape for g in got] == [e.shape for e in exp]
    assert all(g.dtype == F32 for g in got)
    np.testing.assert_array_equal(got[3], exp[3], err_msg=f"num_detections {opts}")
    m = written(opts, exp[3][0], exp[1].shape[1])
    for k, what in enumerate(("boxes", "classes", "scores")):
        g, e = got[k][0][m], exp[k][0][m]
        assert np.array_equal(g.view(np.uint32), e.view(np.uint32)), \
            f"{what} differ for {opts}:\n{g}\n{e}"
    assert not got[0][0][~m].any() and not got[1][0][~m].any() and not got[2][0][~m].any()
    return exp


def anchors_random(r, n):
    return np.concatenate([r.random((n, 2)), r.random((n, 2)) * 0.3 + 0.05], 1).astype(F32)


def case(seed):
    """Random small case: ties in scores and identical boxes half the time."""
    r = np.random.default_rng(seed)
    n, nc, bg = int(r.integers(1, 40)), int(r.integers(1, 6)), int(r.integers(0, 2))
    opts = dict(BASE, max_detections=int(r.integers(1, 12)),
                max_classes_per_detection=int(r.integers(1, 5)),
                detections_per_class=int(r.integers(1, 8)), use_regular_nms=bool(seed % 2),
                nms_score_threshold=float(r.choice([0.0, 0.2, 0.5])),
                nms_iou_threshold=float(r.choice([0.3, 0.5, 0.6, 1.0])), num_classes=nc)
    b = (r.standard_normal((1, n, 4)) * 2).astype(F32)
    if r.random() < 0.5:
        s = (r.integers(0, 5, (1, n, nc + bg)) / 4).astype(F32)
    else:
        s = r.random((1, n, nc + bg)).astype(F32)
    a = anchors_random(r, n)
    if r.random() < 0.3:
        a[:] = a[0]
        b = np.round(b, 0)
    return opts, [b, s, a]


@pytest.mark.parametrize("start", range(0, 240, 40))
def test_random_both_modes_with_ties(start):
    for seed in range(start, start + 40):
        opts, xs = case(seed)
        check(opts, xs)


def test_decoding_is_bit_exact():
    """Every box comes out (IoU threshold 1 suppresses nothing): the double-precision decode,
    exp overflow to infinite boxes included."""
    for seed in range(4):
        r = np.random.default_rng(seed)
        n = 1500
        opts = dict(max_detections=n, max_classes_per_detection=1, nms_score_threshold=-1.0,
                    nms_iou_threshold=1.0, num_classes=1, y_scale=float(r.random() * 20),
                    x_scale=float(r.random() * 20), h_scale=float(r.random() * 10) + 0.1,
                    w_scale=float(r.random() * 10) + 0.1)
        b = (r.standard_normal((1, n, 4)) * [1, 5, 30, 3][seed]).astype(F32)
        s = r.random((1, n, 2)).astype(F32)
        a = np.concatenate([r.standard_normal((n, 2)), r.random((n, 2)) * 3], 1).astype(F32)
        exp = check(opts, [b, s, a])
        assert exp[3][0] == n


def _iou_litert_order(b0, b1):
    """IoU of two float32 corner boxes in LiteRT's operation order."""
    a0 = (b0[2] - b0[0]) * (b0[3] - b0[1])
    a1 = (b1[2] - b1[0]) * (b1[3] - b1[1])
    inter = max(min(b0[2], b1[2]) - max(b0[0], b1[0]), F32(0)) * \
        max(min(b0[3], b1[3]) - max(b0[1], b1[1]), F32(0))
    return inter / ((a0 + a1) - inter), inter / (a0 + (a1 - inter))


def test_iou_at_the_threshold():
    """Two boxes whose float IoU (LiteRT's order) is the threshold exactly: not suppressed
    (``>``); one ulp lower: suppressed. Pairs are chosen where another summation order would
    give a different IoU."""
    r = np.random.default_rng(4)
    found = 0
    for _ in range(20000):
        a = np.concatenate([r.random((2, 2)) * 0.1 + 0.4, r.random((2, 2)) * 0.3 + 0.2],
                           1).astype(F32)
        c, h = a[:, :2].astype(np.float64), (0.5 * a[:, 2:].astype(np.float64)).astype(F32)
        cf = c.astype(F32)
        boxes = [np.array([cf[k, 0] - h[k, 0], cf[k, 1] - h[k, 1], cf[k, 0] + h[k, 0],
                           cf[k, 1] + h[k, 1]], F32) for k in range(2)]
        iou, other = _iou_litert_order(*boxes)
        if iou == other or not 0 < iou < 1:
            continue
        found += 1
        s = np.array([[[0, 0.9], [0, 0.8]]], F32)
        xs = [np.zeros((1, 2, 4), F32), s, a]
        opts = dict(BASE, num_classes=1, max_detections=2, nms_iou_threshold=float(iou))
        for regular in (False, True):
            assert check(dict(opts, use_regular_nms=regular), xs)[3][0] == 2
            below = dict(opts, use_regular_nms=regular,
                         nms_iou_threshold=float(np.nextafter(iou, F32(0))))
            assert check(below, xs)[3][0] == 1
        if found == 3:
            break
    assert found == 3


def ssd_anchors():
    """A MobileNet-SSD-like grid: 6 feature maps, 3 or 6 aspect ratios per cell (1917)."""
    out = []
    for k, (size, ratios) in enumerate([(19, 3), (10, 6), (5, 6), (3, 6), (2, 6), (1, 6)]):
        scale = 0.2 + 0.15 * k
        ar = [1.0, 2.0, 0.5, 3.0, 1 / 3, 1.0][:ratios]
        for i in range(size):
            for j in range(size):
                for q, a in enumerate(ar):
                    s = scale if q < 5 else np.sqrt(scale * (scale + 0.15))
                    out.append([(i + 0.5) / size, (j + 0.5) / size, s / np.sqrt(a),
                                s * np.sqrt(a)])
    return np.array(out, F32)


@pytest.mark.parametrize("regular,mc", [(False, 1), (False, 3), (True, 1)])
def test_realistic_ssd(regular, mc):
    anchors = ssd_anchors()
    n = anchors.shape[0]
    assert n == 1917
    r = np.random.default_rng(7)
    b = (r.standard_normal((1, n, 4)) * 0.5).astype(F32)
    logits = r.standard_normal((1, n, 91)) * 2 - 3
    s = (1 / (1 + np.exp(-logits))).astype(F32)
    opts = dict(max_detections=10, max_classes_per_detection=mc, detections_per_class=100,
                use_regular_nms=regular, nms_score_threshold=0.3, nms_iou_threshold=0.6,
                num_classes=90, y_scale=10.0, x_scale=10.0, h_scale=5.0, w_scale=5.0)
    exp = check(opts, [b, s, anchors], const_anchors=True)
    assert exp[3][0] == 10


def q(scale, zp):
    return QuantParams(scale=[scale], zero_point=[zp])


@pytest.mark.parametrize("anchor_kind", ["uint8", "uint8 unquantized"])
def test_uint8_inputs(anchor_kind):
    """uint8 encodings and scores, each dequantized with its own parameters; with uint8
    encodings LiteRT reads the anchors as uint8 (no parameters: all zero)."""
    for seed in range(30):
        r = np.random.default_rng(seed)
        n, nc, bg = int(r.integers(1, 60)), int(r.integers(1, 5)), int(r.integers(0, 2))
        opts = dict(BASE, max_detections=int(r.integers(1, 10)),
                    max_classes_per_detection=int(r.integers(1, 4)),
                    detections_per_class=int(r.integers(1, 10)), use_regular_nms=bool(seed % 2),
                    nms_score_threshold=float(r.random() * 0.5), num_classes=nc)
        b = r.integers(0, 256, (1, n, 4 + 2 * (seed % 3 == 0))).astype(U8)
        s = r.integers(0, 256, (1, n, nc + bg)).astype(U8)
        if seed % 2:
            s = (s // 32 * 32).astype(U8)  # ties
        a = r.integers(0, 256, (n, 4)).astype(U8)
        qa = q(0.005, 0) if anchor_kind == "uint8" else None
        check(opts, [b, s, a], qb=q(float(r.random() * 0.1 + 0.01), int(r.integers(0, 256))),
              qc=q(1 / 256, int(r.integers(0, 20))), qa=qa)


def test_mixed_types():
    """float encodings with uint8 scores, and uint8 encodings with float scores."""
    r = np.random.default_rng(3)
    n = 30
    for regular in (False, True):
        opts = dict(BASE, use_regular_nms=regular, max_classes_per_detection=2)
        s8 = r.integers(0, 256, (1, n, 4)).astype(U8)
        check(opts, [(r.standard_normal((1, n, 4))).astype(F32), s8, anchors_random(r, n)],
              qc=q(0.004, 3))
        b8 = r.integers(0, 256, (1, n, 4)).astype(U8)
        check(opts, [b8, r.random((1, n, 4)).astype(F32), r.integers(0, 256, (n, 4)).astype(U8)],
              qb=q(0.05, 128), qa=q(0.004, 0))


def test_edge_cases():
    r = np.random.default_rng(11)
    n = 12
    b = (r.standard_normal((1, n, 4))).astype(F32)
    a = anchors_random(r, n)
    s = r.random((1, n, 4)).astype(F32)
    for regular in (False, True):
        base = dict(BASE, use_regular_nms=regular)
        check(dict(base, max_detections=50), [b, s, a])  # fewer candidates than slots
        assert check(dict(base, nms_score_threshold=2.0), [b, s, a])[3][0] == 0
        check(dict(base, nms_score_threshold=0.9), [b, s, a])
        check(dict(base, num_classes=4), [b, s, a])  # no background column
        check(dict(base, max_classes_per_detection=7), [b, s, a])  # more than num_classes
        check(dict(base, detections_per_class=1000, max_detections=3), [b, s, a])
        check(base, [b[:, :0], s[:, :0], a[:0]])  # no boxes
        check(base, [np.zeros((1, n, 4), F32), s, np.tile(a[:1], (n, 1))])  # one box n times
        zero_area = a.copy()
        zero_area[:, 2] = 0
        check(base, [b, s, zero_area])
        check(base, [np.pad(b, ((0, 0), (0, 0), (0, 3))), s, a])  # 7 values per box
        check(base, [b, s, a.reshape(n * 2, 2)])  # anchors read as a flat array
    check(dict(BASE, max_detections=0), [b, s, a])
    check(dict(BASE, use_regular_nms=True, num_classes=0), [b, s[:, :, :1], a])


def test_special_values():
    """NaN/inf encodings (NaN boxes pass LiteRT's check) and NaN/inf/-0 scores."""
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 0.5, 0.5, 1.0], F32)
    for seed in range(60):
        r = np.random.default_rng(seed)
        n, bg = int(r.integers(1, 30)), int(r.integers(0, 2))
        regular = bool(seed % 2)
        nc = int(r.integers(1, 6)) if regular else int(r.integers(1, 4))
        opts = dict(BASE, max_detections=int(r.integers(1, 10)),
                    max_classes_per_detection=int(r.integers(1, 5)),
                    detections_per_class=int(r.integers(1, 10)), use_regular_nms=regular,
                    nms_score_threshold=float(r.choice([0.0, -np.inf, 0.3])), num_classes=nc)
        b = r.standard_normal((1, n, 4)).astype(F32)
        b.reshape(-1)[r.integers(0, b.size, 3)] = r.choice(special[:3], 3)
        s = r.choice(special, (1, n, nc + bg)).astype(F32)
        check(opts, [b, s, anchors_random(r, n)])


def test_nan_score_with_simd_argmax_is_refused():
    """One class per detection over 4+ classes: LiteRT's SIMD argmax with a NaN gives an
    unspecified class (measured: a slot read past the row for [nan, .5, .7, .2])."""
    r = np.random.default_rng(0)
    s = np.array([[[np.nan, 0.5, 0.7, 0.2]]], F32)
    opts = dict(BASE, max_detections=1, num_classes=4)
    content = model(opts, np.zeros((1, 1, 4), F32), s, anchors_random(r, 1))
    with pytest.raises(InputError, match="NaN class score"):
        _run(Interpreter(model_content=content), [np.zeros((1, 1, 4), F32), s,
                                                  anchors_random(r, 1)])


def test_options_parsing():
    """Absent keys take LiteRT's defaults (detections_per_class 100, fast NMS); numbers of
    other FlexBuffer types convert as flexbuffers does (floats truncate, ints wrap)."""
    r = np.random.default_rng(5)
    n = 20
    xs = [r.standard_normal((1, n, 4)).astype(F32), r.random((1, n, 4)).astype(F32),
          anchors_random(r, n)]
    opts = dict(BASE)
    del opts["detections_per_class"], opts["use_regular_nms"]
    check(opts, xs)
    regular = dict(opts, use_regular_nms=1, max_detections=150)
    assert check(regular, xs)[3][0] > 20  # per class up to min(100, 150)
    check(dict(BASE, max_detections=5.9, num_classes=3.2, nms_iou_threshold=1,
               use_regular_nms=True), xs)
    check(dict(BASE, max_detections=2**32 + 4), xs)
    check(dict(BASE, use_regular_nms=False, max_classes_per_detection=True), xs)


def test_unused_slots_and_repeated_invokes():
    """Ours zero the slots LiteRT leaves unwritten, on every invoke."""
    r = np.random.default_rng(2)
    n = 10
    opts = dict(BASE, max_classes_per_detection=2, nms_score_threshold=0.5)
    content = model(opts, np.zeros((1, n, 4), F32), np.zeros((1, n, 4), F32),
                    np.zeros((n, 4), F32))
    it = Interpreter(model_content=content)
    a = anchors_random(r, n)
    hi = _run(it, [r.standard_normal((1, n, 4)).astype(F32), r.random((1, n, 4)).astype(F32), a])
    assert hi[3][0] > 0
    lo = _run(it, [r.standard_normal((1, n, 4)).astype(F32),
                   (r.random((1, n, 4)) * 0.4).astype(F32), a])
    assert lo[3][0] == 0 and not lo[0].any() and not lo[1].any() and not lo[2].any()
    for s in ((0.7, 0.9), (0.0, 0.4)):
        check(opts, [r.standard_normal((1, n, 4)).astype(F32),
                     r.uniform(*s, (1, n, 4)).astype(F32), a])


# -- refusals ----------------------------------------------------------------------------------
def _litert_outcome(content, xs, out):
    faulthandler.disable()  # a segfault is an expected outcome here: no traceback dump
    try:
        it = litert_interpreter(content)
        it.allocate_tensors()
    except Exception:  # noqa: BLE001 - any failure is the outcome we record
        out.put("allocate")
        return
    try:
        for d, x in zip(it.get_input_details(), xs):
            it.set_tensor(d["index"], x)
        it.invoke()
    except Exception:  # noqa: BLE001
        out.put("invoke")
        return
    out.put("ok")


def litert_outcome(content, xs) -> str:
    """'allocate', 'invoke', 'ok' or 'crash': LiteRT run in a child process (it segfaults on
    some malformed nodes of this op)."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    p = ctx.Process(target=_litert_outcome, args=(content, xs, out))
    p.start()
    p.join(60)
    return out.get() if p.exitcode == 0 else "crash"


def ours_outcome(content, xs) -> str:
    it = Interpreter(model_content=content)
    try:
        it.allocate_tensors()
    except ModelError:
        return "allocate"
    for d, x in zip(it.get_input_details(), xs):
        it.set_tensor(d["index"], x)
    try:
        it.invoke()
    except (ModelError, InputError):
        return "invoke"
    return "ok"


def _xs(n=8, nc=3, box_dt=F32, cls_dt=F32, anc_dt=F32, box_w=4, batch=1, anchors=None):
    r = np.random.default_rng(0)
    b = (r.random((batch, n, box_w)) * 0.3).astype(box_dt)
    s = r.random((batch, n, nc + 1)).astype(cls_dt)
    a = anchors_random(r, n).astype(anc_dt) if anchors is None else anchors
    return [b, s, a]


REFUSED = {
    # LiteRT refuses at prepare
    "two inputs": ("allocate", dict(n_in=2), {}),
    "four inputs": ("allocate", dict(n_in=4), {}),
    "three outputs": ("allocate", dict(n_out=3), {}),
    "anchors rank 3": ("allocate", {}, dict(anchors=np.zeros((8, 4, 1), F32))),
    "scores rank 2": ("allocate", {}, "scores rank 2"),
    # LiteRT fails the invoke
    "batch 2": ("invoke", {}, dict(batch=2)),
    "3 values per box": ("invoke", {}, dict(box_w=3)),
    "int8 encodings": ("invoke", {}, dict(box_dt=np.int8)),
    "int8 scores": ("invoke", {}, dict(cls_dt=np.int8)),
    "uint8 anchors for float encodings": ("invoke", {}, dict(anc_dt=U8)),
    "class width": ("invoke", dict(opts=dict(num_classes=1)), {}),
    "iou 0": ("invoke", dict(opts=dict(nms_iou_threshold=0.0)), {}),
    "iou above 1": ("invoke", dict(opts=dict(nms_iou_threshold=1.5)), {}),
    "no classes per detection": ("invoke", dict(opts=dict(max_classes_per_detection=0)), {}),
    "negative max_detections": ("invoke", dict(opts=dict(max_detections=-1)), {}),
    "regular, 0 per class": ("invoke", dict(opts=dict(use_regular_nms=True,
                                                      detections_per_class=0)), {}),
    "regular, 0 detections": ("invoke", dict(opts=dict(use_regular_nms=True,
                                                       max_detections=0)), {}),
    "ymin > ymax": ("invoke", {}, dict(anchors=np.tile(np.array([[.5, .5, -.1, .1]], F32),
                                                       (8, 1)))),
    # LiteRT crashes (segmentation fault): refused here
    "no custom options": ("crash", dict(raw=b""), {}),
    "fast NMS, 0 classes": ("crash", dict(opts=dict(num_classes=0)), "one score column"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refusals(name):
    where, mkw, xkw = REFUSED[name]
    mkw = dict(mkw)
    opts = dict(BASE, **mkw.pop("opts", {}))
    if xkw == "scores rank 2":
        xs = _xs()
        xs[1] = xs[1][0]
    elif xkw == "one score column":
        xs = _xs()
        xs[1] = xs[1][:, :, :1]
    else:
        xs = _xs(**xkw)
    content = model(opts, *xs, **mkw)
    assert litert_outcome(content, xs) == where
    expected = "allocate" if where in ("allocate", "crash") and name != "fast NMS, 0 classes" \
        else "invoke"
    assert ours_outcome(content, xs) == expected


def test_invalid_box_is_a_runtime_error():
    xs = _xs(anchors=np.tile(np.array([[.5, .5, -.1, .1]], F32), (8, 1)))
    with pytest.raises(InputError, match="min > max"):
        _run(Interpreter(model_content=model(BASE, *xs)), xs)


def test_more_refusals_of_ours():
    """Where LiteRT would read past the anchors, or the options are not a FlexBuffer map of
    numbers, ours refuse at allocate."""
    xs = _xs()
    for content in (model(BASE, xs[0], xs[1], np.zeros((3, 4), F32)),
                    model(BASE, *xs, raw=flexbuffers.Dumps([1, 2])),
                    model(dict(BASE, num_classes="3"), *xs),
                    model(BASE, *xs, out_dtype=np.int32),
                    # regular NMS without max_classes_per_detection: no slots to write
                    model({k: v for k, v in dict(BASE, use_regular_nms=True).items()
                           if k != "max_classes_per_detection"}, *xs)):
        with pytest.raises(ModelError):
            Interpreter(model_content=content).allocate_tensors()
