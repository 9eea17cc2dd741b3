"""Yosys area of the MoR engine: the binCUs' share of the logic and the binary RAMs' share of the bits."""

from amaranth.hdl import Shape

from generators.mor_engine import ram_specs

from .area import preset_area

__all__ = ["engine_area"]


def engine_area(cfg):
    """Generic Yosys cells of the engine with its RAMs as black boxes, the binCUs' share of the logic,
    and the RAM bits with the binary memories' share (the paper's 5.3% counts both, in silicon area)."""
    rams = ram_specs(cfg)
    area = preset_area(cfg)
    bits = {kind: n * depth * Shape.cast(shape).width for kind, (shape, depth, n) in rams.items()}
    binary_bits = bits["bin_weights"] + bits["bin_inputs"] + bits["table"] * cfg.n_bincu // rams["table"][2]
    logic = area["logic_cells"]
    bincu = cfg.n_bincu * area["cells_per_module"][f"{cfg.module}_bincu"]
    return {"logic_cells": logic, "bincu_cells": bincu, "bincu_logic_fraction": bincu / logic,
            "ram_bits": bits, "binary_ram_fraction": binary_bits / sum(bits.values()),
            "cells_per_module": area["cells_per_module"]}
