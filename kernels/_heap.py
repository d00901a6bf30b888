"""libstdc++'s binary-heap algorithms (``std::push_heap``, ``std::pop_heap``,
``std::partial_sort`` and the ``__adjust_heap`` they share), on a Python list with a ``less``
comparison, so that elements of equal keys come out in the order LiteRT's C++ gives them
(NON_MAX_SUPPRESSION's ``std::priority_queue``, TFLite_Detection_PostProcess's
``std::partial_sort``)."""

from __future__ import annotations

from typing import Callable

Less = Callable[[object, object], bool]


def sift_up(a: list, hole: int, top: int, value, less: Less) -> None:
    """``std::__push_heap``: move ``value`` up from ``hole`` towards ``top``."""
    parent = (hole - 1) // 2
    while hole > top and less(a[parent], value):
        a[hole] = a[parent]
        hole = parent
        parent = (hole - 1) // 2
    a[hole] = value


def adjust_heap(a: list, hole: int, n: int, value, less: Less) -> None:
    """``std::__adjust_heap`` over ``a[:n]``: the larger child fills the hole down to a leaf,
    then ``value`` sifts up from there."""
    top = hole
    child = hole
    while child < (n - 1) // 2:
        child = 2 * (child + 1)
        if less(a[child], a[child - 1]):
            child -= 1
        a[hole] = a[child]
        hole = child
    if n % 2 == 0 and child == (n - 2) // 2:
        child = 2 * (child + 1)
        a[hole] = a[child - 1]
        hole = child - 1
    sift_up(a, hole, top, value, less)


def pop_heap(a: list, last: int, result: int, less: Less) -> None:
    """``std::__pop_heap``: the top of the heap ``a[:last]`` goes to ``a[result]``."""
    value = a[result]
    a[result] = a[0]
    adjust_heap(a, 0, last, value, less)


def partial_sort(a: list, k: int, less: Less) -> None:
    """``std::partial_sort(a, a + k, a + len(a), less)``."""
    if k >= 2:
        parent = (k - 2) // 2
        while True:
            adjust_heap(a, parent, k, a[parent], less)
            if parent == 0:
                break
            parent -= 1
    for i in range(k, len(a)):
        if less(a[i], a[0]):
            pop_heap(a, k, i, less)
    for last in range(k - 1, 0, -1):
        pop_heap(a, last, last, less)
