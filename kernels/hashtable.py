"""HASHTABLE, HASHTABLE_IMPORT, HASHTABLE_FIND, HASHTABLE_SIZE: LiteRT's static lookup tables
(TF's ``StaticHashTable``), int64 -> string or string -> int64 only. HASHTABLE outputs the
resource handle ``[table_id]`` (shape [1]) and creates the table on first run if no table has that
id; HASHTABLE_IMPORT fills it once (later imports are ignored, the first of duplicate keys
wins); HASHTABLE_FIND maps each key to its value, or to element 0 of the default tensor (output
shaped like the keys; an error before any import); HASHTABLE_SIZE gives the entry count as int64
[1]. Tables live in the interpreter, shared by all subgraphs and kept across invokes and
``reset_all_variables``, as LiteRT's resources."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench.ir.ops import Op, TensorType, type_name

from ._common import Kernel, mark_dynamic
from ._control_flow import handle_key
from .registry import register

_PAIRS = ((TensorType.INT64, TensorType.STRING), (TensorType.STRING, TensorType.INT64))


@dataclass
class LookupTable:
    """One table: its key/value TensorTypes, whether it was imported, and the entries."""

    key_type: int
    value_type: int
    initialized: bool = False
    entries: dict = field(default_factory=dict)


def _tables(runtime) -> dict[int, LookupTable]:
    tables = getattr(runtime, "tables", None)
    if tables is None:
        tables = runtime.tables = {}
    return tables


def _type(info) -> int:
    return int(info.tensor.dtype)


def _check_pair(node, key_type: int, value_type: int, what: str) -> None:
    if (key_type, value_type) not in _PAIRS:
        raise node.fail(f"{what} {type_name(key_type)} -> {type_name(value_type)}: LiteRT's "
                        "tables map INT64 -> STRING or STRING -> INT64 only")


def _check_counts(node, n_in: int, n_out: int) -> None:
    if len(node.inputs) != n_in or len(node.outputs) != n_out or any(
            t is None for t in [*node.inputs, *node.outputs]):
        raise node.fail(f"takes {n_in} inputs and {n_out} outputs, got {len(node.inputs)} "
                        f"and {len(node.outputs)}")


def _check_handle(node) -> None:
    h = node.inputs[0]
    if _type(h) != TensorType.RESOURCE:
        raise node.fail(f"input 0 must be a RESOURCE handle, got {h.tensor.type_name}")
    if tuple(h.shape) != (1,):
        raise node.fail(f"the resource handle must have shape [1], got {list(h.shape)}")


def _table(node, handle) -> tuple[int, LookupTable]:
    arr = np.asarray(handle).reshape(-1)
    if arr.size != 1:
        raise node.fail(f"resource handle has {arr.size} elements, expected 1")
    rid = int(arr[0])
    table = _tables(node.runtime).get(rid)
    if table is None:
        raise node.fail(f"no hash table has id {rid} (its HASHTABLE has not run)")
    return rid, table


def _check_table_types(node, rid: int, table: LookupTable, key_type: int,
                       value_type: int) -> None:
    if (key_type, value_type) != (table.key_type, table.value_type):
        raise node.fail(f"hash table {rid} maps {type_name(table.key_type)} -> "
                        f"{type_name(table.value_type)}, used with {type_name(key_type)} -> "
                        f"{type_name(value_type)}")


def _items(arr: np.ndarray) -> list:
    """Python keys/values of a table: ints for int64 tensors, bytes for strings."""
    return np.asarray(arr).reshape(-1).tolist()


@register(Op.HASHTABLE)
class Hashtable(Kernel):
    def prepare(self):
        node = self.node
        _check_counts(node, 0, 1)
        o = node.options
        _check_pair(node, int(o.key_dtype), int(o.value_dtype), "table")
        if _type(node.outputs[0]) != TensorType.RESOURCE:
            raise node.fail(f"output 0 must be a RESOURCE handle, got "
                            f"{node.outputs[0].tensor.type_name}")
        self.table_id = int(o.table_id)
        # LiteRT keeps tables and resource variables in one map by id and refuses (at invoke)
        # to make a table where a variable has the id: VAR_HANDLE ids are 0..n-1.
        keys = {handle_key(op.options) for sg in node.runtime.model.subgraphs
                for op in sg.operators if op.code == Op.VAR_HANDLE}
        self.clash = 0 <= self.table_id < len(keys)
        self.types = (int(o.key_dtype), int(o.value_dtype))
        self.value = np.array([self.table_id], np.int32)
        # LiteRT reallocates the handle in prepare, which makes it a dynamic tensor: the ops
        # reading it are prepared at invoke, so their prepare errors surface there (ours are
        # deferred the same way, see kernels/_common._deferring).
        mark_dynamic(node)
        return [(1,)]

    def eval(self, inputs):
        if self.clash:
            raise self.node.fail(f"table_id {self.table_id} is also the id of a resource "
                                 "variable (LiteRT keeps both in one map by id)")
        tables = _tables(self.node.runtime)
        if self.table_id not in tables:
            tables[self.table_id] = LookupTable(*self.types)
        return [self.value]


@register(Op.HASHTABLE_IMPORT)
class HashtableImport(Kernel):
    def prepare(self):
        node = self.node
        _check_counts(node, 3, 0)
        _check_handle(node)
        keys, values = node.inputs[1], node.inputs[2]
        _check_pair(node, _type(keys), _type(values), "keys -> values")
        if tuple(keys.shape) != tuple(values.shape):
            raise node.fail(f"keys {list(keys.shape)} and values {list(values.shape)} must have "
                            "the same shape")
        return []

    def eval(self, inputs):
        node = self.node
        rid, table = _table(node, inputs[0])
        keys, values = node.inputs[1], node.inputs[2]
        _check_table_types(node, rid, table, _type(keys), _type(values))
        if table.initialized:  # LiteRT imports once; later imports are no-ops
            return []
        entries = table.entries
        for k, v in zip(_items(inputs[1]), _items(inputs[2])):
            entries.setdefault(k, v)  # the first of duplicate keys wins
        table.initialized = True
        return []


@register(Op.HASHTABLE_FIND)
class HashtableFind(Kernel):
    def prepare(self):
        node = self.node
        _check_counts(node, 3, 1)
        _check_handle(node)
        keys, default, out = node.inputs[1], node.inputs[2], node.outputs[0]
        if _type(default) != _type(out):
            raise node.fail(f"default value type {default.tensor.type_name} differs from the "
                            f"output type {out.tensor.type_name}")
        _check_pair(node, _type(keys), _type(out), "keys -> output")
        self.value_type = _type(out)
        return [tuple(keys.shape)]

    def eval(self, inputs):
        node = self.node
        rid, table = _table(node, inputs[0])
        keys = node.inputs[1]
        _check_table_types(node, rid, table, _type(keys), self.value_type)
        if not table.initialized:
            raise node.fail(f"hash table {rid} is used before it is imported (LiteRT: hashtable "
                            "need to be initialized before using)")
        default = np.asarray(inputs[2]).reshape(-1)
        if default.size == 0:  # LiteRT reads element 0 regardless (out of bounds)
            raise node.fail("the default value tensor has no elements")
        dflt = default[0]
        if self.value_type == TensorType.STRING:
            entries = table.entries
            out = np.empty(np.shape(inputs[1]), dtype=object)
            flat = out.reshape(-1)
            for k, key in enumerate(_items(inputs[1])):
                flat[k] = entries.get(key, dflt)
            return [out]
        get = table.entries.get
        found = [get(key, dflt) for key in _items(inputs[1])]
        return [np.array(found, dtype=np.int64).reshape(np.shape(inputs[1]))]


@register(Op.HASHTABLE_SIZE)
class HashtableSize(Kernel):
    def prepare(self):
        node = self.node
        _check_counts(node, 1, 1)
        _check_handle(node)
        if _type(node.outputs[0]) != TensorType.INT64:
            raise node.fail(f"output must be INT64, got {node.outputs[0].tensor.type_name}")
        return [(1,)]

    def eval(self, inputs):
        _, table = _table(self.node, inputs[0])
        return [np.array([len(table.entries)], np.int64)]
