"""`zeroskip train` and `zeroskip holistic` (docs/flow.md, Holistic training): the holistic paper's loop on our RTL.

Per network and target block: a cycle model per conv layer, fitted on the target's golden cycle model (which the
RTL tests prove exact) at real activations thinned to several densities and confirmed on RTL; networks fine-tuned
with ``none``, ``l1``, ``targeting`` and ``holistic`` regularisation, one global strength each searched until the
INT8 test accuracy is ``budget`` points below the unregularised fine-tuning's (the same budget on the same
images for every method); and every conv layer of fixed test images of each result run on the target's RTL,
bit-exact against golden. Targets are the ``TARGETS`` techniques list.
"""

import json
import time

import numpy as np
from tqdm import tqdm

from generators.config import CATALOG
from models.holistic import METHODS, Regulariser, conv_relus, load_or_fine_tune_regularised, search_strength
from models.networks import check_network
from models.quantize import quantize

from ..harness.activations import conv_inputs, layer_inputs, thin
from ..harness.cosim import rows_bit_exact
from ..harness.network import CACHE, check_images, count_test_images, load_network
from ..harness.runner import REPO, SIMULATORS
from ..synth.calibration import energy_pj
from ..synth.system import dram_pj, layer_dram_bits
from ..techniques import TARGETS, check_jobs
from .markdown import table

__all__ = ["parse_target", "fit_cost_model", "linear_fit", "measure", "train_method", "train", "holistic",
           "write_report", "DEFAULT_TARGETS", "HOLISTIC_DIR", "TRAIN_DIR", "ALPHA", "BETA"]

HOLISTIC_DIR = REPO / "reports" / "holistic"
TRAIN_DIR = REPO / "reports" / "train"
DEFAULT_TARGETS = ("cscnn_pe", "scnn_pe", "snapea")
KEEP = (1.0, 0.85, 0.7, 0.55, 0.4, 0.3, 0.2, 0.1)  # fractions of a layer's non-zero activations kept
FITTED = (1.0, 0.7, 0.4, 0.2, 0.1)                  # the densities fitted; the others are held out
ON_RTL = (1.0, 0.4)                                 # the densities confirmed on RTL
DENSITY_IMAGES = 200                                # test images whose conv-input densities are reported
ALPHA, BETA = 0.5, 0.5                              # the paper's weights of energy (α) and cycles (β) in λ_l


def parse_target(text):
    """``BLOCK[/PRESET]`` → (key, block, cfg): a block of ``TARGETS`` and a preset that responds to input density."""
    block, _, name = str(text).partition("/")
    if block not in TARGETS:
        raise ValueError(f"unknown target {block!r}; targets are {', '.join(TARGETS)}")
    name = name or "default"
    if name not in CATALOG[block]:
        raise ValueError(f"unknown preset {name!r} of {block}; presets are {', '.join(CATALOG[block])}")
    cfg = CATALOG[block][name]
    why = TARGETS[block].accepts(cfg)
    if why:
        raise ValueError(f"target {text}: {why}")
    return (block if name == "default" else f"{block}/{name}"), block, cfg


def _check_settings(networks, targets, budget, images, epochs, steps, sim):
    for network in networks:
        check_network(network)
    parsed = [parse_target(t) for t in targets]
    if not networks or not parsed:
        raise ValueError("name at least one network and one target")
    if not (isinstance(budget, (int, float)) and np.isfinite(budget) and budget > 0):
        raise ValueError(f"budget must be a positive number of accuracy points, not {budget}")
    for network in networks:
        check_images(images, count_test_images(network))
    for what, value, low in (("epochs", epochs, 1), ("steps", steps, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{what} must be an integer of at least {low}, not {value!r}")
    if sim not in SIMULATORS:
        raise ValueError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    return parsed


def _layer_jobs(block, cfg, qnet, name, x):
    return TARGETS[block].jobs(cfg, qnet, {name: x}, [name])[name]


def fit_cost_model(block, cfg, qnet, images, sim, *, log=print):
    """{conv layer: {slope, intercept, r2, heldout_error, energy, points}}: cycles per image = slope·D + intercept, D
    the layer's input density (``linear_fit``), from the golden cycles at the KEEP thinnings of the real activations
    of ``images``, and ``energy`` the same fit of pJ per image (on chip from the golden counts and traffic, plus the
    layer's DRAM traffic); the ON_RTL points also hold their RTL run (``rtl``: cycles per image, mismatches)."""
    acts = layer_inputs(qnet, images)
    driver, model, on_rtl = TARGETS[block].driver, {}, {}   # the ON_RTL points run on RTL together at the end
    for layer in qnet.convs:
        points = []
        dram = dram_pj(layer_dram_bits(layer, acts[layer.name].shape[1:], 1, cfg.macs))   # per image, any density
        for keep in KEEP:
            x = np.stack([thin(a, keep) for a in acts[layer.name]])
            variant, batch, fields = _layer_jobs(block, cfg, qnet, layer.name, x)
            goldens = [driver.golden(variant, args) for args in batch]
            point = {"keep": keep, "density": float(np.count_nonzero(x) / x.size),
                     "cycles": sum(c for _, c in goldens) / len(images),
                     "energy_pj": sum(energy_pj(variant, args, *g, log=log) for args, g in zip(batch, goldens))
                     / len(images) + dram}
            if keep in ON_RTL:
                on_rtl[f"{layer.name} keep {keep}"] = (variant, batch, fields), point
            points.append(point)
        model[layer.name] = {**linear_fit(points, "cycles"), "energy": linear_fit(points, "energy_pj"),
                             "points": points}
        f, e = model[layer.name], model[layer.name]["energy"]
        log(f"  cost model {cfg.module} {layer.name}: cycles/image = {f['slope']:.0f}·D + {f['intercept']:.0f}, "
            f"R² {f['r2']:.4f}, held-out error {f['heldout_error']:.2%}; pJ/image = {e['slope']:.0f}·D + "
            f"{e['intercept']:.0f}, R² {e['r2']:.4f}, held-out error {e['heldout_error']:.2%}")
    for row in check_jobs(driver, sim, {name: job for name, (job, _) in on_rtl.items()}, log=log):
        on_rtl[row["layer"]][1]["rtl"] = {"cycles": row["cycles"] / len(images), "mismatches": row["mismatches"]}
    return model


def linear_fit(points, measure):
    """{slope, intercept, r2, heldout_error} of ``measure`` = slope·density + intercept, least squares over the
    FITTED points; ``heldout_error`` the largest relative error at the others. Energy, once measured per point, is
    one more call."""
    fitted = [p for p in points if p["keep"] in FITTED]
    d, y = np.array([p["density"] for p in fitted]), np.array([p[measure] for p in fitted])
    slope, intercept = np.polyfit(d, y, 1)
    residual, spread = float(((y - (slope * d + intercept)) ** 2).sum()), float(((y - y.mean()) ** 2).sum())
    held = [abs(slope * p["density"] + intercept - p[measure]) / p[measure]
            for p in points if p["keep"] not in FITTED]
    return {"slope": float(slope), "intercept": float(intercept), "r2": 1.0 - residual / spread if spread else 1.0,
            "heldout_error": float(max(held))}


def _base(net, block, *, log):
    """(torch model, cache key) the target starts from: the network's own, or its centrosymmetric retraining."""
    from models.centrosymmetric import load_or_fine_tune_centrosymmetric  # torch loads with the models

    if not TARGETS[block].centrosymmetric:
        return net.model, net.key
    model, reused = load_or_fine_tune_centrosymmetric(
        net.model, net.key, net.data, CACHE, epochs=net.fine_tune_epochs(15),
        progress=lambda it: tqdm(it, desc="retrain centrosymmetric", leave=False))
    log(f"  base: centrosymmetric {'reused' if reused else 'retrained'}")
    return model, f"{net.key}-centrosymmetric"


def _weights(method, base, qnet, cost):
    """Per regularised conv index: 1 for the uniform methods; for ``holistic`` λ_l ∝ α·e_l + β·c_l, e_l and c_l the
    fitted energy and cycle slopes (per unit density, clipped at 0) each scaled to mean 1 over the regularised
    layers (so α and β weigh two unitless terms), the sum scaled to mean 1."""
    layers = sorted(conv_relus(base))
    if method != "holistic":
        return tuple((c, 1.0) for c in layers)
    terms = {c: 0.0 for c in layers}
    for weight, slope in ((ALPHA, lambda f: f["energy"]["slope"]), (BETA, lambda f: f["slope"])):
        slopes = {c: max(slope(cost[qnet.convs[c].name]), 0.0) for c in layers}
        mean = sum(slopes.values()) / len(slopes) if slopes else 0.0
        for c in layers:
            terms[c] += weight * slopes[c] / mean if mean > 0 else 0.0
    mean = sum(terms.values()) / len(terms) if terms else 0.0
    if mean <= 0:
        raise ValueError("the cost model gives no regularised layer a positive slope: holistic has nothing to weigh")
    return tuple((c, t / mean) for c, t in terms.items())


def measure(block, cfg, qnet, images, sim, *, log=print):
    """Every conv layer of ``images`` on the target's RTL against golden: (rows, cycles, golden cycles, exact)."""
    acts = layer_inputs(qnet, images)
    jobs = TARGETS[block].jobs(cfg, qnet, acts, [layer.name for layer in qnet.convs])
    rows = check_jobs(TARGETS[block].driver, sim, jobs, log=log)
    exact = rows_bit_exact(rows)
    return rows, sum(r["cycles"] for r in rows), sum(r["golden_cycles"] for r in rows), exact


def train_method(net, block, cfg, method, *, budget, epochs, steps, images, sim, cost=None, log=print):
    """One network fine-tuned with ``method`` for a target, its strength the largest searched whose INT8 test
    accuracy is at least the unregularised fine-tuning's minus ``budget`` points; measured: its figures for
    summary.json."""
    base, base_key = _base(net, block, log=log)
    data = net.data
    centrosymmetric = TARGETS[block].centrosymmetric

    def trained(reg):
        model, reused, path = load_or_fine_tune_regularised(
            base, base_key, data, CACHE, reg, epochs=epochs, centrosymmetric=centrosymmetric,
            progress=lambda it: tqdm(it, desc=f"fine-tune {reg.method} {reg.strength:.3g}", leave=False))
        qnet = quantize(model, data.x_train)
        return qnet, qnet.accuracy(data.x_test, data.y_test), path

    floor = trained(Regulariser("none"))[1] - budget / 100
    tried = {}
    reg = Regulariser("none")
    if method != "none":
        weights = _weights(method, base, trained(reg)[0], cost)

        def score(strength):
            accuracy = trained(Regulariser(method, strength, weights))[1]
            log(f"  {method} strength {strength:.4g}: INT8 test accuracy {accuracy:.2%} (floor {floor:.2%})")
            return accuracy

        strength, tried = search_strength(score, floor, steps=steps)
        reg = Regulariser(method, strength, weights) if strength else reg
    qnet, accuracy, path = trained(reg)
    rows, cycles, golden, exact = measure(block, cfg, qnet, images, sim, log=log)
    densities = {name: float(np.count_nonzero(x) / x.size)
                 for name, x in conv_inputs(qnet, net.data.x_test[:DENSITY_IMAGES]).items()}
    return {"accuracy": accuracy, "floor": floor, "rtl_cycles": int(cycles), "golden_cycles": int(golden),
            "energy_pj": sum(r["energy_pj"] for r in rows),
            "rtl_bit_exact": exact, "densities": densities, "strength": reg.strength,
            "weights": {qnet.convs[c].name: w for c, w in reg.weights},
            "tried": {f"{s:.6g}": a for s, a in tried.items()},
            "checkpoint": str(path), "layers": [{k: r[k] for k in ("layer", "images", "cycles", "golden_cycles",
                                                                   "energy_pj", "mismatches", "preset")}
                                                for r in rows]}


def train(network, target, method, *, budget=1.0, images=2, sim="verilator", epochs=8, steps=4, out_dir=None,
          log=print):
    """`zeroskip train`: one network for one target and method; writes OUT/train.json. Exit 0, or 1 when the RTL
    differed from golden."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; methods are {', '.join(METHODS)}")
    (key, block, cfg), = _check_settings([network], [target], budget, images, epochs, steps, sim)
    out_dir = out_dir or TRAIN_DIR / f"{network}-{key.replace('/', '-')}-{method}"
    net = load_network(network, log=log)
    cost = None
    if method == "holistic":
        base_qnet = quantize(_base(net, block, log=log)[0], net.data.x_train)
        cost = fit_cost_model(block, cfg, base_qnet, net.data.x_test[:images], sim, log=log)
    result = train_method(net, block, cfg, method, budget=budget, epochs=epochs, steps=steps,
                          images=net.data.x_test[:images], sim=sim, cost=cost, log=log)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {"network": network, "target": key, "method": method, "budget_points": budget, **result}
    if cost is not None:
        figures["cost_model"] = {layer: {k: v for k, v in f.items() if k != "points"} for layer, f in cost.items()}
    (out_dir / "train.json").write_text(json.dumps(figures, indent=1))
    log(f"{method} on {key}: INT8 test accuracy {result['accuracy']:.2%}, {result['rtl_cycles']} RTL cycles "
        f"({'bit-exact' if result['rtl_bit_exact'] else 'RTL MISMATCH'}); wrote {out_dir / 'train.json'}")
    return 0 if result["rtl_bit_exact"] else 1


def holistic(networks=("digits", "lenet5"), targets=DEFAULT_TARGETS, *, budget=1.0, images=2, sim="verilator",
             epochs=8, steps=4, out_dir=None, log=print):
    """`zeroskip holistic`: methods × targets × networks; writes OUT/summary.json, report.md and plots. Exit 0, or 1
    when any RTL run differed from golden."""
    parsed = _check_settings(list(networks), list(targets), budget, images, epochs, steps, sim)
    out_dir = out_dir or HOLISTIC_DIR
    start = time.perf_counter()
    summary = {"settings": {"budget_points": budget, "images": images, "sim": sim, "epochs": epochs,
                            "search_steps": steps, "keep_fitted": FITTED, "keep_held_out":
                            [k for k in KEEP if k not in FITTED], "keep_on_rtl": ON_RTL}, "cost_model": {}}
    for network in networks:
        net = load_network(network, log=log)
        x = net.data.x_test[:images]
        summary[network], summary["cost_model"][network] = {}, {}
        for key, block, cfg in parsed:
            log(f"[{time.perf_counter() - start:6.1f} s] {network} on {key}: cost model")
            base_qnet = quantize(_base(net, block, log=log)[0], net.data.x_train)
            cost = fit_cost_model(block, cfg, base_qnet, x, sim, log=log)
            summary["cost_model"][network][key] = cost
            summary[network][key] = {}
            for method in tqdm(METHODS, desc=f"{network} {key}", leave=False):
                log(f"[{time.perf_counter() - start:6.1f} s] {network} on {key}: {method}")
                summary[network][key][method] = train_method(net, block, cfg, method, budget=budget, epochs=epochs,
                                                             steps=steps, images=x, sim=sim, cost=cost, log=log)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    write_report(summary, out_dir)
    exact = all(m["rtl_bit_exact"] for network in networks for t in summary[network].values() for m in t.values())
    exact &= all(p["rtl"]["mismatches"] == 0 and p["rtl"]["cycles"] == p["cycles"]
                 for t in summary["cost_model"].values() for layers in t.values() for f in layers.values()
                 for p in f["points"] if "rtl" in p)
    log(f"[{time.perf_counter() - start:6.1f} s] {'all RTL runs bit-exact' if exact else 'RTL MISMATCHES'}; wrote "
        f"{out_dir / 'summary.json'} and report.md")
    return 0 if exact else 1


MARKERS = {"none": "o", "l1": "s", "targeting": "^", "holistic": "*"}


def _networks(summary):
    return [k for k in summary if k not in ("settings", "cost_model")]


def write_report(summary, out_dir):
    """``out_dir``/report.md, pareto.png (test accuracy vs whole-network RTL cycles) and densities.png (conv-input
    density per layer, method and target) from a ``holistic`` summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    networks = _networks(summary)
    targets = list(summary[networks[0]])
    s = summary["settings"]
    lines = ["# zeroskip holistic training: cost-aware activation sparsity on our RTL", "",
             f"Budget: {s['budget_points']} point(s) of INT8 test accuracy below the unregularised fine-tuning "
             f"(`none`), the same for every method; one global strength per method searched by bisection "
             f"({s['search_steps']} steps once bracketed, {s['epochs']} epochs each); RTL cycles: every conv "
             f"layer of the first {s['images']} test images on {s['sim']}, checked bit-exact against golden.", ""]
    fig, axes = plt.subplots(1, len(networks), figsize=(6.2 * len(networks), 4.4), squeeze=False)
    for ax, network in zip(axes[0], networks):
        rows = []
        for i, target in enumerate(targets):
            by_method = summary[network][target]
            none = by_method["none"]["rtl_cycles"]
            for method, m in by_method.items():
                rows.append({"target": target, "method": method, **m, "speedup": none / m["rtl_cycles"],
                             "energy_vs_none": m["energy_pj"] / by_method["none"]["energy_pj"]})
                ax.scatter(m["rtl_cycles"], 100 * m["accuracy"], marker=MARKERS[method], s=70, color=f"C{i}",
                           label=f"{target} {method}")
            front = _pareto([(m["rtl_cycles"], m["accuracy"]) for m in by_method.values()])
            ax.plot([c for c, _ in front], [100 * a for _, a in front], color=f"C{i}", lw=1, alpha=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("whole-network RTL cycles (conv layers, log)")
        ax.set_ylabel("INT8 test accuracy (%)")
        ax.set_title(f"{network}: accuracy vs RTL cycles (line: Pareto front)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, ncol=2)
        lines += [f"## {network}", "", table(rows, [
            ("target", lambda r: r["target"]), ("method", lambda r: r["method"]),
            ("test accuracy", lambda r: f"{r['accuracy']:.2%}"),
            ("floor", lambda r: f"{r['floor']:.2%}"),
            ("strength", lambda r: f"{r['strength']:.3g}"), ("RTL cycles", lambda r: str(r["rtl_cycles"])),
            ("speedup vs none", lambda r: f"{r['speedup']:.3f}x"),
            ("energy vs none (relative energy, OSU 0.18 µm)",
             lambda r: f"{r['energy_vs_none']:.3f}x"),
            ("bit-exact", lambda r: "yes" if r["rtl_bit_exact"] else "NO"),
            ("conv-input densities", lambda r: ", ".join(f"{k} {v:.2f}" for k, v in r["densities"].items()))]), ""]
    fig.tight_layout()
    fig.savefig(out_dir / "pareto.png", dpi=120)
    plt.close(fig)

    fits = [{"network": n, "target": t, "layer": layer, **f} for n, by_target in summary["cost_model"].items()
            for t, layers in by_target.items() for layer, f in layers.items()]
    worst = max(fits, key=lambda f: f["heldout_error"])
    lines += ["## Cost model", "", "Cycles (and pJ, the block's per-action energy model) per image = slope·D + "
              "intercept, D the conv layer's input density; holistic weighs layers by α·e_l + β·c_l "
              f"(α = {ALPHA}, β = {BETA}, each slope scaled to mean 1), "
              "fitted on the golden cycle model at real activations thinned to keep "
              f"{', '.join(map(str, s['keep_fitted']))} of their non-zeros; held-out at "
              f"{', '.join(map(str, s['keep_held_out']))}; RTL cycles at {', '.join(map(str, s['keep_on_rtl']))}.",
              "", table(fits, [
                  ("network", lambda f: f["network"]), ("target", lambda f: f["target"]),
                  ("layer", lambda f: f["layer"]), ("slope", lambda f: f"{f['slope']:.0f}"),
                  ("intercept", lambda f: f"{f['intercept']:.0f}"), ("R²", lambda f: f"{f['r2']:.4f}"),
                  ("held-out error", lambda f: f"{f['heldout_error']:.2%}"),
                  ("pJ slope", lambda f: f"{f['energy']['slope']:.0f}"),
                  ("pJ held-out error", lambda f: f"{f['energy']['heldout_error']:.2%}"),
                  ("RTL = golden", lambda f: "yes" if all(p["rtl"]["cycles"] == p["cycles"] and
                                                         not p["rtl"]["mismatches"]
                                                         for p in f["points"] if "rtl" in p) else "NO")]), "",
              f"Worst held-out error: {worst['heldout_error']:.2%} ({worst['network']} {worst['target']} "
              f"{worst['layer']}).", ""]

    fig, axes = plt.subplots(len(networks), len(targets), figsize=(4.6 * len(targets), 3.4 * len(networks)),
                             squeeze=False)
    for row, network in zip(axes, networks):
        for ax, target in zip(row, targets):
            by_method = summary[network][target]
            layers = list(by_method["none"]["densities"])
            width = 0.8 / len(by_method)
            for i, (method, m) in enumerate(by_method.items()):
                ax.bar([j + i * width for j in range(len(layers))], [m["densities"][k] for k in layers], width,
                       label=method)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(layers))], layers)
            ax.set_title(f"{network} on {target}", fontsize=9)
            ax.set_ylabel("conv-input density")
            ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out_dir / "densities.png", dpi=120)
    plt.close(fig)
    lines += ["![accuracy vs RTL cycles](pareto.png)", "", "![conv-input density per layer](densities.png)", ""]
    (out_dir / "report.md").write_text("\n".join(lines))


def _pareto(points):
    """The (cycles, accuracy) points no other point beats on both, by cycles."""
    return [p for p in sorted(points) if not any(q[0] <= p[0] and q[1] > p[1] or q[0] < p[0] and q[1] >= p[1]
                                                  for q in points)]
