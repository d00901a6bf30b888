"""NON_MAX_SUPPRESSION_V4 / _V5 (float32): greedy (soft-)NMS over ``boxes`` ``[N, 4]`` (corners
``y1, x1, y2, x2`` in any order) and ``scores`` ``[N]``, as LiteRT's reference kernel.

Inputs: boxes, scores, max_output_size (int32 scalar), iou_threshold, score_threshold and, for
V5, soft_nms_sigma. Outputs: the selected indices ``[max_output_size]`` (padded with 0), for V5
their scores (padded with 0), and the number selected (int32 scalar).

Candidates are the boxes scoring strictly above ``score_threshold``, taken highest score first
from a binary max-heap that reproduces ``std::priority_queue`` (libstdc++'s push/pop), so equal
scores come out in LiteRT's order. A candidate is dropped when its IoU with a box selected since
it was last examined is ``>= iou_threshold``; with ``sigma > 0`` each such comparison first
multiplies its score by ``exp(-0.5 / sigma * iou^2)`` (float32), and a candidate goes back into
the heap while it scores above the threshold (a selected one too, as in LiteRT). IoU is
computed in float32 in LiteRT's operation order (0 when either box has no area). int8/int16
(quantized) NMS is not supported yet."""

from __future__ import annotations

import numpy as np

from workbench.errors import UnsupportedOpError
from workbench.ir.ops import Op

from ._common import Kernel
from ._elementwise import runtime_error
from ._heap import adjust_heap, sift_up
from ._shape import mark_dynamic
from .registry import register

F32 = np.float32


def _iou(boxes: np.ndarray, i: int, js: np.ndarray) -> np.ndarray:
    """float32 IoU of box ``i`` with boxes ``js``, each operation rounded as in float32 C++."""
    b = boxes
    ymin, ymax = np.minimum(b[:, 0], b[:, 2]), np.maximum(b[:, 0], b[:, 2])
    xmin, xmax = np.minimum(b[:, 1], b[:, 3]), np.maximum(b[:, 1], b[:, 3])
    area = (ymax - ymin) * (xmax - xmin)
    iy = np.maximum(np.minimum(ymax[i], ymax[js]) - np.maximum(ymin[i], ymin[js]), F32(0))
    ix = np.maximum(np.minimum(xmax[i], xmax[js]) - np.maximum(xmin[i], xmin[js]), F32(0))
    inter = iy * ix
    union = (area[i] + area[js]) - inter
    with np.errstate(all="ignore"):
        iou = np.where(union == 0, F32(0), inter / np.where(union == 0, F32(1), union))
    return np.where((area[i] <= 0) | (area[js] <= 0), F32(0), iou).astype(F32)


def _by_score(a, b) -> bool:
    return a[0] < b[0]


class _MaxHeap:
    """``std::priority_queue`` over (score, index, suppress_begin) ordered by score, with
    libstdc++'s sift rules, so ties pop in the same order as in LiteRT."""

    def __init__(self):
        self.c: list = []

    def push(self, item) -> None:
        c = self.c
        c.append(item)
        sift_up(c, len(c) - 1, 0, item, _by_score)

    def pop(self):
        c = self.c
        top = c[0]
        value = c.pop()  # std::pop_heap moves the last element into the hole, then pop_back
        if c:
            adjust_heap(c, 0, len(c), value, _by_score)
        return top

    def __len__(self) -> int:
        return len(self.c)


def non_max_suppression(boxes: np.ndarray, scores: np.ndarray, max_out: int,
                        iou_thr: np.float32, score_thr: np.float32, sigma: np.float32
                        ) -> tuple[list[int], list[np.float32]]:
    """(selected indices, their scores) as LiteRT's float reference kernel selects them.

    Parameters
    ----------
    boxes, scores
        float32 ``[N, 4]`` corners and ``[N]`` scores.
    max_out
        The most boxes to select.
    iou_thr, score_thr, sigma
        float32 thresholds and the soft-NMS sigma (0: hard NMS).
    """
    heap = _MaxHeap()
    for i in np.flatnonzero(scores > score_thr):
        heap.push((scores[i], int(i), 0))
    n_out = min(len(heap), max_out)
    scale = F32(-0.5) / sigma if sigma > 0 else F32(0)
    sel: list[int] = []
    sel_scores: list = []
    while len(sel) < n_out and len(heap):
        score, i, begin = heap.pop()
        original = score
        hard = False
        if begin < len(sel):
            ious = _iou(boxes, i, np.array(sel[begin:][::-1], np.int64))  # newest first
            if sigma > 0:
                for iou in ious:
                    if iou >= iou_thr:
                        hard = True
                        break
                    score = F32(score * np.exp(F32(scale * iou * iou)))
                    if score <= score_thr:
                        break
            else:
                hard = bool(np.any(ious >= iou_thr))
        if hard:
            continue
        begin = len(sel)
        if score == original:
            sel.append(i)
            sel_scores.append(score)
        # As LiteRT (unlike TensorFlow, which stops here after a selection), the candidate goes
        # back into the heap while it scores above the threshold, selected or not; popped
        # again it meets itself among the selected boxes (IoU 1, unless it has no area).
        if score > score_thr:
            heap.push((score, i, begin))
    return sel, sel_scores


@register(Op.NON_MAX_SUPPRESSION_V4, Op.NON_MAX_SUPPRESSION_V5)
class NonMaxSuppression(Kernel):
    def prepare(self):
        node = self.node
        self.soft = node.op.name == "NON_MAX_SUPPRESSION_V5"
        n_in, n_out = (6, 3) if self.soft else (5, 2)
        if len(node.inputs) != n_in or any(t is None for t in node.inputs):
            raise node.fail(f"takes {n_in} inputs")
        if len(node.outputs) != n_out:
            raise node.fail(f"has {n_out} outputs")
        boxes, scores, max_out = node.inputs[:3]
        if boxes.dtype in (np.int8, np.int16):
            raise UnsupportedOpError(node.op.name, node.path,
                                     f"{boxes.dtype} quantized NMS is not supported yet")
        floats = [boxes, scores, *node.inputs[3:]]
        if any(t.dtype != F32 for t in floats):
            raise node.fail("boxes, scores, thresholds and sigma must be float32")
        if len(boxes.shape) != 2 or boxes.shape[1] != 4:
            raise node.fail(f"boxes must be [num_boxes, 4], got {list(boxes.shape)}")
        if tuple(scores.shape) != (boxes.shape[0],):
            raise node.fail(f"scores must be [{boxes.shape[0]}], got {list(scores.shape)}")
        if max_out.dtype != np.int32 or len(max_out.shape) != 0:
            raise node.fail("max_output_size must be an int32 scalar")
        if any(len(t.shape) != 0 for t in node.inputs[3:]):
            raise node.fail("thresholds and sigma must be scalars")
        for o in node.outputs:
            if o is None:
                raise node.fail("every output is needed")
        if node.outputs[0].dtype != np.int32 or node.outputs[-1].dtype != np.int32 or \
                (self.soft and node.outputs[1].dtype != F32):
            raise node.fail("outputs must be int32 indices, (float32 scores,) int32 count")
        self.max_out = None
        if max_out.data is not None:
            self.max_out = self._max_out(max_out.data)
            n = (self.max_out,)
        else:
            mark_dynamic(node)
            n = tuple(node.outputs[0].shape)
        return [n, n, ()] if self.soft else [n, ()]

    def _max_out(self, value) -> int:
        m = int(np.asarray(value).reshape(()))
        if m < 0:
            raise self.node.fail(f"max_output_size {m} is negative")
        return m

    def eval(self, inputs):
        boxes, scores, max_out, iou_thr, score_thr = inputs[:5]
        m = self.max_out if self.max_out is not None else self._max_out(max_out)
        sigma = F32(np.asarray(inputs[5]).reshape(())) if self.soft else F32(0)
        if sigma < 0:
            raise runtime_error(self.node, f"soft_nms_sigma {sigma} is negative")
        sel, sel_scores = non_max_suppression(
            np.asarray(boxes, F32), np.asarray(scores, F32), m,
            F32(np.asarray(iou_thr).reshape(())), F32(np.asarray(score_thr).reshape(())), sigma)
        idx = np.zeros(m, np.int32)
        idx[:len(sel)] = sel
        count = np.array(len(sel), np.int32)
        if not self.soft:
            return [idx, count]
        sc = np.zeros(m, F32)
        sc[:len(sel)] = sel_scores
        return [idx, sc, count]
