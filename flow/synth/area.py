"""One comparable area figure per preset: Yosys generic logic cells, its RAM leaves kept as SRAM macros."""

import json
import re
from collections import Counter

from ..harness.runner import verilog
from .yosys import synthesize

__all__ = ["ram_leaves", "verilog_modules", "leaf_instances", "preset_area"]

_RAM_PORTS = frozenset({"clk", "rst", "raddr", "ren", "rdata", "waddr", "wdata", "we"})
_MODULE = re.compile(r"^module (\S+)\(.*?^endmodule\n", re.S | re.M)
_INSTANCE = re.compile(r"^  (\S+) \S+ \($", re.M)


def ram_leaves(cfg):
    """{leaf module: (word bits, address bits)} of the preset's RAM leaves (``generators.ram.Ram``)."""
    leaves = json.loads(verilog(cfg).with_suffix(".json").read_text())["leaves"]
    return {name: (ports["rdata"][1], ports["raddr"][1]) for name, ports in leaves.items() if set(ports) == _RAM_PORTS}


def verilog_modules(text):
    """{module: its Verilog text} of an emitted design, in the design's order."""
    return {m.group(1): m.group(0) for m in _MODULE.finditer(text)}


def leaf_instances(cfg):
    """{RAM leaf: its instances in the whole design}, counted through the hierarchy of ``cfg``'s Verilog."""
    modules, leaves = verilog_modules(verilog(cfg).read_text()), ram_leaves(cfg)
    counts = {}

    def count(module):
        if module not in counts:
            total = Counter()
            for kind in _INSTANCE.findall(modules[module]):
                if kind in leaves:
                    total[kind] += 1
                elif kind in modules:
                    total.update(count(kind))
            counts[module] = total
        return counts[module]

    return {leaf: count(cfg.module)[leaf] for leaf in leaves}


def preset_area(cfg, *, force=False):
    """Yosys ``synth`` of ``cfg``'s module (hierarchy kept, cached by its Verilog) with the RAM leaves as black boxes.

    Returns ``logic_cells`` (generic cells without the RAMs), ``ram_instances`` per leaf,
    ``ram_bits`` (the RAMs' addressable bits), ``cells_per_module``, ``generic_by_type`` and ``yosys_seconds`` (the
    synthesis' wall time when it ran; None for a result cached before it was recorded).
    """
    rams = ram_leaves(cfg)
    result = synthesize(cfg, ecp5=False, pnr=False, blackbox=sorted(rams), force=force)
    instances = {leaf: result["generic_by_type"].get(leaf, 0) for leaf in rams}
    return {"module": result["module"], "logic_cells": result["generic_cells"] - sum(instances.values()),
            "ram_instances": instances,
            "ram_bits": sum(n * (rams[leaf][0] << rams[leaf][1]) for leaf, n in instances.items()),
            "cells_per_module": result["cells_per_module"], "generic_by_type": result["generic_by_type"],
            "yosys_seconds": result.get("yosys_seconds")}
