"""`sa` cycle model and RTL against SCALE-Sim v3 (output stationary) on the digits CNN's conv layers, and the
dense `sa`'s global-buffer traffic against SCALE-Sim's SRAM reads and writes on LeNet-5 (8×8) -> JSON.

SCALE-Sim lives in its own venv (it needs numpy<2.4):
    python3 -m venv /tmp/scalesim && /tmp/scalesim/bin/pip install scalesim "numpy<2.4"
    python -m flow.bench.scalesim --python /tmp/scalesim/bin/python
Per fold SCALE-Sim counts K + R + C - 2 cycles (each fold fills and drains the array); our arrays
overlap the next fold's skew with the drain, so a fold costs max(K, R + C - 1) and the whole GEMM
2R + C more once, and SCALE-Sim's count ends a cycle early: for K >= R + C - 1,
SCALE-Sim - ours = F·(R + C - 2) - (2R + C + 1), F folds (golden.systolic.sa_scalesim_cycles).
"""

import argparse
import csv
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from generators.config import CATALOG
from golden.conv import conv_as_gemm
from golden.systolic import array_cycles, fold_steps, folds, sa_scalesim_cycles

from ..harness.activations import conv_inputs, group_convs, layer_inputs
from ..harness.check import check_layers
from ..harness.cosim import rows_bit_exact
from ..harness.drivers.array import ArrayDriver
from ..harness.network import load_network
from ..harness.runner import REPO

__all__ = ["scalesim_run", "scalesim_cycles", "scalesim_comparison", "buffer_comparison"]

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


def scalesim_run(python, rows, cols, gemms):
    """SCALE-Sim's figures of each (name, M, N, K) on a rows×cols OS array: ``cycles`` (compute cycles, no stalls:
    'Total Cycles') and its SRAM ``ifmap_reads``, ``filter_reads`` and ``ofmap_writes`` (elements)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "array.cfg").write_text(CONFIG.format(rows=rows, cols=cols))
        (work / "gemms.csv").write_text("Layer, M, N, K,\n" + "".join(f"{n}, {m}, {nn}, {k},\n"
                                                                     for n, m, nn, k in gemms))
        (work / "layout.csv").write_text("Layer,\n")
        subprocess.run([python, "-m", "scalesim.scale", "-c", "array.cfg", "-t", "gemms.csv", "-l", "layout.csv",
                        "-p", "logs", "-i", "gemm", "-s", "N"], cwd=work, check=True, capture_output=True)

        def report(name):
            return list(csv.reader(next((work / "logs").rglob(name)).open()))[1:]

        return [{"cycles": int(c[2]), "ifmap_reads": int(a[3]), "filter_reads": int(a[6]), "ofmap_writes": int(a[9])}
                for c, a in zip(report("COMPUTE_REPORT.csv"), report("DETAILED_ACCESS_REPORT.csv"))]


def scalesim_cycles(python, rows, cols, gemms):
    """SCALE-Sim's compute cycles of each (name, M, N, K) on a rows×cols OS array (``scalesim_run``)."""
    return [r["cycles"] for r in scalesim_run(python, rows, cols, gemms)]


def buffer_comparison(python, *, network="lenet5", name="mac64", images=1, rtl_sim="verilator", log=print):
    """The dense `sa` preset ``name``'s global-buffer traffic on every compute layer of ``network`` (the job plan,
    confirmed by the RTL's counters) against SCALE-Sim's SRAM reads and writes on the same GEMMs and array shape,
    in elements: activations (ifmap), weights (filter) and results (ofmap). Ours streams whole folds: a fold of a
    partial row (column) tile still sends ``rows`` activations (``cols`` weights) per step, zeros in the missing
    lanes, where SCALE-Sim reads only the real operands; and SCALE-Sim's OS ofmap counter adds rows + cols per fold
    to the M·N outputs (``systolic_compute_os.py``, ``create_ofmap_demand_mat``: the padded fold's shape summed).
    ``padding_explains`` checks that this is the whole difference: ours = F·K·rows, F·K·cols and F·rows·cols for F
    folds; SCALE-Sim's M·K·⌈N/cols⌉, K·N·⌈M/rows⌉ and M·N + F·(rows + cols)."""
    cfg = CATALOG["sa"][name]
    net = load_network(network, log=log)
    inputs = layer_inputs(net.qnet, net.data.x_test[:images])
    layers, gemms = {}, []
    for layer in net.qnet.computes:
        for i, (x, w, _) in enumerate(group_convs(layer, inputs[layer.name][0])):
            name = layer.name if layer.groups == 1 else f"{layer.name}.g{i}"
            args = ArrayDriver.validate(cfg, {"x": x, "w": w, "pad": np.int64(layer.pad),
                                              "stride": np.int64(layer.stride)})
            layers[name] = [args]
            gemms.append((name, args["a"].shape[0], args["w"].shape[1], args["a"].shape[1]))
    theirs = scalesim_run(python, cfg.rows, cfg.cols, gemms)
    checked = check_layers(ArrayDriver, cfg, rtl_sim, layers, log=log)
    driver = ArrayDriver(cfg, rtl_sim)
    rows = []
    for (layer, m, n, k), peer, row in zip(gemms, theirs, checked):
        words_in = row["traffic"]["buffer_read_bits"] // driver.in_layout.size
        words_out = row["traffic"]["buffer_write_bits"] // driver.out_layout.size
        f = len(folds(cfg, m, n))
        ours = {"ifmap_reads": words_in * cfg.rows, "filter_reads": words_in * cfg.cols,
                "ofmap_writes": words_out * cfg.cols}
        out = {"network": network, "preset": cfg.module, "array": f"{cfg.rows}x{cfg.cols}", "dataflow": "os",
               "layer": layer, "m": m, "n": n, "k": k, "folds": f, "ours": ours,
               "scalesim": {key: peer[key] for key in ours},
               "rtl_confirms": rows_bit_exact([row]),   # outputs, cycles and the RTL's traffic counters
               "padding_explains": ours == {"ifmap_reads": f * k * cfg.rows, "filter_reads": f * k * cfg.cols,
                                            "ofmap_writes": f * cfg.rows * cfg.cols}
               and peer["ifmap_reads"] == m * k * -(-n // cfg.cols)
               and peer["filter_reads"] == k * n * -(-m // cfg.rows)
               and peer["ofmap_writes"] == m * n + f * (cfg.rows + cfg.cols)}
        rows.append(out)
        log(json.dumps(out))
    return rows


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
                   peer - ours == f * (cfg.rows + cfg.cols - 2) - (2 * cfg.rows + cfg.cols + 1)}
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
    cycles = scalesim_comparison(args.python)
    buffer = buffer_comparison(args.python)
    out = REPO / "reports" / "bench" / "scalesim.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cycles": cycles, "buffer": buffer}, indent=2) + "\n")
    print(f"written {out}")
    exact = all(r["scalesim"] == r["scalesim_formula"] and r["per_fold_constant_holds"]
                and r.get("ours_rtl") == r.get("ours_model_per_job") for r in cycles)
    explained = all(r["rtl_confirms"] and r["padding_explains"] for r in buffer)
    return 0 if exact and explained else 1


if __name__ == "__main__":
    raise SystemExit(main())
