"""One comparable area figure per preset: Yosys generic logic cells, its RAM leaves kept as SRAM macros."""

import json

from ..harness.runner import verilog
from .yosys import synthesize

__all__ = ["ram_leaves", "preset_area"]

_RAM_PORTS = frozenset({"clk", "rst", "raddr", "ren", "rdata", "waddr", "wdata", "we"})


def ram_leaves(cfg):
    """{leaf module: (word bits, address bits)} of the preset's RAM leaves (``generators.ram.Ram``)."""
    leaves = json.loads(verilog(cfg).with_suffix(".json").read_text())["leaves"]
    return {name: (ports["rdata"][1], ports["raddr"][1]) for name, ports in leaves.items() if set(ports) == _RAM_PORTS}


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
