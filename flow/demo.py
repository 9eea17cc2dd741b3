"""`zeroskip demo`: the digits CNN through every technique's model, RTL and synthesis, one side-by-side report.

Techniques (the keys of reports/demo/summary.json): ``dense`` (the INT8 network on the ``sa``
systolic array), ``s2ta`` (A/W-DBB network on ``s2ta_aw``, its first layer in dense-weight mode),
``cscnn`` (centrosymmetric + dual-pruned network on ``cscnn_pe``), ``mor`` (the skipping network
on the ``mor`` engine) and ``snapea`` (the globally pruned network on the two-sided ``snapea``
array). Each runs every conv layer of the same test images on RTL, checked against golden;
``speedup_vs_dense`` divides the cycles of the dense ``sa`` array with the same MAC count
(``sa_default`` for 16, ``sa_mac64`` for 64) on the dense network by the technique's cycles.
"""

import dataclasses
import inspect
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

import numpy as np

from generators.config import preset
from models import digits
from models.centrosymmetric import fine_tune_centrosymmetric
from models.dbb_training import DbbConfig
from models.mor import mor_evaluate
from models.pruning import fine_tune_pruned

from .area import preset_area
from .cosim import rows_bit_exact
from .cscnn_check import check_pe_layers
from .cscnn_network import PRUNING, cscnn_models, table_ii
from .demo_report import write_report
from .drivers.array import ArrayDriver
from .mor_area import engine_area
from .mor_check import check_mor_layers, engine_inputs
from .mor_network import mor_tables
from .network import conv_inputs, load_network
from .result_cache import cached
from .runner import REPO, SIMULATORS
from .s2ta_check import check_array_layers
from .s2ta_network import s2ta_models
from .snapea_check import check_snapea_layers
from .snapea_network import RTL_SPARSITY, multiplications, pruned_models

__all__ = ["demo", "DEMO_DIR", "TECHNIQUES"]

DEMO_DIR = REPO / "reports" / "demo"
TECHNIQUES = ("dense", "s2ta", "cscnn", "mor", "snapea")
PRESETS = {"dense": ("sa", "default"), "s2ta": ("s2ta_aw", "default"), "cscnn": ("cscnn_pe", "default"),
           "mor": ("mor", "default"), "snapea": ("snapea", "default")}
DENSE_AT_MACS = {16: ("sa", "default"), 64: ("sa", "mac64")}  # the dense baseline at each technique's MAC count
SNAPEA_UNSYNTHESIZED = ("its memories have combinational read ports (n_pe·window on the input memory), which "
                        "Yosys builds from flip-flops and multiplexers, taking longer than the whole demo; "
                        "python -m flow.bench_snapea synthesizes it (generic cells)")


class _Progress:
    """Per-stage lines with the elapsed time, and each stage's wall time."""

    def __init__(self, log):
        self.log, self.start, self.stages = log, time.perf_counter(), {}

    def say(self, text):
        self.log(f"[{time.perf_counter() - self.start:6.1f} s] {text}")

    def detail(self, text):
        self.log(f"           {text}")

    @contextmanager
    def stage(self, name):
        t = time.perf_counter()
        self.say(f"{name}")
        yield
        self.stages[name] = round(time.perf_counter() - t, 1)
        self.say(f"{name}: {self.stages[name]:.1f} s")


class _Rtl:
    """RTL checks of one demo run: each cached by its inputs and sources, re-simulated for the techniques in
    ``fresh``; all recorded."""

    def __init__(self, sim, fresh, progress):
        self.sim, self.fresh, self.progress, self.checks = sim, fresh, progress, []

    def check(self, technique, role, step, cfg, *args, **kw):
        t = time.perf_counter()
        rows, reused = cached(f"{cfg.module}-{self.sim}", step, cfg, self.sim, *args, fresh=technique in self.fresh,
                              keep=rows_bit_exact, log=self.progress.detail, **kw)
        self.checks.append({"technique": technique, "role": role, "module": cfg.module, "rows": rows})
        bad = sum(not rows_bit_exact([r]) for r in rows)
        how = "reused (same Verilog, inputs and golden)" if reused else f"simulated in {time.perf_counter() - t:.1f} s"
        self.progress.detail(f"{technique}: {cfg.module} ({role}) on {self.sim}: {len(rows)} layers, "
                             f"{'all bit-exact' if not bad else f'{bad} MISMATCHING'}, "
                             f"{sum(r['cycles'] for r in rows)} cycles; {how}")
        return rows


def _layers(rows, baseline):
    return [{"layer": r["layer"], "images": r["images"], "cycles": r["cycles"], "golden_cycles": r["golden_cycles"],
             "dense_cycles": b["cycles"], "speedup_vs_dense": b["cycles"] / r["cycles"],
             "multiplications": r["mults"] if "mults" in r else r["macs"], "bit_exact": rows_bit_exact([r]),
             "first_mismatch": r["first_mismatch"], "waveform": r["waveform"]} for r, b in zip(rows, baseline)]


def _technique(name, *, model, accuracy, cfg, rows, baseline_cfg, baseline, checks, extra):
    layers = _layers(rows, baseline)
    cycles = sum(r["cycles"] for r in layers)
    dense_cycles = sum(r["dense_cycles"] for r in layers)
    own = [c for c in checks if c["technique"] == name]
    return {
        "model": model, "accuracy": accuracy, "preset": {"module": cfg.module, **cfg.to_dict(), "macs": cfg.macs},
        "rtl_bit_exact": all(rows_bit_exact(c["rows"]) for c in own),
        "rtl_layers_checked": sum(len(c["rows"]) for c in own),
        "rtl_checks": [f"{c['module']} ({c['role']})" for c in own],
        "cycles": cycles, "dense_baseline": {"module": baseline_cfg.module, "macs": baseline_cfg.macs,
                                             "cycles": dense_cycles},
        "speedup_vs_dense": dense_cycles / cycles,
        "multiplications": sum(r["multiplications"] for r in layers),
        "area": None, "layers": layers, **extra,
    }


def _s2ta_density_sweep(cfg, qnet, image, nnz_a):
    """Golden cycle-model speedup of ``cfg`` over the dense ``sa`` at equal MACs on each conv layer of one image, for
    every nnz_a the preset runs (the model equals the RTL's cycles, tested): S2TA's speedup vs density."""
    sa = preset(*DENSE_AT_MACS[cfg.macs])
    rows = []
    for layer in qnet.convs:
        x = conv_inputs(qnet, image[None], nnz_a=nnz_a)[layer.name][0]
        conv = {"x": x, "w": layer.w, "pad": np.int64(layer.pad), "stride": np.int64(layer.stride)}
        base = ArrayDriver.golden(sa, ArrayDriver.validate(sa, conv))[1]
        for nnz in [*range(1, cfg.nnz_max + 1), cfg.bz]:
            args = ArrayDriver.validate(cfg, {**conv, "nnz_a": np.int64(nnz), "dense_w": np.bool_(x.shape[0] == 1)})
            rows.append({"layer": layer.name, "nnz_a": nnz, "density": nnz / cfg.bz, "dense_w": args["dense_w"],
                         "speedup": base / ArrayDriver.golden(cfg, args)[1]})
    return rows


def _seeds(net):
    def default(fn):
        return inspect.signature(fn).parameters["seed"].default

    return {"cnn": net.cnn.seed, "data_split": digits.SPLIT_SEED,
            "dbb_fine_tune": next(f.default for f in dataclasses.fields(DbbConfig) if f.name == "seed"),
            "centrosymmetric_fine_tune": default(fine_tune_centrosymmetric),
            "pruning_fine_tune": default(fine_tune_pruned)}


def _failures(checks):
    lines = []
    for check in checks:
        for r in check["rows"]:
            if not rows_bit_exact([r]):
                where = (f"first mismatch at {r['first_mismatch']}; waveform kept at {r['waveform']}"
                         if r["first_mismatch"] else f"cycles {r['cycles']} but golden {r['golden_cycles']}")
                lines.append(f"demo: {check['technique']} MISMATCH on {check['module']} ({check['role']}) layer "
                             f"{r['layer']}: {where}")
    return lines


def demo(*, sim="verilator", images=8, synth=True, fresh=False, out_dir=DEMO_DIR, log=print):
    """Run the demo and write ``out_dir``/{summary.json, report.md, *.png}; return 0 when every RTL output
    and cycle count matched golden, 1 otherwise (each mismatch printed with its layer, technique,
    coordinates and waveform, and marked in the summary and report). ``fresh`` (True or technique names)
    re-simulates those techniques' RTL checks instead of reusing results cached for the same inputs."""
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    fresh = set(TECHNIQUES) if fresh is True else set(fresh or ())
    if not fresh <= set(TECHNIQUES):
        raise ValueError(f"fresh names techniques of {', '.join(TECHNIQUES)}, not {sorted(fresh - set(TECHNIQUES))}")
    test_images = len(digits.load().y_test)
    if isinstance(images, bool) or not isinstance(images, int) or not 1 <= images <= test_images:
        raise ValueError(f"images must be between 1 and the {test_images} test images, not {images!r}")
    progress = _Progress(log)
    cfgs = {name: preset(*block) for name, block in PRESETS.items()}
    baselines = {macs: preset(*block) for macs, block in DENSE_AT_MACS.items()}
    areas = None
    if synth:  # synthesis runs in a second process, beside the simulations (cached by each preset's Verilog)
        pool = ProcessPoolExecutor(max_workers=1)
        wanted = [cfgs[name] for name in TECHNIQUES if name != "snapea"] + [baselines[64], preset("snapea", "pe")]
        areas = {cfg.module: pool.submit(preset_area, cfg) for cfg in wanted}
        progress.say(f"synthesis of {', '.join(areas)} started in the background")
    rtl = _Rtl(sim, fresh, progress)

    with progress.stage("network: train or reuse the digits CNN, INT8 export"):
        net = load_network(log=progress.detail)
    x = net.data.x_test[:images]
    with progress.stage(f"dense: the INT8 network on {cfgs['dense'].module} and {baselines[64].module}"):
        dense = {macs: rtl.check("dense", "dense baseline" if macs != cfgs["dense"].macs else "technique",
                                 check_array_layers, cfg, net.qnet, x) for macs, cfg in baselines.items()}
    techniques = {"dense": _technique(
        "dense", model="INT8 digits CNN", accuracy=net.int8_accuracy, cfg=cfgs["dense"],
        rows=dense[cfgs["dense"].macs], baseline_cfg=cfgs["dense"], baseline=dense[cfgs["dense"].macs],
        checks=rtl.checks, extra={"float_accuracy": net.float_accuracy})}

    def add(name, model, accuracy, rows, extra):
        cfg = cfgs[name]
        techniques[name] = _technique(name, model=model, accuracy=accuracy, cfg=cfg, rows=rows,
                                      baseline_cfg=baselines[cfg.macs], baseline=dense[cfg.macs], checks=rtl.checks,
                                      extra=extra)

    with progress.stage("s2ta: A/W-DBB fine-tuning, s2ta_aw RTL"):
        models = s2ta_models(net, log=progress.detail)
        aw = models["aw_dbb"]
        rows = rtl.check("s2ta", "technique", check_array_layers, cfgs["s2ta"], aw.qnet, x, nnz_a=aw.nnz_a)
        add("s2ta", f"A/W-DBB fine-tuned: W-DBB {cfgs['s2ta'].b}/{cfgs['s2ta'].bz} (first layer dense), "
                    f"DAP nnz_a {aw.nnz_a}", aw.accuracy, rows,
            {"nnz_a": aw.nnz_a, "model_accuracy": {n: m.accuracy for n, m in models.items()},
             "density_sweep": _s2ta_density_sweep(cfgs["s2ta"], aw.qnet, x[0], aw.nnz_a)})

    with progress.stage("cscnn: centrosymmetric retraining and dual pruning, cscnn_pe and scnn_pe RTL"):
        models = cscnn_models(net, log=progress.detail)
        chosen = models["cs_pruned"].qnet
        rows = rtl.check("cscnn", "technique", check_pe_layers, cfgs["cscnn"], chosen, x)
        scnn = rtl.check("cscnn", "SCNN PE, same network", check_pe_layers, preset("scnn_pe", "default"), chosen, x)
        add("cscnn", f"centrosymmetric, retrained, dual-pruned {PRUNING:.0%}", models["cs_pruned"].accuracy, rows,
            {"table_ii": table_ii(models, x), "scnn_pe": [{"layer": r["layer"], "cycles": r["cycles"],
                                                          "multiplications": r["mults"]} for r in scnn]})

    with progress.stage("mor: tables, skipping network on the test set, mor engine RTL with and without predictor"):
        layer_tables, threshold, _ = mor_tables(net, log=progress.detail)
        accuracy, categories = mor_evaluate(net.qnet, layer_tables, threshold, net.data.x_test, net.data.y_test)
        rows = rtl.check("mor", "technique", check_mor_layers, cfgs["mor"],
                         engine_inputs(net.qnet, layer_tables, threshold, x))
        base = rtl.check("mor", "same engine, no predictor", check_mor_layers, cfgs["mor"],
                         engine_inputs(net.qnet, layer_tables, threshold, x, predictor=False))
        add("mor", f"INT8 CNN with MoR predictor tables, T = {threshold}", accuracy, rows,
            {"threshold": threshold, "categories": categories,
             "run_cycles": sum(r["run_cycles"] for r in rows),
             "no_predictor": [{"layer": r["layer"], "cycles": r["cycles"], "run_cycles": r["run_cycles"],
                               "multiplications": r["macs"]} for r in base]})

    with progress.stage("snapea: global pruning, sign-sorted weights, snapea RTL two- and one-sided"):
        models = pruned_models(net, log=progress.detail)
        chosen = models[RTL_SPARSITY].qnet
        rows = rtl.check("snapea", "technique", check_snapea_layers, cfgs["snapea"], chosen, x)
        one = rtl.check("snapea", "one-sided", check_snapea_layers, preset("snapea", "one_sided"), chosen, x)
        add("snapea", f"{RTL_SPARSITY:.0%} global magnitude pruning, fine-tuned, exact mode",
            models[RTL_SPARSITY].accuracy, rows,
            {"model_accuracy": {f"{s:.2f}": m.accuracy for s, m in models.items()},
             "algorithms": multiplications(chosen, x),
             "one_sided": [{"layer": r["layer"], "cycles": r["cycles"], "multiplications": r["mults"]} for r in one]})

    if synth:
        with progress.stage("synthesis (Yosys generic cells; RAM leaves kept as SRAM macros)"):
            results = {module: future.result() for module, future in areas.items()}
            pool.shutdown()
            for name, cfg in cfgs.items():
                techniques[name]["area"] = results.get(cfg.module) or {
                    "module": cfg.module, "logic_cells": None, "not_synthesized": SNAPEA_UNSYNTHESIZED,
                    "one_pe": results[preset("snapea", "pe").module]}
            techniques["dense"]["area_mac64"] = results[baselines[64].module]
            techniques["mor"]["area_split"] = engine_area(cfgs["mor"])
            for module, r in results.items():
                progress.detail(f"{module}: {r['logic_cells']} logic cells, {r['ram_bits']} RAM bits")

    failures = _failures(rtl.checks)
    summary = {
        **techniques,
        "bit_exact": not failures,
        "dataset": {"name": "sklearn load_digits (8x8 handwritten digits)", "train": len(net.data.y_train),
                    "test": len(net.data.y_test), "rtl_images": f"test images 0..{images - 1}", "images": images},
        "network": {"channels": list(net.cnn.channels), "epochs": net.cnn.epochs},
        "presets": {name: techniques[name]["preset"]["module"] for name in TECHNIQUES} |
                   {f"dense_at_{macs}_macs": cfg.module for macs, cfg in baselines.items()},
        "seeds": _seeds(net),
        "sim": sim,
        "stages_seconds": progress.stages,
        "wall_seconds": round(time.perf_counter() - progress.start, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = write_report(summary, out_dir)
    print()
    print(table)
    print()
    for line in failures:
        print(line, file=sys.stderr)
    progress.say(f"{'all five techniques bit-exact' if not failures else f'{len(failures)} MISMATCHING layer(s)'}; "
                 f"wrote {out_dir / 'summary.json'}, {out_dir / 'report.md'} and plots")
    return 1 if failures else 0
