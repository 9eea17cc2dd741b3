"""ASIC timing (flow.synth.timing): OSU 0.18 µm timing netlists with SRAM macros, timed by the real OpenSTA."""

import re

import pytest

from flow.harness.runner import REPO, verilog
from flow.synth.area import ram_leaves
from flow.synth.liberty import osu018
from flow.synth.sram import sram_macro
from flow.synth.timing import DELAY_SCALE, MAX_FANOUT, asic_timing, buffer_fanout, parse_report
from generators.config import CATALOG

# OpenSTA's report_checks, cut to what the parser reads: one whole-period path, one clock gate's half-period check.
REPORT = """\
Startpoint: pe_3_3.acc_0_0[1]_reg
            (rising edge-triggered flip-flop clocked by clk)
Endpoint: y__payload[127]_reg (rising edge-triggered flip-flop clocked by clk)
Path Group: clk
Path Type: max

   Delay     Time   Description
-----------------------------------------------------------
   0.000    0.000   clock clk (rise edge)
   0.000    0.000   clock network delay (ideal)
   0.000    0.000 ^ pe_3_3.acc_0_0[1]_reg/CLK (DFFPOSX1)
   0.216    0.216 v pe_3_3.acc_0_0[1]_reg/Q (DFFPOSX1)
   0.185    0.400 ^ _16674_/Y (XNOR2X1)
   4.339    4.739 ^ _22978_/Y (NAND2X1)
   0.000    4.739 ^ y__payload[127]_reg/D (DFFPOSX1)
            4.739   data arrival time

   5.000    5.000   clock clk (rise edge)
   0.000    5.000   clock network delay (ideal)
            5.000 ^ y__payload[127]_reg/CLK (DFFPOSX1)
  -0.148    4.852   library setup time
            4.852   data required time
-----------------------------------------------------------
            0.113   slack (MET)


Startpoint: pe_3_2.acc_0_0_clock_enable_reg
            (falling edge-triggered flip-flop clocked by clk)
Endpoint: _16335_ (rising clock gating-check end-point clocked by clk)
Path Group: **clock_gating_default**
Path Type: max

   Delay     Time   Description
-----------------------------------------------------------
   2.500    2.500   clock clk (fall edge)
   0.000    2.500   clock network delay (ideal)
   0.000    2.500 v pe_3_2.acc_0_0_clock_enable_reg/CLK (DFFNEGX1)
   0.129    2.629 ^ pe_3_2.acc_0_0_clock_enable_reg/Q (DFFNEGX1)
   0.000    2.629 ^ _16335_/B (AND2X2)
            2.629   data arrival time

   5.000    5.000   clock clk (rise edge)
            5.000   data required time
-----------------------------------------------------------
            2.371   slack (MET)
"""


def test_each_reported_path_gives_the_period_it_allows():
    """Whole-period path: 5 ns − 0.113 ns slack = 4.887 ns. The gate's enable, launched on the falling edge, has half
    the period: it needs 2.5 − 2.371 = 0.129 ns of a half period, so a 0.258 ns clock."""
    worst, gate = parse_report(REPORT)
    assert (worst["from"], worst["to"], worst["group"]) == ("pe_3_3.acc_0_0[1]", "y__payload[127]", "clk")
    assert worst["period_ns"] == pytest.approx(4.887) and worst["slack_ns"] == pytest.approx(0.113)
    assert worst["cells"] == ["XNOR2X1", "NAND2X1"]
    assert gate["period_ns"] == pytest.approx(0.258) and gate["from"] == "pe_3_2.acc_0_0_clock_enable"
    assert parse_report("No paths found.\n") == []


def _netlist(loads):
    """Yosys JSON: flip-flop q_reg (bit 2) drives ``loads`` NAND2X1 A inputs; input port a (bit 3) drives their B."""
    cells = {"q_reg": {"type": "DFFPOSX1", "port_directions": {"CLK": "input", "D": "input", "Q": "output"},
                       "connections": {"CLK": [4], "D": [3], "Q": [2]}}}
    for i in range(loads):
        cells[f"g{i}"] = {"type": "NAND2X1", "port_directions": {"A": "input", "B": "input", "Y": "output"},
                          "connections": {"A": [2], "B": [3], "Y": [10 + i]}}
    return {"modules": {"top": {"ports": {"a": {"direction": "input", "bits": [3]},
                                          "clk": {"direction": "input", "bits": [4]}},
                                "cells": cells, "netnames": {"q": {"bits": [2]}, "a": {"bits": [3]}}}}}


def _reached(body, bit):
    """The (cell, port) inputs that ``bit`` reaches directly or through buffers."""
    out = []
    for name, cell in body["cells"].items():
        for port, bits in cell["connections"].items():
            if cell["port_directions"][port] == "input" and bit in bits:
                out += _reached(body, cell["connections"]["Y"][0]) if name.startswith("fanout_buf") else [(name, port)]
    return out


@pytest.mark.parametrize("loads, buffers", [(10, 0), (40, 2 * 3), (300, 2 * (19 + 2))])
def test_buffer_trees_bound_every_fanout_and_reach_every_load(loads, buffers):
    """q and the input port a drive ``loads`` inputs each (a one more, q_reg's D): 40 need 3 buffers of 16 each, 300
    need 19 and 2 above them."""
    design = _netlist(loads)
    assert buffer_fanout(design, "top", {"DFFPOSX1"}) == buffers
    body = design["modules"]["top"]
    fanout = {}
    for cell in body["cells"].values():
        for port, bits in cell["connections"].items():
            if cell["port_directions"][port] == "input":
                for bit in bits:
                    fanout[bit] = fanout.get(bit, 0) + 1
    assert max(fanout.values()) <= MAX_FANOUT
    assert sorted(_reached(body, 2)) == sorted((f"g{i}", "A") for i in range(loads))
    assert sorted(_reached(body, 3)) == sorted([(f"g{i}", "B") for i in range(loads)] + [("q_reg", "D")])


@pytest.mark.xdist_group("yosys")
def test_a_pe_with_sram_macros_is_timed_in_the_names_of_its_verilog():
    cfg = CATALOG["snapea"]["pe"]
    result = asic_timing(cfg, force=True)
    text = verilog(cfg).read_text()
    for end in (result["from"], result["to"]):   # a register bit or a macro instance of the emitted Verilog
        assert re.sub(r"\[\d+\]$", "", end.removeprefix("registered ")) in text
    assert 0 < result["period_ns"] < 100 and result["fmax_mhz"] == pytest.approx(1000 / result["period_ns"], rel=1e-3)
    assert result["paths"][0]["period_ns"] == result["period_ns"]
    assert all(p["period_ns"] <= result["period_ns"] for p in result["paths"])
    cells = osu018().cells
    assert result["path_cells"] and all(cell in cells for cell in result["path_cells"])
    leaves = ram_leaves(cfg)
    assert set(result["macros"]) == set(leaves)
    for leaf, (bits, addr) in leaves.items():   # CACTI's access time of the macro holding it, brought to 0.18 µm
        assert result["macros"][leaf] == pytest.approx(sram_macro(1 << addr, bits)["access_ns"] * DELAY_SCALE,
                                                       abs=1e-4)
    log = (REPO / result["work"] / "sta.log").read_text()
    assert "not found" not in log and "Error" not in log   # every cell linked: library cells and the macros' models
