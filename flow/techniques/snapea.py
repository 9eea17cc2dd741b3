"""SnaPEA: the network globally magnitude-pruned at the seed report's sparsities (fine-tuned, cached, INT8), its
sign-sorted exact mode on the two-sided ``snapea`` array beside the one-sided one, and the algorithms' counts."""

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from generators.config import preset
from golden.snapea import ALGORITHMS, run_algorithm
from models.quantize import QuantizedNet, quantize

from ..harness.activations import conv_inputs, group_convs, layer_inputs, layer_jobs, no_relu, raised_bias
from ..harness.check import summed
from ..harness.drivers.snapea import SnapeaDriver, pe_shape
from ..harness.network import CACHE
from . import Bars, Claim, Result, Table, Target, Technique, check_jobs

__all__ = ["PrunedModel", "pruned_models", "multiplications", "nonnegative", "snapea_jobs", "check_snapea_layers",
           "RTL_SPARSITY", "TECHNIQUE"]

ORDER = 4
ALGORITHMS_SHOWN = ("conv2d", "compressed", "snapea", "proposal1", "proposal2")
RTL_SPARSITY = 0.5  # the pruned network the demo and compare run on the PE arrays (the report's middle setting)


@dataclass(frozen=True)
class PrunedModel:
    sparsity: float           # the global pruning target
    qnet: QuantizedNet
    accuracy: float           # INT8 test accuracy
    zero_weights: float       # measured fraction of zero INT8 conv weights
    reused: bool


def pruned_models(net, *, log=print):
    """{sparsity: PrunedModel} for SPARSITIES; 0 is ``net``'s own INT8 network (no fine-tuning)."""
    from models.pruning import SPARSITIES, load_or_fine_tune_pruned  # torch loads with the models

    base = net.model
    out = {}
    for sparsity in SPARSITIES:
        start = time.perf_counter()
        if sparsity == 0:
            qnet, reused, accuracy = net.qnet, True, net.int8_accuracy
        else:
            model, reused = load_or_fine_tune_pruned(
                base, net.key, net.data, CACHE, sparsity, epochs=net.fine_tune_epochs(15),
                progress=lambda it, s=sparsity: tqdm(it, desc=f"fine-tune {s:.0%} pruned", leave=False))
            qnet = quantize(model, net.data.x_train)
            accuracy = qnet.accuracy(net.data.x_test, net.data.y_test)
        weights = np.concatenate([layer.w.reshape(-1) for layer in qnet.convs])
        out[sparsity] = PrunedModel(sparsity, qnet, accuracy, float((weights == 0).mean()), reused)
        log(f"  {sparsity:.0%} global pruning: {'reused' if reused else net.trained('fine-tuned')} in "
            f"{time.perf_counter() - start:.1f} s, {out[sparsity].zero_weights:.1%} zero INT8 conv weights, "
            f"INT8 test accuracy {accuracy:.2%}")
    return out


def multiplications(qnet, images):
    """Per conv layer: multiplications of each algorithm summed over ``images``, and the activation sparsity."""
    acts = conv_inputs(qnet, images)
    rows = []
    for layer in qnet.convs:
        row = {"layer": layer.name, "activation_zeros": float((acts[layer.name] == 0).mean()),
               "weight_zeros": float((layer.w == 0).mean()), **{name: 0 for name in ALGORITHMS}}
        signed = bool((acts[layer.name] < 0).any())
        for x, w, bias in (conv for image in acts[layer.name] for conv in group_convs(layer, image)):
            x, w = nonnegative(x, w, signed)
            outputs = {name: run_algorithm(name, x, w, bias, pad=layer.pad, stride=layer.stride)
                       for name in ALGORITHMS}
            for name, out in outputs.items():
                if not np.array_equal(out["y"], outputs["conv2d"]["y"]):
                    raise AssertionError(f"{name} differs from ReLU(conv2d + bias) on {layer.name}")
                row[name] += out["mults"]
        rows.append(row)
    return rows


SIGNED = "signed input: x = x+ - x- as 2C non-negative channels (weights w, -w), early termination exact on them"


def nonnegative(x, w, signed):
    """``(x, w)`` of a convolution SnaPEA's early termination runs exactly: as they are, or for a ``signed`` input
    (a network input normalised to negative values) its positive and negative parts as 2C channels, x+ = max(x, 0)
    and x- = max(-x, 0) with weights w and -w (conv(x, w) = conv(x+, w) + conv(x-, -w); x within ±127)."""
    if not signed:
        return x, w
    return (np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)]).astype(np.int8),
            np.concatenate([w, -w], axis=1).astype(np.int8))


def snapea_jobs(cfg, qnet, acts, layers, size=1):
    """``Target.jobs`` of a SnaPEA array: each named layer (``layer_jobs``: an fc layer as a 1×1 convolution of
    ``size`` images as pixels, a grouped conv one job per group; a layer without ReLU in one pass with its biases
    raised, ``raised_bias``, where nothing terminates early; a signed input as non-negative channels,
    ``nonnegative``) on ``cfg`` or its memory variant."""
    jobs = {}
    for layer in qnet.computes:
        if layer.name not in layers:
            continue
        signed = bool((acts[layer.name] < 0).any())
        convs = [(*nonnegative(x, w, signed), bias) for x, w, bias in layer_jobs(layer, acts[layer.name], size)]
        # every group's filters fit the variant's memories
        variant = memory_variant(cfg, convs[0][0], np.concatenate([w for _, w, _ in convs[:layer.groups]]),
                                 layer.pad, layer.stride)
        batch = [SnapeaDriver.validate(variant, {"x": x, "w": w, "bias": raised_bias(layer, w, bias)[0],
                                                 "pad": layer.pad, "stride": layer.stride}) for x, w, bias in convs]
        why = "; ".join(([SIGNED] if signed else []) + ([] if layer.relu else [no_relu(layer)])) or None
        n = len(acts[layer.name])
        jobs[layer.name] = (variant, batch, lambda name, batch, results, goldens, v=variant, n=n, why=why: {
            "images": n, "preset": v.module, "fallback": why, "mults": summed(results, "mults")})
    return jobs


def check_snapea_layers(cfg, sim, qnet, images, *, batch=None, layers=None, log=print):
    """One row per compute layer on a SnaPEA array (``snapea_jobs``; fc layers as the ``FcBatch`` ``batch`` says,
    None: image by image): images, products, RTL and golden cycles (summed), mismatches."""
    jobs = snapea_jobs(cfg, qnet, layer_inputs(qnet, images, batch=batch),
                       layers or [layer.name for layer in qnet.computes], batch.size if batch else 1)
    return check_jobs(SnapeaDriver, sim, jobs, log=log)


def memory_variant(cfg, x, w, pad, stride):
    """``cfg`` when the layer fits its memories, else the same array with the input, output-pixel and weight
    memories grown to the next power of two that holds them (memory depths are structural: a variant preset
    ``<name>_x<max_x>_p<max_pixels>_e<max_entries>``, its own Verilog). A reduction is never split
    (docs/cosim.md)."""
    _, h_out, w_out = pe_shape(x, w, pad, stride)
    entries = int((w != 0).reshape(len(w), -1).sum(axis=1).max())
    need = {"max_x": max(8, int(x.size)), "max_pixels": h_out * w_out, "max_entries": entries}
    grown = {k: max(getattr(cfg, k), 1 << (v - 1).bit_length()) for k, v in need.items()}
    if all(grown[k] == getattr(cfg, k) for k in grown):
        return cfg
    name = f"{cfg.name}_x{grown['max_x']}_p{grown['max_pixels']}_e{grown['max_entries']}"
    return dataclasses.replace(cfg, name=name, **grown)


class Snapea(Technique):
    name, title, color = "snapea", "SnaPEA", "tab:red"
    claims = (Claim("SnaPEA two- vs one-sided (same network)", "one_sided", None, "no figure in the papers"),
              Claim("SnaPEA (exact mode) vs dense at equal MACs", "dense", 1 - 0.16,
                    "SnaPEA report: exact mode 16% less energy than Eyeriss"))
    block = ("snapea", "default")
    blocks = ("snapea",)
    # one-sided early termination responds to negative pre-activations, not input density
    targets = {"snapea": Target(SnapeaDriver, snapea_jobs, accepts=lambda cfg: None if cfg.two_sided else
                                "one-sided SnaPEA responds to negative pre-activations, not input density")}
    stage = "snapea: global pruning, sign-sorted weights, snapea RTL two- and one-sided"

    def derive(self, net, *, log=print):
        pruned_models(net, log=log)

    def comparisons(self, net, sim, *, images, array_images, log=print):
        pruned = pruned_models(net, log=log)[RTL_SPARSITY]
        return [(f"snapea/{name}", r, f"{r['images']} image(s), {RTL_SPARSITY:.0%} pruned")
                for name in ("default", "one_sided")
                for r in check_snapea_layers(preset("snapea", name), sim, pruned.qnet, net.data.x_test[:array_images],
                                             log=log)]

    def rows(self, net, cfg, sim, images, *, batch=None, layers=None, options=None, log=print):
        return check_snapea_layers(cfg, sim, pruned_models(net, log=log)[RTL_SPARSITY].qnet, images, batch=batch,
                                   layers=layers, log=log)

    def run(self, run):
        models = pruned_models(run.net, log=run.log)
        chosen = models[RTL_SPARSITY].qnet
        rows = run.check(self.name, "technique", check_snapea_layers, self.cfg, chosen, run.images, batch=run.batch)
        one = run.check(self.name, "one-sided", check_snapea_layers, preset("snapea", "one_sided"), chosen,
                        run.images, batch=run.batch)
        return Result(f"{RTL_SPARSITY:.0%} global magnitude pruning, {run.net.trained('fine-tuned')}, exact mode",
                      models[RTL_SPARSITY].accuracy, rows,
                      {"model_accuracy": {f"{s:.2f}": m.accuracy for s, m in models.items()},
                       "algorithms": multiplications(chosen, run.images),
                       "one_sided": [{"layer": r["layer"], "cycles": r["cycles"], "multiplications": r["mults"],
                                      "energy_pj": r["energy_pj"], "energy_parts": r["energy_parts"]} for r in one]})

    def section(self, entry, summary):
        rtl = {r["layer"]: r["multiplications"] for r in entry["layers"]}
        return [
            Bars("snapea_mults.png", [r["layer"] for r in entry["algorithms"]],
                 {**{name: [r[name] for r in entry["algorithms"]] for name in ALGORITHMS_SHOWN},
                  "two-sided PE array (RTL)": [rtl[r["layer"]] for r in entry["algorithms"]]},
                 ylabel="multiplications", title="SnaPEA: multiplications by algorithm (the pruned network)", log=True),
            "INT8 test accuracy by global sparsity: "
            + ", ".join(f"{float(s):.0%} {a:.2%}" for s, a in entry["model_accuracy"].items()) + ".", "",
            Table(entry["algorithms"], [("layer", lambda r: r["layer"]),
                                        *((f"{n} mults", lambda r, n=n: str(r[n])) for n in ALGORITHMS_SHOWN)]), "",
            Table(list(zip(entry["layers"], entry["one_sided"])), [
                ("layer (RTL)", lambda p: p[0]["layer"]),
                ("two-sided products", lambda p: str(p[0]["multiplications"])),
                ("one-sided products", lambda p: str(p[1]["multiplications"])),
                ("two-sided cycles", lambda p: str(p[0]["cycles"])),
                ("one-sided cycles", lambda p: str(p[1]["cycles"])),
                ("speedup", lambda p: f"{p[1]['cycles'] / p[0]['cycles']:.2f}x"),
                ("energy vs one-sided", lambda p: f"{p[0]['energy_pj'] / p[1]['energy_pj']:.2f}x")]), "",
            "![SnaPEA multiplications](snapea_mults.png)"]


TECHNIQUE = Snapea()
