"""Gate-level energy on OSU 0.18 µm: a block's netlist (``cells.map_to_cells``) simulated on Icarus inside the
co-simulation harness, each cell pin's toggles read from a VCD while a job runs, and energy computed from the
library: ½·C·V² per toggle of every net that drives cell inputs (cell outputs and the block's input ports, its
clock tree among them; C = the input-pin capacitances on the net, wires not modelled) plus each cell's internal
energy per pin transition (its tables at the driven load and a nominal input
slew, SLEW_NS) plus leakage over the run at a nominal clock (CLOCK_NS). Relative energy, OSU 0.18 µm at 1.8 V.
"""

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..harness.cosim import first_mismatch
from ..harness.runner import SimulationError
from .cells import map_to_cells
from .liberty import OSU018, osu018

__all__ = ["SLEW_NS", "CLOCK_NS", "Netlist", "load_netlist", "vcd_toggles", "energy_of", "gate_driver",
           "measure_energy"]

SLEW_NS = 0.18    # nominal input slew for the internal-energy tables (an index of the library's tables)
CLOCK_NS = 10.0   # nominal clock period for leakage (100 MHz)


@dataclass(frozen=True)
class Netlist:
    """Cells of a mapped module: ``cells`` {instance: type}, ``pins`` {instance: {pin: (direction, bit)}} and
    ``load_pf`` {bit: capacitance of the cell input pins on that net}."""

    module: str
    cells: dict
    pins: dict
    load_pf: dict


def load_netlist(path, lib):
    """The ``Netlist`` of Yosys' JSON netlist ``path`` (one module, library cells, single-bit pins)."""
    design = json.loads(Path(path).read_text())
    (module, body), = design["modules"].items()
    cells, pins, load = {}, {}, {}
    for name, cell in body["cells"].items():
        cells[name] = cell["type"]
        library_cell = lib.cells[cell["type"]]
        pins[name] = {}
        for pin, bits in cell["connections"].items():
            direction = "input" if pin in library_cell.inputs else "output"
            pins[name][pin] = (direction, bits[0])
            if direction == "input" and isinstance(bits[0], int):
                load[bits[0]] = load.get(bits[0], 0.0) + library_cell.inputs.get(pin, 0.0)
    return Netlist(module, cells, pins, load)


_SCOPE = re.compile(r"\$scope module (\S+) \$end")
_VAR = re.compile(r"\$var \w+ (\d+) (\S+) (\S+)")


def vcd_toggles(path, *, top, dut="dut", start="start", done="done", clock="clk"):
    """``({instance: {pin: toggles}}, cycles)`` of the cell instances under ``top.dut`` in the VCD at ``path``,
    counting only while a job runs: from ``start`` rising to ``done`` rising (reopened when ``done`` falls with
    ``start`` high); ``cycles`` are the rising clock edges in those windows. Transitions to or from x/z are not
    toggles."""
    scope, cell_pins, harness = [], {}, {}
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
        counts = dict.fromkeys(cell_pins, 0)
        values, open_, cycles = {}, False, 0
        for line in vcd:
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
            if code in counts:
                counts[code] += 1
    toggles = {}
    for code, places in cell_pins.items():
        for instance, pin in places:
            toggles.setdefault(instance, {})[pin] = counts[code]
    return toggles, cycles


def energy_of(netlist, toggles, cycles, lib):
    """``{"switching_pj", "internal_pj", "leakage_pj", "energy_pj", "cycles"}`` of a run's ``toggles``: every net
    that drives cell inputs (cell outputs and the block's input ports, the clock among them) is charged once per
    toggle; internal energy per cell pin transition."""
    v2 = lib.voltage ** 2
    internal, net_toggles = 0.0, {}
    for instance, cell_type in netlist.cells.items():
        cell, counts = lib.cells[cell_type], toggles.get(instance, {})
        for pin, (direction, bit) in netlist.pins[instance].items():
            n = counts.get(pin, 0)
            if not n:
                continue
            net_toggles[bit] = max(net_toggles.get(bit, 0), n)
            internal += cell.transition_energy(pin, netlist.load_pf.get(bit, 0.0) if direction == "output" else 0.0,
                                               SLEW_NS) * n
    switching = sum(0.5 * netlist.load_pf.get(bit, 0.0) * v2 * n for bit, n in net_toggles.items())
    leakage = sum(lib.cells[t].leakage for t in netlist.cells.values()) * 1e-9 * cycles * CLOCK_NS * 1e-9 * 1e12
    return {"switching_pj": switching, "internal_pj": internal, "leakage_pj": leakage,
            "energy_pj": switching + internal + leakage, "cycles": cycles}


def gate_driver(driver_cls, cfg):
    """``(driver, netlist)``: ``driver_cls`` on Icarus with ``cfg``'s OSU 0.18 µm netlist in place of its RTL."""
    cells = map_to_cells(cfg)
    driver = driver_cls(cfg, "icarus", gates=[cells["netlist"], str(OSU018 / "osu018_stdcells.v")])
    return driver, load_netlist(cells["netlist_json"], osu018())


def measure_energy(driver, netlist, args):
    """``energy_of`` one validated input ``args`` run on a ``gate_driver``, plus the run's ``rtl_cycles``; the
    gate-level outputs must equal the golden model's (SimulationError naming the first mismatch otherwise)."""
    with tempfile.TemporaryDirectory() as tmp:
        vcd = Path(tmp) / "toggles.vcd"
        outputs, cycles = driver.layer_outputs(args, driver.target.run(driver.layer_jobs(args), toggles=vcd))
        toggles, window = vcd_toggles(vcd, top=driver.target.toplevel)
    golden, _ = type(driver).golden(driver.cfg, args)
    mismatch = first_mismatch(outputs, {k: v for k, v in golden.items() if k in outputs})
    if mismatch is not None:
        raise SimulationError(f"{driver.cfg.module} gate-level netlist differs from golden at {mismatch}")
    return {**energy_of(netlist, toggles, window, osu018()), "rtl_cycles": cycles}
