"""Packs numpy arrays into an Amaranth StructLayout's bit vectors and back (element 0 in the LSBs)."""

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack", "blank"]


def _fields(layout, prefix="", base=0):
    """(name, offset, element width, signed, element count or None) per field; nested arrays flatten,
    nested structs name their fields ``outer.inner``."""
    for name, field in layout:
        shape, length = field.shape, None
        if isinstance(shape, data.StructLayout):
            yield from _fields(shape, f"{prefix}{name}.", base + field.offset)
            continue
        while isinstance(shape, data.ArrayLayout):
            length = (length or 1) * shape.length
            shape = shape.elem_shape
        elem = Shape.cast(shape)
        yield prefix + name, base + field.offset, elem.width, elem.signed, length


def blank(layout, n):
    """Zeroed ``arrays`` for ``pack``: [n] per scalar field, [n, length] per array field."""
    return {name: np.zeros(n if length is None else (n, length), np.int64)
            for name, _offset, _width, _signed, length in _fields(layout)}


def pack(layout, arrays):
    """One Python int per row: ``arrays[name]`` is [n] for a scalar field, [n, length] for an array field.

    A nested array field takes its elements flattened row-major ([n, outer * inner]).
    """
    words = None
    for name, offset, width, _signed, length in _fields(layout):
        values = np.asarray(arrays[name]).astype(np.int64)
        columns = values[:, None] if length is None else values
        if words is None:
            words = np.zeros(columns.shape[0], dtype=object)
        for i in range(columns.shape[1]):
            words += (columns[:, i] & ((1 << width) - 1)).astype(object) << (offset + i * width)
    return [int(w) for w in words]


def unpack(layout, words):
    """The inverse of ``pack``: a dict of int64 arrays."""
    words = np.array([int(w) for w in words], dtype=object)
    out = {}
    for name, offset, width, signed, length in _fields(layout):
        columns = []
        for i in range(1 if length is None else length):
            raw = ((words >> (offset + i * width)) & ((1 << width) - 1)).astype(np.int64)
            if signed:
                raw = np.where(raw >= 1 << (width - 1), raw - (1 << width), raw)
            columns.append(raw)
        stacked = np.stack(columns, axis=1) if columns[0].size else np.zeros((0, len(columns)), np.int64)
        out[name] = stacked[:, 0] if length is None else stacked
    return out
