"""`zeroskip evaluate` and `zeroskip demo`: a network through every technique's model, RTL and synthesis, one
side-by-side report.

For each technique of ``flow.techniques.TECHNIQUES`` (the keys of summary.json: ``dense``, ``s2ta``, ``cscnn``,
``mor``, ``snapea``) every layer (conv and fc) of the same test images runs on its RTL, checked against golden;
``speedup_vs_dense`` divides the cycles of the dense ``sa`` array with the same MAC count on the dense network
(the ``BASELINE`` technique's ``at(macs)``) by the technique's cycles; ``energy_vs_dense`` divides the technique's
energy by that array's (relative energy, OSU 0.18 µm: ``flow.synth.calibration``).

Conv layers run the chosen images one by one; fc layers ``batch`` images a job (``harness.activations.FcBatch``,
their last batch filled with the test images after the chosen ones), the dense baselines alike. A layer row's
figures are summed over the images it ran (``images``); a technique's whole-network and per-kind figures are per
image: each layer's divided by its images, summed.
"""

import dataclasses
import inspect
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from models import datasets
from models.networks import check_network

from ..harness.activations import BATCH, check_batch, fc_batch
from ..harness.check import per_image
from ..harness.cosim import rows_bit_exact
from ..harness.network import check_images, count_test_images, load_network, load_onnx_network
from ..harness.result_cache import cached
from ..harness.runner import REPO, SIMULATORS
from ..synth.area import preset_area
from ..synth.calibration import energy_model
from ..synth.system import ON_CHIP, with_dram
from ..techniques import BASELINE, TECHNIQUES, Run, check_options
from .markdown import write_report

__all__ = ["demo", "evaluate", "DEMO_DIR", "EVALUATE_DIR"]

DEMO_DIR = REPO / "reports" / "demo"
EVALUATE_DIR = REPO / "reports" / "evaluate"
ACCURACY_DROP_POINTS = 5  # a technique's model further below its INT8 network is flagged in the summary and report


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
    """RTL checks of one demo run on ``net``: each cached by its inputs and sources, re-simulated for the techniques
    in ``fresh``, its rows with their DRAM traffic (``synth.system.with_dram``); all recorded. A technique's own
    runs and the dense baselines run on ``sim``; its comparisons (other roles) on the golden models unless
    ``rtl_comparisons``."""

    def __init__(self, sim, fresh, progress, net, rtl_comparisons):
        self.sim, self.fresh, self.progress, self.net, self.checks = sim, fresh, progress, net, []
        self.rtl_comparisons = rtl_comparisons

    def check(self, technique, role, step, cfg, *args, **kw):
        t = time.perf_counter()
        sim = self.sim if role == "technique" or technique == BASELINE.name or self.rtl_comparisons else None
        rows, reused = cached(f"{cfg.module}-{sim or 'golden'}", step, cfg, sim, *args,
                              fresh=technique in self.fresh, keep=rows_bit_exact, log=self.progress.detail, **kw)
        rows = with_dram(rows, cfg.macs, self.net.qnet, self.net.data.x_test[0])
        self.checks.append({"technique": technique, "role": role, "module": cfg.module, "rows": rows, "sim": sim})
        bad = sum(not rows_bit_exact([r]) for r in rows)
        how = ("reused (same Verilog, inputs and golden)" if reused else
               f"{'simulated' if sim else 'computed'} in {time.perf_counter() - t:.1f} s")
        self.progress.detail(f"{technique}: {cfg.module} ({role}) on {sim or 'the golden models'}: {len(rows)} "
                             f"layers, {'all bit-exact' if not bad else f'{bad} MISMATCHING'}, "
                             f"{sum(r['cycles'] for r in rows)} cycles; {how}")
        return rows


def _layers(rows, baseline, roles):
    base = {b["layer"]: b for b in baseline}
    for r in rows:   # a technique compares with the baseline on the same images (fc layers: the run's batch)
        if r["images"] != base[r["layer"]]["images"]:
            raise ValueError(f"layer {r['layer']} ran {r['images']} images but the dense baseline "
                             f"{base[r['layer']]['images']}: a technique's fc layers take Run.batch")
    return [{"layer": r["layer"], "role": roles[r["layer"]],
             **{k: r[k] for k in ("preset", "fallback", "tiling") if r.get(k)},
             "images": r["images"],
             "cycles": r["cycles"], "golden_cycles": r["golden_cycles"],
             "dense_cycles": base[r["layer"]]["cycles"], "speedup_vs_dense": base[r["layer"]]["cycles"] / r["cycles"],
             "energy_pj": r["energy_pj"], "energy_parts": r["energy_parts"], "dram_bits": r["dram_bits"],
             "dense_energy_pj": base[r["layer"]]["energy_pj"], "dense_energy_parts": base[r["layer"]]["energy_parts"],
             "energy_vs_dense": r["energy_pj"] / base[r["layer"]]["energy_pj"],
             "multiplications": r["mults"] if "mults" in r else r["macs"], "bit_exact": rows_bit_exact([r]),
             "first_mismatch": r["first_mismatch"], "waveform": r["waveform"]} for r in rows]


def _parts_sum(parts):
    total = {}
    for p in parts:
        for part, pj in p.items():
            total[part] = total.get(part, 0.0) + pj
    return total


def by_role(layers):
    """{role: figures} of a technique's per-layer rows (``_layers``) per image summed over the layers of each role
    (``QuantizedNet.role``): ``layers`` (names), cycles, dense cycles and energy at equal MACs, the speedup and energy
    ratio vs dense, and the layers whose mechanism was off (``fallback``)."""
    out = {}
    for r in layers:
        role = out.setdefault(r["role"], {"layers": [], "cycles": 0, "dense_cycles": 0, "energy_pj": 0.0,
                                          "dense_energy_pj": 0.0, "fallbacks": {}})
        role["layers"].append(r["layer"])
        for key in ("cycles", "dense_cycles", "energy_pj", "dense_energy_pj"):
            role[key] += per_image(r, key)
        if r.get("fallback"):
            role["fallbacks"][r["layer"]] = r["fallback"]
    for role in out.values():
        role["speedup_vs_dense"] = role["dense_cycles"] / role["cycles"]
        role["energy_vs_dense"] = role["energy_pj"] / role["dense_energy_pj"]
    return out


def winners(results):
    """{role: {"fastest": technique, "least_energy": technique}} over the techniques of ``results`` other than the
    baseline, by their ``by_role`` figures (speedup and energy vs dense at each one's MACs)."""
    roles = {}
    for name, t in results.items():
        if name == BASELINE.name:
            continue
        for role, figures in t["by_role"].items():
            roles.setdefault(role, {})[name] = figures
    return {role: {"fastest": max(each, key=lambda n: each[n]["speedup_vs_dense"]),
                   "least_energy": min(each, key=lambda n: each[n]["energy_vs_dense"])}
            for role, each in roles.items()}


def _technique(name, *, model, accuracy, cfg, rows, baseline_cfg, baseline, checks, extra, roles):
    layers = _layers(rows, baseline, roles)
    cycles = sum(per_image(r, "cycles") for r in layers)
    dense_cycles = sum(per_image(r, "dense_cycles") for r in layers)
    energy = sum(per_image(r, "energy_pj") for r in layers)
    dense_energy = sum(per_image(r, "dense_energy_pj") for r in layers)
    own = [c for c in checks if c["technique"] == name and c["sim"]]   # run on RTL
    return {
        "model": model, "accuracy": accuracy, "preset": {"module": cfg.module, **cfg.to_dict(), "macs": cfg.macs},
        "rtl_bit_exact": all(rows_bit_exact(c["rows"]) for c in own),
        "rtl_layers_checked": sum(len(c["rows"]) for c in own),
        "rtl_checks": [f"{c['module']} ({c['role']})" for c in own],
        "golden_comparisons": [f"{c['module']} ({c['role']})" for c in checks
                               if c["technique"] == name and not c["sim"]],
        "cycles": cycles, "dense_baseline": {"module": baseline_cfg.module, "macs": baseline_cfg.macs,
                                             "cycles": dense_cycles, "energy_pj": dense_energy,
                                             "energy_parts": _parts_sum(per_image(r, "dense_energy_parts")
                                                                        for r in layers)},
        "speedup_vs_dense": dense_cycles / cycles, "energy_pj": energy, "energy_vs_dense": energy / dense_energy,
        "energy_parts": _parts_sum(per_image(r, "energy_parts") for r in layers),
        "energy_calibration": energy_model(cfg)["preset"],
        "multiplications": sum(r["multiplications"] for r in layers),
        "area": None, "layers": layers, "by_role": by_role(layers), **extra,
    }


def _on_chip(parts, images):
    """(pJ, parts) per image of energy ``parts`` of ``images`` on chip: without DRAM (``synth.system.ON_CHIP``)."""
    kept = {part: pj / images for part, pj in parts.items() if part in ON_CHIP}
    return sum(kept.values()), kept


def papers(results, conv_layers):
    """The papers table: for each evaluated technique's ``claims``, its on-chip energy (the papers' figure; DRAM
    is the same for both sides at equal MACs) over the claim's baseline measured on our RTL (the whole network, its
    conv layers ``conv_layers`` and each layer), the parts' ratios, and where the technique does not save, the
    ``cause`` (network) and ``cause_conv`` (conv layers): the part whose excess over the baseline is largest."""
    rows = []
    for name, t in results.items():
        for claim in TECHNIQUES[name].claims:
            images = {r["layer"]: r["images"] for r in t["layers"]}   # a claim's rows ran its layers' images
            if claim.baseline == "dense":
                base = {r["layer"]: _on_chip(r["dense_energy_parts"], images[r["layer"]]) for r in t["layers"]}
            else:
                base = {r["layer"]: _on_chip(r["energy_parts"], images[r["layer"]]) for r in t[claim.baseline]}
            own = {r["layer"]: _on_chip(r["energy_parts"], images[r["layer"]]) for r in t[claim.own]
                   if r["layer"] in base}
            network, cause = _saving(own, base, list(own))
            conv, cause_conv = _saving(own, base, [layer for layer in conv_layers if layer in own])
            mine, theirs = _parts_sum(p for _, p in own.values()), _parts_sum(base[x][1] for x in own)
            rows.append({"technique": name, "comparison": claim.label, "baseline": claim.baseline,
                         "measured": network, "measured_conv": conv,
                         "layers": {x: own[x][0] / base[x][0] for x in own},
                         "parts": {part: mine[part] / theirs[part] if theirs.get(part) else None for part in mine},
                         "cause": cause, "cause_conv": cause_conv, "paper": claim.paper, "source": claim.source})
    return rows


def _saving(own, base, layers):
    """(own / base energy over ``layers``, None when below 1 else the part whose excess over the baseline is
    largest, as a share of the baseline's energy); (None, None) without layers."""
    if not layers:
        return None, None
    mine, theirs = _parts_sum(own[x][1] for x in layers), _parts_sum(base[x][1] for x in layers)
    ratio = sum(own[x][0] for x in layers) / sum(base[x][0] for x in layers)
    excess = {part: mine[part] - theirs.get(part, 0.0) for part in mine}
    worst = max(excess, key=excess.get)
    share = excess[worst] / sum(theirs.values())
    return ratio, None if ratio < 1 else f"{worst}: +{share:.0%} of the baseline's energy"


def accuracy_warnings(results, int8_accuracy, *, points=ACCURACY_DROP_POINTS):
    """One line per technique whose model's test accuracy is more than ``points`` below the INT8 network's."""
    return [f"{TECHNIQUES[name].title}'s model has {r['accuracy']:.2%} test accuracy, "
            f"{100 * (int8_accuracy - r['accuracy']):.1f} points below the INT8 network's {int8_accuracy:.2%}"
            for name, r in results.items() if 100 * (int8_accuracy - r["accuracy"]) > points]


def _seeds(net):
    from models.centrosymmetric import fine_tune_centrosymmetric
    from models.dbb_training import DbbConfig
    from models.pruning import fine_tune_pruned

    def default(fn):
        return inspect.signature(fn).parameters["seed"].default

    return {"cnn": net.meta.get("seed"), "data_split": datasets.SPLIT_SEED,
            "dbb_fine_tune": next(f.default for f in dataclasses.fields(DbbConfig) if f.name == "seed"),
            "centrosymmetric_fine_tune": default(fine_tune_centrosymmetric),
            "pruning_fine_tune": default(fine_tune_pruned)}


def _failures(checks, command):
    lines = []
    for check in checks:
        for r in check["rows"]:
            if not rows_bit_exact([r]):
                where = (f"first mismatch at {r['first_mismatch']}; waveform kept at {r['waveform']}"
                         if r["first_mismatch"] else f"cycles {r['cycles']} but golden {r['golden_cycles']}")
                lines.append(f"{command}: {check['technique']} MISMATCH on {check['module']} ({check['role']}) layer "
                             f"{r['layer']}: {where}")
    return lines


def evaluate(network="digits", *, model=None, data=None, techniques=None, sim="verilator", images=4, batch=BATCH,
             synth=True, fresh=False, options=None, rtl_comparisons=False, out_dir=DEMO_DIR,
             title="zeroskip demo report", command="evaluate", log=print):
    """Run ``techniques`` (names, default all) on the built-in ``network``, or on the ONNX ``model`` with its
    ``data`` (.npz, ``harness.network.load_onnx_network``), and write ``out_dir``/{summary.json,
    report.md, *.png}; return 0 when every RTL output and cycle count matched golden, 1 otherwise (each mismatch printed
    with its layer, technique, coordinates and waveform, and marked in the summary and report). ``fresh``
    (True or technique names) re-simulates those techniques' RTL checks instead of reusing cached results;
    ``options`` ({option: value}) are the techniques' run options (``Technique.options``, e.g. ``tiling``); ``batch``
    the fc layers' images a job (``harness.activations.fc_batch``);
    ``rtl_comparisons`` runs each technique's comparisons (SA-ZVCG, SCNN, MoR without predictor, one-sided SnaPEA)
    on the RTL too, not only on the golden models (their builds cost minutes on a fresh machine)."""
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    names = list(TECHNIQUES) if techniques is None else list(techniques)
    unknown = [n for n in names if n not in TECHNIQUES]
    if unknown or not names:
        raise ValueError(f"techniques are {', '.join(TECHNIQUES)}, not {','.join(unknown) or 'none'}")
    if BASELINE.name not in names:
        names.insert(0, BASELINE.name)  # every technique's speedup is against the baselines
    names = [n for n in TECHNIQUES if n in names]
    check_options([TECHNIQUES[n] for n in names], options)
    check_batch(batch)
    fresh = set(names) if fresh is True else set(fresh or ())
    if not fresh <= set(TECHNIQUES):
        raise ValueError(f"fresh names techniques of {', '.join(TECHNIQUES)}, not {sorted(fresh - set(TECHNIQUES))}")
    if (model is None) != (data is None):
        raise ValueError("an ONNX model needs its data: give both --model and --data")
    if model is None:
        check_network(network)
    progress = _Progress(log)
    net = None
    if model:  # the import checks the model and its data before anything runs
        with progress.stage(f"network: import {model}, INT8 export"):
            net = load_onnx_network(model, data, log=progress.detail)
    check_images(images, len(net.data.y_test) if net else count_test_images(network))
    if net is None:
        with progress.stage(f"network: train or reuse the {network} CNN, INT8 export"):
            net = load_network(network, log=progress.detail)
    chosen = [TECHNIQUES[n] for n in names]
    areas = None
    if synth:  # synthesis runs in two processes beside the simulations (cached by each preset's Verilog), the
        # largest presets first: a fresh clone's demo took 299 s with one, where Yosys ran 95 s past the last
        # simulation, and 277 s with two
        pool = ProcessPoolExecutor(max_workers=2)
        wanted = {cfg.module: cfg for t in chosen for cfg in t.areas(comparisons=rtl_comparisons)}
        areas = {module: pool.submit(preset_area, cfg)
                 for module, cfg in sorted(wanted.items(), key=lambda item: -item[1].macs)}
        progress.say(f"synthesis of {', '.join(areas)} started in the background")
    rtl = _Rtl(sim, fresh, progress, net, rtl_comparisons)

    macs = tuple(sorted({t.cfg.macs for t in chosen}))
    fc = fc_batch(net.data.x_test, images, batch)
    run = Run(net=net, images=net.data.x_test[:images], sim=sim, check=rtl.check, log=progress.detail, macs=macs,
              options=dict(options or {}), batch=fc)
    results = {}
    for technique in chosen:
        with progress.stage(technique.stage):
            result = technique.run(run)
        cfg = technique.cfg
        baseline_cfg = BASELINE.at(cfg.macs)
        results[technique.name] = _technique(
            technique.name, model=result.model, accuracy=result.accuracy, cfg=cfg, rows=result.rows,
            baseline_cfg=baseline_cfg, baseline=run.baselines[cfg.macs], checks=rtl.checks, extra=result.extra,
            roles={layer.name: net.qnet.role(layer) for layer in net.qnet.computes})

    if synth:
        with progress.stage("synthesis (Yosys generic cells; RAM leaves kept as SRAM macros)"):
            done = {module: future.result() for module, future in areas.items()}
            pool.shutdown()
            for technique in chosen:
                results[technique.name].update(technique.area(done))
            for module, r in done.items():
                progress.detail(f"{module}: {r['logic_cells']} logic cells, {r['ram_bits']} RAM bits")

    failures = _failures(rtl.checks, command)
    warnings = accuracy_warnings(results, net.int8_accuracy)
    summary = {
        **results,
        "bit_exact": not failures,
        "accuracy_warnings": warnings,
        "papers": papers(results, [layer.name for layer in net.qnet.computes if layer.kind == "conv"]),
        "winners_by_role": winners(results),
        "dataset": {"name": net.data.name, "train": 0 if net.post_training else len(net.data.y_train),
                    "post_training": net.post_training, "test": len(net.data.y_test),
                    "rtl_images": f"test images 0..{images - 1}", "images": images,
                    "fc_batch": batch, "fc_images": len(fc.images)},
        "network": net.meta,
        "presets": {name: results[name]["preset"]["module"] for name in names} |
                   {f"dense_at_{m}_macs": BASELINE.at(m).module for m in macs},
        "seeds": _seeds(net),
        "sim": sim,
        "options": dict(options or {}),
        "rtl_comparisons": rtl_comparisons,
        "stages_seconds": progress.stages,
        "wall_seconds": round(time.perf_counter() - progress.start, 1),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / "papers.json").write_text(json.dumps(summary["papers"], indent=2) + "\n")
    overview = write_report(summary, out_dir, title=title)
    print()
    print(overview)
    print()
    for line in failures:
        print(line, file=sys.stderr)
    for line in warnings:
        print(f"{command}: warning: {line}", file=sys.stderr)
    progress.say(f"{'all techniques bit-exact' if not failures else f'{len(failures)} MISMATCHING layer(s)'}; "
                 f"wrote {out_dir / 'summary.json'}, {out_dir / 'report.md'} and plots")
    return 1 if failures else 0


def demo(*, sim="verilator", images=4, batch=BATCH, synth=True, fresh=False, options=None, rtl_comparisons=False,
         out_dir=DEMO_DIR, log=print):
    """``evaluate`` of every technique on the digits network into reports/demo/."""
    return evaluate(sim=sim, images=images, batch=batch, synth=synth, fresh=fresh, options=options,
                    rtl_comparisons=rtl_comparisons, out_dir=out_dir, command="demo", log=log)
