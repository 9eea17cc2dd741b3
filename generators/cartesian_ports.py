"""Payload layouts of the Cartesian-product PE (docs/cscnn.md): operand ops in, drained output rows out."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["KINDS", "op_layout", "act_vector_layout", "wgt_vector_layout", "result_layout", "array_op_layout",
           "array_result_layout"]

KINDS = {"act": 0, "wgt": 1, "bias": 2, "end": 3}


def _bits(count):
    """Width of an index below ``count`` (at least 1)."""
    return max(1, (count - 1).bit_length())


def act_vector_layout(cfg):
    """``py`` compressed activations: value, plane coordinates (x, y) and a valid flag each."""
    return data.StructLayout({
        "value": data.ArrayLayout(signed(8), cfg.py),
        "x": data.ArrayLayout(unsigned(_bits(cfg.tile_h)), cfg.py),
        "y": data.ArrayLayout(unsigned(_bits(cfg.tile_w)), cfg.py),
        "valid": data.ArrayLayout(unsigned(1), cfg.py),
    })


def wgt_vector_layout(cfg):
    """``px`` compressed weights: value, filter in the group, tap (r, s) and a valid flag each."""
    return data.StructLayout({
        "value": data.ArrayLayout(signed(8), cfg.px),
        "f": data.ArrayLayout(unsigned(_bits(cfg.filters)), cfg.px),
        "r": data.ArrayLayout(unsigned(_bits(cfg.r)), cfg.px),
        "s": data.ArrayLayout(unsigned(_bits(cfg.s)), cfg.px),
        "valid": data.ArrayLayout(unsigned(1), cfg.px),
    })


def op_layout(cfg):
    """One op of the ``op`` stream: ``kind`` (KINDS) selects which fields matter.

    ``act``: an activation vector, ``first`` starting a new input channel; ``wgt``: a weight
    vector, multiplied with every stored activation vector; ``bias``: ``bias`` of filter
    ``bias_f``; ``end``: drain the tile.
    """
    return data.StructLayout({
        "kind": unsigned(2),
        "first": unsigned(1),
        "act": act_vector_layout(cfg),
        "wgt": wgt_vector_layout(cfg),
        "bias_f": unsigned(_bits(cfg.filters)),
        "bias": signed(32),
    })


def result_layout(cfg):
    """One drained accumulator row: ``banks`` outputs (address row·banks + lane) and the tile's counters."""
    return data.StructLayout({
        "y": data.ArrayLayout(signed(32), cfg.banks),
        "mults": unsigned(32),
        "stalls": unsigned(32),
    })


def array_op_layout(cfg):
    """One word of a PE array's op stream: a PE ``op`` and the ``mask`` of PEs (bit k = PE k) that take it."""
    return data.StructLayout({"op": op_layout(cfg.pe), "mask": unsigned(cfg.n_pe)})


def array_result_layout(cfg):
    """One word of a PE array's output: drained row k of every PE (PE k's as ``pe<k>``), in lock step."""
    return data.StructLayout({f"pe{k}": result_layout(cfg.pe) for k in range(cfg.n_pe)})
