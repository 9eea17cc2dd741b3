"""Gate-level energy on OSU 0.18 µm: a block's netlist (``cells.map_to_cells``) simulated on Icarus inside the
co-simulation harness, each cell pin's toggles read from a VCD while a job runs, and energy computed from the
library: ½·C·V² per toggle of every net that drives cell inputs (cell outputs and the block's input ports, its
clock tree among them; C = the input-pin capacitances on the net, wires not modelled) plus each cell's internal
energy per pin transition (its tables at the driven load and a nominal input slew, SLEW_NS) plus leakage over
the run at a nominal clock (CLOCK_NS). In parts: ``clock`` — the clock tree (its nets, clock gates and buffers)
and the flip-flops' clock-pin energy; ``logic`` — the rest of the cells; ``sram`` — each SRAM macro's accesses,
counted per port at every clock edge of the run (``ren``/``we`` high), at CACTI's per-access energies, plus its
leakage. Relative energy, OSU 0.18 µm at 1.8 V.
"""

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..harness.cosim import first_mismatch
from ..harness.runner import SimulationError
from .area import ram_leaves
from .cells import CLOCK_CELLS, map_to_cells
from .liberty import OSU018, osu018
from .sram import sram_macro

__all__ = ["SLEW_NS", "CLOCK_NS", "PARTS", "Netlist", "load_netlist", "vcd_toggles", "macro_of", "energy_of",
           "gate_driver", "measure_energy"]

SLEW_NS = 0.18    # nominal input slew for the internal-energy tables (an index of the library's tables)
CLOCK_NS = 10.0   # nominal clock period for leakage (100 MHz)
PARTS = ("logic", "clock", "sram")


@dataclass(frozen=True)
class Netlist:
    """Cells of a mapped module: ``cells`` {instance: type}, ``pins`` {instance: {pin: (direction, bit)}},
    ``load_pf`` {bit: capacitance of the cell input pins on that net}, ``macros`` {instance: SRAM leaf module} and
    ``clock_bits`` (the clock tree's nets: the clock input and what its buffers and gates drive)."""

    module: str
    cells: dict
    pins: dict
    load_pf: dict
    macros: dict
    clock_bits: frozenset


def load_netlist(path, lib, module):
    """The ``Netlist`` of ``module`` in Yosys' JSON netlist ``path`` (library cells with single-bit pins, and SRAM
    macros: cells of any other type)."""
    body = json.loads(Path(path).read_text())["modules"][module]
    cells, pins, load, macros = {}, {}, {}, {}
    clock_bits = set(body["ports"]["clk"]["bits"]) if "clk" in body["ports"] else set()
    for name, cell in body["cells"].items():
        if cell["type"] not in lib.cells:
            macros[name] = cell["type"]
            continue
        cells[name] = cell["type"]
        if name.startswith(CLOCK_CELLS):
            clock_bits.update(bits[0] for pin, bits in cell["connections"].items()
                              if cell["port_directions"][pin] == "output")
        library_cell = lib.cells[cell["type"]]
        pins[name] = {}
        for pin, bits in cell["connections"].items():
            direction = "input" if pin in library_cell.inputs else "output"
            pins[name][pin] = (direction, bits[0])
            if direction == "input" and isinstance(bits[0], int):
                load[bits[0]] = load.get(bits[0], 0.0) + library_cell.inputs.get(pin, 0.0)
    return Netlist(module, cells, pins, load, macros, frozenset(clock_bits))


_SCOPE = re.compile(r"\$scope module (\S+) \$end")
_VAR = re.compile(r"\$var \w+ (\d+) (\S+) (\S+)")


def vcd_toggles(path, *, top, dut="dut", start="start", done="done", clock="clk", sample=()):
    """``({instance: {pin: toggles}}, cycles, {(instance, pin): high})`` of the instances under ``top.dut`` in the
    VCD at ``path``, counting only while a job runs: from ``start`` rising to ``done`` rising (reopened when
    ``done`` falls with ``start`` high); ``cycles`` are the rising clock edges in those windows, ``high`` for each
    ``(instance, pin)`` of ``sample`` the edges at which it was 1 (its value before the edge's own changes).
    Transitions to or from x/z are not toggles."""
    scope, cell_pins, harness, sampled = [], {}, {}, {}
    with open(path) as vcd:
        for line in vcd:
            if line.startswith("$enddefinitions"):
                break
            m = _SCOPE.match(line)
            if m:
                scope.append(m.group(1))
                continue
            if line.startswith("$upscope"):
                scope.pop()
                continue
            m = _VAR.match(line)
            if not m or m.group(1) != "1":
                continue
            code, name = m.group(2), m.group(3)
            if scope == [top] and name in (start, done, clock):
                harness[name] = code
            elif len(scope) == 3 and scope[:2] == [top, dut]:
                cell_pins.setdefault(code, []).append((scope[2], name))
                if (scope[2], name) in sample:
                    sampled[scope[2], name] = code
        missing = sorted(set(sample) - set(sampled))
        if missing:
            raise ValueError(f"{path}: no 1-bit signal {missing[0][1]!r} in {top}.{dut}.{missing[0][0]}")
        counts = dict.fromkeys(cell_pins, 0)
        highs = dict.fromkeys(sampled.values(), 0)
        values, before, open_, cycles = {}, {}, False, 0
        for line in vcd:
            if line[0] == "#":
                before = {code: values.get(code) for code in highs}
                continue
            if line[0] not in "01xzXZ":
                continue
            value, code = line[0], line[1:].strip()
            old = values.get(code)
            values[code] = value
            if code == harness.get(start) and value == "1" and old != "1":
                open_ = True
            elif code == harness.get(done):
                if value == "1" and old != "1":
                    open_ = False
                elif value == "0" and old == "1" and values.get(harness.get(start)) == "1":
                    open_ = True
            if not open_ or old is None or value == old or old not in "01" or value not in "01":
                continue
            if code == harness.get(clock) and value == "1":
                cycles += 1
                for high in highs:
                    highs[high] += before.get(high) == "1"
            if code in counts:
                counts[code] += 1
    toggles = {}
    for code, places in cell_pins.items():
        for instance, pin in places:
            toggles.setdefault(instance, {})[pin] = counts[code]
    return toggles, cycles, {place: highs[code] for place, code in sampled.items()}


def macro_of(cfg):
    """{SRAM leaf module: ``sram.sram_macro``} of ``cfg``'s RAM leaves (one read and one write port each; the depth
    its address reaches)."""
    return {leaf: sram_macro(1 << addr, bits) for leaf, (bits, addr) in ram_leaves(cfg).items()}


def energy_of(netlist, toggles, cycles, lib, *, accesses=None, macros=None):
    """``{"logic_pj", "clock_pj", "sram_pj", "switching_pj", "internal_pj", "leakage_pj", "energy_pj", "cycles"}``
    of a run's ``toggles``: every net that drives cell inputs (cell outputs and the block's input ports, the
    clock among them) is charged once per toggle, internal energy per cell pin transition; the clock part is the
    clock tree's nets and cells and the flip-flops' clock pins. ``accesses`` {macro instance: {"read", "write"}}
    at ``macros`` {leaf module: ``sram.sram_macro``}: the SRAM part, with the macros' leakage over ``cycles``."""
    v2 = lib.voltage ** 2
    internal, net_toggles = {"logic": 0.0, "clock": 0.0}, {}
    for instance, cell_type in netlist.cells.items():
        cell, counts = lib.cells[cell_type], toggles.get(instance, {})
        tree = instance.startswith(CLOCK_CELLS)
        for pin, (direction, bit) in netlist.pins[instance].items():
            n = counts.get(pin, 0)
            if not n:
                continue
            net_toggles[bit] = max(net_toggles.get(bit, 0), n)
            part = "clock" if tree or (direction == "input" and bit in netlist.clock_bits) else "logic"
            internal[part] += cell.transition_energy(
                pin, netlist.load_pf.get(bit, 0.0) if direction == "output" else 0.0, SLEW_NS) * n
    switching = {"logic": 0.0, "clock": 0.0}
    for bit, n in net_toggles.items():
        switching["clock" if bit in netlist.clock_bits else "logic"] += 0.5 * netlist.load_pf.get(bit, 0.0) * v2 * n
    seconds = cycles * CLOCK_NS * 1e-9
    leakage = sum(lib.cells[t].leakage for t in netlist.cells.values()) * 1e-9 * seconds * 1e12
    sram = 0.0
    for instance, leaf in netlist.macros.items():
        macro, counts = macros[leaf], (accesses or {}).get(instance, {})
        sram += (counts.get("read", 0) * macro["read_pj"] + counts.get("write", 0) * macro["write_pj"]
                 + macro["leakage_uw"] * 1e-6 * seconds * 1e12)
    parts = {"logic_pj": internal["logic"] + switching["logic"] + leakage,
             "clock_pj": internal["clock"] + switching["clock"], "sram_pj": sram}
    return {**parts, "switching_pj": sum(switching.values()), "internal_pj": sum(internal.values()),
            "leakage_pj": leakage, "energy_pj": sum(parts.values()), "cycles": cycles}


def gate_driver(driver_cls, cfg, *, style="asic"):
    """``(driver, netlist)``: ``driver_cls`` on Icarus with ``cfg``'s OSU 0.18 µm netlist in ``style``
    (``cells.STYLES``; SRAM macros simulated by their RTL) in place of its RTL."""
    cells = map_to_cells(cfg, style=style)
    driver = driver_cls(cfg, "icarus", gates=[cells["netlist"], str(OSU018 / "osu018_stdcells.v")])
    return driver, load_netlist(cells["netlist_json"], osu018(), cfg.module)


def measure_energy(driver, netlist, args):
    """``energy_of`` one validated input ``args`` run on a ``gate_driver``, plus the run's ``rtl_cycles`` and its
    SRAM ``accesses`` {macro instance: {"read", "write"}}; the gate-level outputs must equal the golden model's
    (SimulationError naming the first mismatch otherwise)."""
    ports = [(instance, pin) for instance in netlist.macros for pin in ("ren", "we")]
    with tempfile.TemporaryDirectory() as tmp:
        vcd = Path(tmp) / "toggles.vcd"
        outputs, cycles = driver.layer_outputs(args, driver.target.run(driver.layer_jobs(args), toggles=vcd))
        toggles, window, high = vcd_toggles(vcd, top=driver.target.toplevel, sample=ports)
    golden, _ = type(driver).golden(driver.cfg, args)
    mismatch = first_mismatch(outputs, {k: v for k, v in golden.items() if k in outputs})
    if mismatch is not None:
        raise SimulationError(f"{driver.cfg.module} gate-level netlist differs from golden at {mismatch}")
    accesses = {instance: {"read": high[instance, "ren"], "write": high[instance, "we"]} for instance in netlist.macros}
    return {**energy_of(netlist, toggles, window, osu018(), accesses=accesses, macros=macro_of(driver.cfg)),
            "rtl_cycles": cycles, "accesses": accesses}
