"""`sa` cycle model and RTL against SCALE-Sim v3 (output stationary) on the digits CNN's conv layers -> JSON.

SCALE-Sim lives in its own venv (it needs numpy<2.4):
    python3 -m venv /tmp/scalesim && /tmp/scalesim/bin/pip install scalesim "numpy<2.4"
    python -m flow.bench.scalesim --python /tmp/scalesim/bin/python
Per fold SCALE-Sim counts K + R + C - 2 cycles (each fold fills and drains the array); our arrays
overlap the next fold's skew with the drain, so a fold costs max(K, R + C - 1) and the whole GEMM
2R + C more once: for K >= R + C - 1, SCALE-Sim - ours = F·(R + C - 2) - (2R + C), F folds.
"""

import argparse
import csv
import json
import subprocess
import tempfile
from pathlib import Path

from generators.config import CATALOG
from golden.conv import conv_as_gemm
from golden.systolic import array_cycles, fold_steps, folds, sa_scalesim_cycles

from ..harness.drivers.array import ArrayDriver
from ..harness.network import conv_inputs, load_network
from ..harness.runner import REPO

__all__ = ["scalesim_cycles", "scalesim_comparison"]

CONFIG = """[general]
run_name = zeroskip
[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = 4096
filtersramszkB = 4096
ofmapsramszkB = 4096
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = os
ReadRequestBuffer = 32
WriteRequestBuffer = 32
Bandwidth = 10
[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2
[sparsity]
SparsitySupport = false
[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False
"""


def scalesim_cycles(python, rows, cols, gemms):
    """SCALE-Sim's compute cycles (no stalls: 'Total Cycles') of each (name, M, N, K) on a rows×cols OS array."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "array.cfg").write_text(CONFIG.format(rows=rows, cols=cols))
        (work / "gemms.csv").write_text("Layer, M, N, K,\n" + "".join(f"{n}, {m}, {nn}, {k},\n"
                                                                     for n, m, nn, k in gemms))
        (work / "layout.csv").write_text("Layer,\n")
        subprocess.run([python, "-m", "scalesim.scale", "-c", "array.cfg", "-t", "gemms.csv", "-l", "layout.csv",
                        "-p", "logs", "-i", "gemm", "-s", "N"], cwd=work, check=True, capture_output=True)
        report = next((work / "logs").rglob("COMPUTE_REPORT.csv"))
        rows_out = list(csv.reader(report.open()))[1:]
        return [int(r[2]) for r in rows_out]


def scalesim_comparison(python, *, rtl_sim="verilator", log=print):
    """Per digits conv layer and `sa` preset: SCALE-Sim, its formula, our cycle model and (default preset) the RTL."""
    net = load_network(log=log)
    images = net.data.x_test[:1]
    inputs = conv_inputs(net.qnet, images)
    rows = []
    for preset in ("default", "paper"):
        cfg = CATALOG["sa"][preset]
        gemms, lowered = [], []
        for layer in net.qnet.convs:
            a, w, _ = conv_as_gemm(inputs[layer.name][0], layer.w, pad=layer.pad, stride=layer.stride)
            gemms.append((layer.name, a.shape[0], w.shape[1], a.shape[1]))
            lowered.append((a, w))
        theirs = scalesim_cycles(python, cfg.rows, cfg.cols, gemms)
        for (name, m, n, k), peer, (a, w) in zip(gemms, theirs, lowered):
            f = len(folds(cfg, m, n))
            ours = array_cycles(cfg, [fold_steps(cfg, k)] * f)
            row = {"preset": preset, "array": f"{cfg.rows}x{cfg.cols}", "layer": name, "m": m, "n": n, "k": k,
                   "folds": f, "scalesim": peer, "scalesim_formula": sa_scalesim_cycles(cfg, m, n, k),
                   "ours_model": ours, "difference": peer - ours,
                   "per_fold_constant_holds": k < cfg.min_fold_steps or
                   peer - ours == f * (cfg.rows + cfg.cols - 2) - (2 * cfg.rows + cfg.cols)}
            if preset == "default":  # the RTL streams harness jobs of <= DEPTH steps, each paying the latency
                args = ArrayDriver.validate(cfg, {"a": a, "w": w})
                _, row["ours_rtl"] = ArrayDriver(cfg, rtl_sim).run(args)
                row["ours_model_per_job"] = ArrayDriver.golden(cfg, args)[1]
                row["rtl_jobs"] = len(ArrayDriver.jobs(cfg, args))
            rows.append(row)
            log(json.dumps(row))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", required=True, help="python of a venv with scalesim installed")
    args = p.parse_args(argv)
    rows = scalesim_comparison(args.python)
    out = REPO / "reports" / "bench" / "scalesim.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"written {out}")
    exact = all(r["scalesim"] == r["scalesim_formula"] and r["per_fold_constant_holds"]
                and r.get("ours_rtl") == r.get("ours_model_per_job") for r in rows)
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
