"""TFLite_Detection_PostProcess (custom op LiteRT runs by default; the end of the TF Object
Detection API's SSD models): decodes ``box_encodings`` ``[1, N, >=4]`` (``y, x, h, w`` relative
to ``anchors`` ``[N, 4]`` ``y, x, h, w``, scaled by ``y/x/h/w_scale``) into corners and runs
non-max suppression over ``class_predictions`` ``[1, N, num_classes (+1 background first)]``,
as LiteRT's kernel: box encodings float32 (anchors float32) or uint8 (anchors read as uint8
bytes, each input dequantized with its own scale and zero point), class predictions float32
or uint8 (dequantized as LiteRT's optimized DEQUANTIZE: blocks of 8 with two roundings).

Outputs (float32): ``detection_boxes [1, D, 4]`` (``ymin, xmin, ymax, xmax``),
``detection_classes [1, D]`` (without background), ``detection_scores [1, D]`` and
``num_detections [1]``, ``D = max_detections * max_classes_per_detection``. Options come from
the FlexBuffer map with LiteRT's defaults (``detections_per_class`` 100, ``use_regular_nms``
false, every other key 0). Boxes are decoded in double and rounded to float32, as LiteRT;
IoU is float32 (0 when a box has no area), a box suppresses another when IoU >
``nms_iou_threshold`` and candidates score >= ``nms_score_threshold``, sorted stably (ties by
anchor). Fast NMS (default): one NMS over each anchor's best class score, then each selected
anchor gets its ``max_classes_per_detection`` best classes (libstdc++'s ``partial_sort`` order on
ties; a NaN class score with one class per detection and 4+ classes is refused, LiteRT's SIMD
argmax being unspecified there); ``num_detections`` counts anchors, and the slots LiteRT leaves
unwritten (uninitialized memory there) are 0 here. Regular NMS: one NMS per class keeping
``min(detections_per_class, max_detections)``, then the best ``max_detections`` over classes
(stable merge, earlier classes first on ties), the rest zero-filled (slots past
``max_detections`` are left unwritten by LiteRT, 0 here). Batch 1 only; LiteRT's checks at
invoke (batch, encoding width, class count, IoU threshold in (0, 1], decoded boxes with ymin <=
ymax and xmin <= xmax) fail the invoke here too."""

from __future__ import annotations

import math

import numpy as np

from ._common import Kernel, check_allocation
from ._elementwise import runtime_error
from ._flex import custom_map, flex_bool, flex_float32, flex_int32
from ._heap import partial_sort
from .dequantize import dequantize_per_tensor, legacy_params
from .registry import register_litert_custom

F32 = np.float32
F64 = np.float64
U8 = np.uint8
_INT32_MAX = 2**31 - 1

#: Option key -> kind, default when absent (LiteRT's Init: flexbuffers' 0 for a missing key,
#: except the two keys it tests with IsNull). Present values convert as flexbuffers does
#: (``_flex``: ints keep their low 32 bits, floats truncate toward zero).
_OPTIONS = {
    "max_detections": ("int", 0),
    "max_classes_per_detection": ("int", 0),
    "detections_per_class": ("int", 100),
    "use_regular_nms": ("bool", False),
    "nms_score_threshold": ("float", 0.0),
    "nms_iou_threshold": ("float", 0.0),
    "num_classes": ("int", 0),
    "y_scale": ("float", 0.0),
    "x_scale": ("float", 0.0),
    "h_scale": ("float", 0.0),
    "w_scale": ("float", 0.0),
}


def _dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """``(float(q) - zero_point) * scale`` in float32 (exact difference, one rounding), as
    LiteRT dequantizes box encodings and anchors."""
    return (q.astype(F32) - F32(zero_point)) * F32(scale)


def _cmax(a, b):
    """``std::max(a, b)``: ``a < b ? b : a`` (NaN-order sensitive)."""
    return np.where(a < b, b, a)


def _cmin(a, b):
    """``std::min(a, b)``: ``b < a ? b : a``."""
    return np.where(b < a, b, a)


def _iou(boxes: np.ndarray, area: np.ndarray, i: int, js: np.ndarray) -> np.ndarray:
    """float32 IoU of box ``i`` with boxes ``js`` in LiteRT's operation order."""
    bi, bj = boxes[i], boxes[js]
    ymin = _cmax(bi[0], bj[:, 0])
    xmin = _cmax(bi[1], bj[:, 1])
    ymax = _cmin(bi[2], bj[:, 2])
    xmax = _cmin(bi[3], bj[:, 3])
    zero = F32(0)
    inter = _cmax(ymax - ymin, zero) * _cmax(xmax - xmin, zero)
    iou = inter / ((area[i] + area[js]) - inter)
    return np.where((area[i] <= 0) | (area[js] <= 0), zero, iou).astype(F32, copy=False)


def _nms(boxes, area, scores: np.ndarray, max_out: int, score_thr, iou_thr) -> list[int]:
    """Anchors selected by greedy NMS over one score per anchor, best first."""
    keep = np.flatnonzero(scores >= score_thr)
    order = keep[np.argsort(-scores[keep], kind="stable")]  # ties keep anchor order
    active = np.ones(order.size, bool)
    selected: list[int] = []
    n_out = min(order.size, max_out)
    n_active = order.size
    for i in range(order.size):
        if n_active == 0 or len(selected) >= n_out:
            break
        if not active[i]:
            continue
        selected.append(int(order[i]))
        active[i] = False
        n_active -= 1
        rest = i + 1 + np.flatnonzero(active[i + 1:])
        if rest.size:
            drop = rest[_iou(boxes, area, order[i], order[rest]) > iou_thr]
            active[drop] = False
            n_active -= drop.size
    return selected


def _argmax(v: np.ndarray) -> int:
    """LiteRT's ArgMaxVector on fewer than 4 values (its scalar loop): the first largest value,
    a NaN never winning (measured: ``[nan, 0.5]`` gives 1, ``[0.5, nan]`` 0); all NaN gives 0.
    On 4 or more values with a NaN its SIMD loop gives layout-dependent answers, sometimes an
    index past the row (the caller refuses those)."""
    ok = ~np.isnan(v)
    if ok.all():
        return int(np.argmax(v))
    if not ok.any():
        return 0
    return int(np.flatnonzero(ok)[np.argmax(v[ok])])


def _top_classes(v: np.ndarray, k: int) -> list[int]:
    """The first ``k`` class indices of LiteRT's DecreasingPartialArgSort of one anchor."""
    if k == 1:
        return [_argmax(v)]
    order = np.argsort(-v, kind="stable")
    head = v[order[:k + 1]]
    if not np.isnan(v).any() and (head.size <= 1 or np.all(head[:-1] > head[1:])):
        return order[:k].tolist()  # no ties around the top k: the order is unique
    vals = v.tolist()
    idx = list(range(v.size))
    partial_sort(idx, k, lambda i, j: vals[i] > vals[j])
    return idx[:k]


@register_litert_custom("TFLite_Detection_PostProcess")
class DetectionPostProcess(Kernel):
    def prepare(self):
        node = self.node
        found = custom_map(node)
        read = {"int": flex_int32, "bool": flex_bool, "float": flex_float32}
        opts = {k: default if found.get(k) is None else read[kind](node, found, k)
                for k, (kind, default) in _OPTIONS.items()}
        self.opts = opts
        if len(node.inputs) != 3 or any(t is None for t in node.inputs):
            raise node.fail("takes 3 inputs: box_encodings, class_predictions, anchors")
        boxes, classes, anchors = node.inputs
        for t, rank, what in ((boxes, 3, "box_encodings"), (classes, 3, "class_predictions"),
                              (anchors, 2, "anchors")):
            if len(t.shape) != rank:
                raise node.fail(f"{what} must have rank {rank}, got shape {list(t.shape)}")
        if len(node.outputs) != 4:
            raise node.fail("has 4 outputs: boxes, classes, scores, num_detections")
        for k, o in enumerate(node.outputs):
            if o is None:
                raise node.fail(f"output {k} is omitted")
            if o.dtype != F32:
                raise node.fail(f"output {k} must be float32 (LiteRT makes it so), not "
                                f"{o.dtype}")
        md, mc = opts["max_detections"], opts["max_classes_per_detection"]
        # LiteRT ignores the failed resize of a negative size and fails the invoke.
        self.error = None
        if md < 0 or mc < 0:
            self.error = (f"max_detections ({md}) and max_classes_per_detection ({mc}) must "
                          "not be negative")
            d = 0
        else:
            d = md * mc
            if d > _INT32_MAX:
                raise node.fail(f"max_detections * max_classes_per_detection = {d} overflows "
                                "int32")
        if opts["use_regular_nms"] and md > 0 and mc == 0:
            # Regular NMS writes max_detections slots of max_detections * 0: LiteRT writes
            # past its outputs (a fuzzed option name left the default 0).
            raise node.fail("regular NMS with max_classes_per_detection 0 has no output slots "
                            f"for its {md} detections")
        shapes = [(1, d, 4), (1, d), (1, d), (1,)]
        check_allocation(node, shapes, runtime=False)
        # LiteRT reads the anchors as a flat array of 4 floats per box (4 bytes per box with
        # uint8 encodings) without checking its size: refuse what would read past its end.
        n = boxes.shape[1]
        if boxes.dtype == U8 and anchors.dtype is not None:
            have = math.prod(anchors.shape) * np.dtype(anchors.dtype).itemsize
        elif boxes.dtype == F32 and anchors.dtype == F32:
            have = math.prod(anchors.shape)
        else:
            have = None  # LiteRT fails the invoke on these types
        if have is not None and boxes.shape[0] == 1 and len(boxes.shape) == 3 and have < 4 * n:
            raise node.fail(f"anchors of shape {list(anchors.shape)} ({anchors.dtype}) hold "
                            f"fewer than the {n} x 4 values that {n} boxes read")
        return shapes

    def _check(self, boxes, classes, anchors) -> None:
        """LiteRT's checks at invoke that depend on the model alone."""
        node, o = self.node, self.opts
        if self.error:
            raise node.fail(self.error)
        if boxes.shape[0] != 1:
            raise node.fail(f"box_encodings batch must be 1, got {boxes.shape[0]}")
        if boxes.shape[2] < 4:
            raise node.fail(f"box_encodings must hold 4 values per box, got {boxes.shape[2]}")
        if boxes.shape[1] > 0:  # LiteRT tests the types in its per-box loop
            if boxes.dtype not in (F32, U8):
                raise node.fail(f"box_encodings must be float32 or uint8, not {boxes.dtype}")
            if boxes.dtype == F32 and anchors.dtype != F32:
                raise node.fail(f"anchors must be float32 with float32 box encodings, not "
                                f"{anchors.dtype}")
        if classes.shape[0] != 1 or classes.shape[1] != boxes.shape[1]:
            raise node.fail(f"class_predictions must be [1, {boxes.shape[1]}, classes], got "
                            f"{list(classes.shape)}")
        nc, width = o["num_classes"], classes.shape[2]
        if not nc <= width <= nc + 1:
            raise node.fail(f"class_predictions has {width} scores per box: num_classes "
                            f"({nc}) or num_classes + 1 expected")
        if classes.dtype not in (F32, U8):
            raise node.fail(f"class_predictions must be float32 or uint8, not {classes.dtype}")
        if o["use_regular_nms"]:
            if min(o["detections_per_class"], o["max_detections"]) <= 0:
                raise node.fail("regular NMS needs detections_per_class and max_detections > 0")
            if nc <= 0:
                return
        else:
            if o["max_classes_per_detection"] <= 0:
                raise node.fail("max_classes_per_detection must be positive")
            if nc <= 0:  # LiteRT reads an empty class ranking: it crashes
                raise node.fail(f"num_classes must be positive, got {nc}")
        iou = o["nms_iou_threshold"]
        if not (iou > 0 and iou <= 1):
            raise node.fail(f"nms_iou_threshold {iou} must be in (0, 1]")

    def _decode(self, enc: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        """Corner boxes [N, 4] (float32) as LiteRT decodes them."""
        node, o = self.node, self.opts
        n = enc.shape[1]
        if enc.dtype == U8:
            s, z = legacy_params(node.inputs[0].tensor)
            e = _dequantize(enc[0, :, :4], s, z)
            s, z = legacy_params(node.inputs[2].tensor)
            flat = np.ascontiguousarray(anchors).reshape(-1).view(U8)[:4 * n]
            a = _dequantize(flat.reshape(n, 4), s, z)
        else:
            e = enc[0, :, :4]
            a = np.ascontiguousarray(anchors).reshape(-1)[:4 * n].reshape(n, 4)
        e, a = e.astype(F64), a.astype(F64)
        ys, xs, hs, ws = (F64(o[k]) for k in ("y_scale", "x_scale", "h_scale", "w_scale"))
        yc = (e[:, 0] / ys * a[:, 2] + a[:, 0]).astype(F32)
        xc = (e[:, 1] / xs * a[:, 3] + a[:, 1]).astype(F32)
        hh = (0.5 * np.exp(e[:, 2] / hs) * a[:, 2]).astype(F32)
        hw = (0.5 * np.exp(e[:, 3] / ws) * a[:, 3]).astype(F32)
        return np.stack([yc - hh, xc - hw, yc + hh, xc + hw], axis=1)

    def eval(self, inputs):
        enc, cls, anchors = inputs
        self._check(enc, cls, anchors)
        node, o = self.node, self.opts
        boxes = self._decode(enc, anchors)
        if cls.dtype == U8:
            s, z = legacy_params(node.inputs[1].tensor)
            scores = dequantize_per_tensor(cls[0], s, z)
        else:
            scores = np.asarray(cls[0], F32)
        nc = o["num_classes"]
        offset = scores.shape[1] - nc
        scores = scores[:, offset:]  # [N, num_classes] without background
        md, mc = o["max_detections"], o["max_classes_per_detection"]
        d = md * mc
        out_boxes = np.zeros((1, d, 4), F32)
        out_cls = np.zeros((1, d), F32)
        out_scores = np.zeros((1, d), F32)
        if o["use_regular_nms"] and nc <= 0:
            return [out_boxes, out_cls, out_scores, np.zeros(1, F32)]
        with np.errstate(all="ignore"):
            bad = (boxes[:, 0] > boxes[:, 2]) | (boxes[:, 1] > boxes[:, 3])
            if bad.any():
                k = int(np.flatnonzero(bad)[0])
                raise runtime_error(node, f"decoded box {k} {boxes[k].tolist()} has min > max "
                                    "(LiteRT fails the invoke)")
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            thr, iou = o["nms_score_threshold"], o["nms_iou_threshold"]
            if o["use_regular_nms"]:
                per_class = min(o["detections_per_class"], md)
                found = []  # (score, class-major order, anchor, class)
                for c in range(nc):
                    col = np.ascontiguousarray(scores[:, c])
                    for a in _nms(boxes, area, col, per_class, thr, iou):
                        found.append((col[a], a, c))
                # Stable merges of each class's (sorted) picks into the running best list.
                order = sorted(range(len(found)), key=lambda t: -found[t][0])[:md]
                for slot, t in enumerate(order):
                    score, a, c = found[t]
                    out_boxes[0, slot] = boxes[a]
                    out_cls[0, slot] = c
                    out_scores[0, slot] = score
                return [out_boxes, out_cls, out_scores, np.array([len(order)], F32)]
            k = min(mc, nc)
            nan_rows = np.isnan(scores).any(axis=1)
            if k == 1 and nc >= 4 and nan_rows.any():
                raise runtime_error(node, f"anchor {int(np.flatnonzero(nan_rows)[0])} has a NaN "
                                    "class score: LiteRT's SIMD argmax over 4 or more classes "
                                    "then gives an unspecified class (at times reading past "
                                    "the scores)")
            best = np.max(scores, axis=1) if scores.shape[0] else np.zeros(0, F32)
            for r in np.flatnonzero(nan_rows):
                best[r] = scores[r, _top_classes(scores[r], k)[0]]
            selected = _nms(boxes, area, best, md, thr, iou)
            for n_sel, a in enumerate(selected):
                top = _top_classes(scores[a], k)
                slots = slice(mc * n_sel, mc * n_sel + k)
                out_boxes[0, slots] = boxes[a]
                out_cls[0, slots] = top
                out_scores[0, slots] = scores[a, top]
        return [out_boxes, out_cls, out_scores, np.array([len(selected)], F32)]

