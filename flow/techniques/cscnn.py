"""CSCNN: the network retrained with centrosymmetric filters and dual-pruned (Table II style: dense,
centrosymmetric, centrosymmetric + dual pruning) on the ``cscnn_pe``, beside the ``scnn_pe`` on the same network."""

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from generators.config import preset
from golden.cscnn import canonical_mask, cartesian_products, is_centrosymmetric
from models.centrosymmetric import load_or_fine_tune_centrosymmetric
from models.quantize import QuantizedNet, quantize

from ..harness.check import check_layers, summed
from ..harness.drivers.cartesian import PeDriver
from ..harness.network import CACHE, as_conv, conv_inputs, layer_inputs
from . import Result, Target, Technique

__all__ = ["CscnnModel", "cscnn_models", "table_ii", "pe_jobs", "check_pe_layers", "PRUNING", "TECHNIQUE"]

ORDER = 2

PRUNING = 0.5  # fraction of dual pairs the pruned model removes


@dataclass(frozen=True)
class CscnnModel:
    name: str
    qnet: QuantizedNet
    accuracy: float
    reused: bool


def cscnn_models(net, *, log=print):
    """{"dense", "centrosymmetric", "cs_pruned"}: retrained from ``net``'s model (cached), quantized, evaluated.

    Every conv layer of the digits CNN has unit stride, so all are centrosymmetric; the classifier is not.
    """
    base = net.model
    models = {"dense": CscnnModel("dense", net.qnet, net.int8_accuracy, True)}
    for name, sparsity in (("centrosymmetric", 0.0), ("cs_pruned", PRUNING)):
        start = time.perf_counter()
        model, reused = load_or_fine_tune_centrosymmetric(
            base, net.key, net.data, CACHE, sparsity=sparsity, epochs=net.fine_tune_epochs(15),
            progress=lambda it, n=name: tqdm(it, desc=f"retrain {n}", leave=False))
        qnet = quantize(model, net.data.x_train)
        for layer in qnet.convs:
            assert is_centrosymmetric(layer.w).all(), f"{name} {layer.name} lost centrosymmetry in quantization"
        accuracy = qnet.accuracy(net.data.x_test, net.data.y_test)
        models[name] = CscnnModel(name, qnet, accuracy, reused)
        log(f"  {name}: {'reused' if reused else 'retrained'} in {time.perf_counter() - start:.1f} s, "
            f"INT8 test accuracy {accuracy:.2%}")
    return models


def table_ii(models, images):
    """Per model: test accuracy, conv weights stored and products per image on each PE (golden counts).

    Weights stored: non-zero conv weights, the canonical half only where a filter is centrosymmetric
    (the CSCNN PE's compressed format). Products: Cartesian products of non-zero operands on the
    SCNN PE (all non-zero weights) and, for centrosymmetric models, the CSCNN PE (canonical half).
    """
    rows = []
    dense_weights = dense_products = None
    for name, model in models.items():
        symmetric = all(is_centrosymmetric(layer.w).all() for layer in model.qnet.convs)
        weights = sum(int(np.count_nonzero(layer.w[..., canonical_mask(*layer.w.shape[2:])] if symmetric else layer.w))
                      for layer in model.qnet.convs)
        acts = conv_inputs(model.qnet, images)
        per_pe = {}
        for pe, reuse in (("scnn", False), ("cscnn", True)):
            if reuse and not symmetric:
                continue
            per_pe[pe] = sum(cartesian_products(x, layer.w, reuse=reuse)
                             for layer in model.qnet.convs for x in acts[layer.name]) / len(images)
        products = per_pe.get("cscnn", per_pe["scnn"])
        dense_weights = dense_weights or weights
        dense_products = dense_products or products
        rows.append({"model": name, "accuracy": model.accuracy, "conv_weights": weights,
                     "weight_reduction": round(dense_weights / weights, 3),
                     "scnn_products_per_image": per_pe["scnn"], "cscnn_products_per_image": per_pe.get("cscnn"),
                     "product_reduction": round(dense_products / products, 3)})
    return rows


def pe_jobs(cfg, qnet, acts, layers):
    """``Target.jobs`` of a Cartesian-product PE: each named layer (an fc layer as a 1×1 convolution) on ``cfg`` or
    its kernel variant."""
    jobs = {}
    for layer in qnet.computes:
        if layer.name not in layers:
            continue
        w = as_conv(layer, acts[layer.name][0])[1]
        variant = kernel_variant(cfg, w.shape[2:])
        batch = [PeDriver.validate(variant, {"x": as_conv(layer, x)[0], "w": w, "bias": layer.bias})
                 for x in acts[layer.name]]
        jobs[layer.name] = (variant, batch, lambda name, batch, results, goldens, v=variant: {
            "preset": v.module, "mults": summed(results, "mults"), "stalls": summed(results, "stalls")})
    return jobs


def check_pe_layers(cfg, sim, qnet, images, *, log=print):
    """One row per compute layer on a Cartesian-product PE (an fc layer as a 1×1 convolution): images, products,
    stalls, RTL and golden cycles (summed), mismatches. The PE computes the full-mode pre-activation output; the
    layer's padded output is its centre."""
    jobs = pe_jobs(cfg, qnet, layer_inputs(qnet, images), [layer.name for layer in qnet.computes])
    return [row for name, (variant, batch, fields) in jobs.items()
            for row in check_layers(PeDriver, variant, sim, {name: batch}, fields=fields, log=log)]


def kernel_variant(cfg, kernel):
    """``cfg`` for an R×S ``kernel``: itself when its filter size matches, else the same PE with r, s = R, S (the
    filter size is structural: a variant preset ``<name>_<R>x<S>``, its own Verilog)."""
    r, s = (int(k) for k in kernel)
    return cfg if (cfg.r, cfg.s) == (r, s) else dataclasses.replace(cfg, name=f"{cfg.name}_{r}x{s}", r=r, s=s)


class Cscnn(Technique):
    name, title, color = "cscnn", "CSCNN", "tab:green"
    block = ("cscnn_pe", "default")
    targets = {"cscnn_pe": Target(PeDriver, pe_jobs, centrosymmetric=True), "scnn_pe": Target(PeDriver, pe_jobs)}
    stage = "cscnn: centrosymmetric retraining and dual pruning, cscnn_pe and scnn_pe RTL"

    def run(self, run):
        models = cscnn_models(run.net, log=run.log)
        chosen = models["cs_pruned"].qnet
        rows = run.check(self.name, "technique", check_pe_layers, self.cfg, chosen, run.images)
        scnn = run.check(self.name, "SCNN PE, same network", check_pe_layers, preset("scnn_pe", "default"), chosen,
                         run.images)
        return Result(f"centrosymmetric, retrained, dual-pruned {PRUNING:.0%}", models["cs_pruned"].accuracy, rows,
                      {"table_ii": table_ii(models, run.images),
                       "scnn_pe": [{"layer": r["layer"], "cycles": r["cycles"], "multiplications": r["mults"],
                                    "energy_pj": r["energy_pj"]} for r in scnn]})

    def section(self, entry, summary, out_dir, plt):
        from ..report.markdown import grouped, table

        grouped(plt, out_dir / "cscnn_products.png", [r["layer"] for r in entry["layers"]],
                {"scnn_pe (RTL)": [r["multiplications"] for r in entry["scnn_pe"]],
                 "cscnn_pe (RTL)": [r["multiplications"] for r in entry["layers"]]},
                ylabel="products formed", title="CSCNN: products vs SCNN on the same network")
        return [
            table(entry["table_ii"], [
                ("Table II model", lambda r: r["model"]), ("INT8 accuracy", lambda r: f"{r['accuracy']:.2%}"),
                ("conv weights stored", lambda r: str(r["conv_weights"])),
                ("weight reduction", lambda r: f"{r['weight_reduction']:.2f}x"),
                ("products / image (golden)",
                 lambda r: f"{r['cscnn_products_per_image'] or r['scnn_products_per_image']:.0f}"),
                ("product reduction", lambda r: f"{r['product_reduction']:.2f}x")]), "",
            table(list(zip(entry["layers"], entry["scnn_pe"])), [
                ("layer", lambda p: p[0]["layer"]), ("cscnn_pe products", lambda p: str(p[0]["multiplications"])),
                ("scnn_pe products", lambda p: str(p[1]["multiplications"])),
                ("cscnn_pe cycles", lambda p: str(p[0]["cycles"])), ("scnn_pe cycles", lambda p: str(p[1]["cycles"])),
                ("speedup over SCNN", lambda p: f"{p[1]['cycles'] / p[0]['cycles']:.2f}x"),
                ("energy vs SCNN", lambda p: f"{p[0]['energy_pj'] / p[1]['energy_pj']:.2f}x")]), "",
            "![CSCNN products](cscnn_products.png)"]


TECHNIQUE = Cscnn()
