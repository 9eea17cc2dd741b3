"""CSCNN: the network retrained with centrosymmetric filters and dual-pruned (Table II style: dense,
centrosymmetric, centrosymmetric + dual pruning) on the ``cscnn`` PE array (each layer under its fastest tiling),
beside the ``scnn`` array with SCNN's planar tiling on the same network; the tilings compared per layer (the
paper's Fig. 11a) and the array against one of its PEs."""

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from generators.config import PE_ARRAY_BLOCKS, default_preset, preset
from golden.cartesian_array import DEFAULT_TILING, TILING_CHOICES, TILINGS, array_conv, choose_tiling
from golden.cartesian_pe import pe_conv
from golden.cscnn import canonical_mask, cartesian_products, is_centrosymmetric
from models.quantize import QuantizedNet, quantize

from ..harness.activations import conv_inputs, group_convs, layer_inputs, layer_jobs
from ..harness.check import summed
from ..harness.drivers import DRIVERS
from ..harness.drivers.cartesian import PeArrayDriver, PeDriver
from ..harness.network import CACHE
from ..harness.result_cache import cached
from . import Bars, Claim, Result, Table, Target, Technique, check_jobs

__all__ = ["CscnnModel", "cscnn_models", "table_ii", "layer_preset", "layer_convs", "conv_on", "cartesian_jobs",
           "check_cartesian_layers", "tiling_table", "PRUNING", "TECHNIQUE"]

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

    The unit-stride conv layers become centrosymmetric (``models.centrosymmetric.symmetric_convs``; all of the digits
    CNN's); strided convs and the classifier are dual-pruned only.
    """
    from models.centrosymmetric import load_or_fine_tune_centrosymmetric  # torch loads with the models

    base = net.model
    models = {"dense": CscnnModel("dense", net.qnet, net.int8_accuracy, True)}
    for name, sparsity in (("centrosymmetric", 0.0), ("cs_pruned", PRUNING)):
        start = time.perf_counter()
        model, reused = load_or_fine_tune_centrosymmetric(
            base, net.key, net.data, CACHE, sparsity=sparsity, epochs=net.fine_tune_epochs(15),
            progress=lambda it, n=name: tqdm(it, desc=f"retrain {n}", leave=False))
        qnet = quantize(model, net.data.x_train)
        for layer in qnet.convs:
            assert layer.stride > 1 or is_centrosymmetric(layer.w).all(), f"{name} {layer.name} is not centrosymmetric"
        accuracy = qnet.accuracy(net.data.x_test, net.data.y_test)
        models[name] = CscnnModel(name, qnet, accuracy, reused)
        log(f"  {name}: {'reused' if reused else net.trained('retrained')} in {time.perf_counter() - start:.1f} s, "
            f"INT8 test accuracy {accuracy:.2%}")
    return models


def table_ii(models, images):
    """Per model: test accuracy, conv weights stored and products per image on each PE (golden counts).

    Weights stored: non-zero conv weights, the canonical half only where a layer's filters are centrosymmetric
    (the CSCNN PE's compressed format). Products: Cartesian products of non-zero operands on the
    SCNN PE (all non-zero weights) and, for centrosymmetric models (a layer of filters larger than 1×1
    centrosymmetric), the CSCNN PE (canonical half where a layer is centrosymmetric, all elsewhere).
    """
    rows = []
    dense_weights = dense_products = None
    for name, model in models.items():
        convs = model.qnet.convs
        reuses = {layer.name: bool(is_centrosymmetric(layer.w).all()) for layer in convs}
        weights = sum(int(np.count_nonzero(layer.w[..., canonical_mask(*layer.w.shape[2:])] if reuses[layer.name]
                                           else layer.w)) for layer in convs)
        acts = conv_inputs(model.qnet, images)
        per_pe = {}
        for pe, reuse in (("scnn", False), ("cscnn", True)):
            if reuse and not any(reuses[layer.name] and layer.w[0, 0].size > 1 for layer in convs):
                continue
            per_pe[pe] = sum(cartesian_products(x, w, reuse=reuse and reuses[layer.name]) for layer in convs
                             for image in acts[layer.name] for x, w, _ in group_convs(layer, image)) / len(images)
        products = per_pe.get("cscnn", per_pe["scnn"])
        dense_weights = dense_weights or weights
        dense_products = dense_products or products
        rows.append({"model": name, "accuracy": model.accuracy, "conv_weights": weights,
                     "weight_reduction": round(dense_weights / weights, 3),
                     "scnn_products_per_image": per_pe["scnn"], "cscnn_products_per_image": per_pe.get("cscnn"),
                     "product_reduction": round(dense_products / products, 3)})
    return rows


NO_REUSE = ("no dual-weight reuse: filters not centrosymmetric (the paper leaves non-unit-stride convs to pruning "
            "alone), run as on SCNN")


def layer_preset(cfg, layer):
    """``cfg`` for compute ``layer``, or, where its filters are not all centrosymmetric (a strided conv's), the same
    CSCNN PE or array with its reuse off (``NO_REUSE``: that size of SCNN PE or array)."""
    if cfg.reuse and layer.kind == "conv" and not is_centrosymmetric(layer.w).all():
        return dataclasses.replace(cfg, reuse=False)
    return cfg


def layer_convs(cfg, layer, inputs, size=1):
    """``[(preset, x, w, bias)]``: compute ``layer`` on ``inputs`` as the convolutions ``cfg`` runs, every image's
    groups, an fc layer ``size`` images a job (``layer_jobs``), in order, on ``layer_preset`` through ``conv_on``."""
    layer_cfg = layer_preset(cfg, layer)
    return [(*conv_on(layer_cfg, x, w), bias) for x, w, bias in layer_jobs(layer, inputs, size)]


def conv_on(cfg, x, w):
    """``(preset, x, w)`` that run a convolution of ``group_convs`` on ``cfg``: a 1×1 convolution (an fc layer, a
    pointwise conv), which a PE array of odd R×S filters runs as is, its weights in the filters' centre tap (zero taps
    cost no product; the output is the full-mode plane's centre); any other filter size runs on a kernel variant."""
    if cfg.block in PE_ARRAY_BLOCKS and w.shape[2:] == (1, 1) and cfg.r % 2 and cfg.s % 2:
        centred = np.zeros((*w.shape[:2], cfg.r, cfg.s), np.int8)
        centred[:, :, cfg.r // 2, cfg.s // 2] = w[:, :, 0, 0]
        return cfg, x, centred
    return kernel_variant(cfg, w.shape[2:]), x, w


def partial_sums(driver, cfg, x, w, bias, extra):
    """``[(x, w, bias)]``: a convolution as runs that each fit ``driver``'s harness jobs (``longest_job`` within its
    ``depth``): itself, or its input channels halved until they do, each part's pre-activation outputs a partial sum
    of the layer's (the bias in the first part's), added after the array (the post-processing)."""
    if x.shape[0] == 1 or driver.longest_job(cfg, {"x": x, "w": w, "bias": bias, **extra}) <= driver.depth:
        return [(x, w, bias)]
    half = x.shape[0] // 2
    return [*partial_sums(driver, cfg, x[:half], np.ascontiguousarray(w[:, :half]), bias, extra),
            *partial_sums(driver, cfg, x[half:], np.ascontiguousarray(w[:, half:]), np.zeros_like(bias), extra)]


def cartesian_jobs(cfg, qnet, acts, layers, size=1, *, tiling=DEFAULT_TILING):
    """``Target.jobs`` of a Cartesian-product PE or PE array: each named layer on ``cfg`` (``conv_on``; a grouped conv
    one job per group, an fc layer one per ``size`` images as a 1×size plane, ``layer_jobs``; a conv too long for the
    harness's jobs in partial sums, ``partial_sums``); on an array under ``tiling`` (``fastest``: the layer's fastest
    on its first job, golden cycles, for all its jobs)."""
    driver = DRIVERS[cfg.block]
    jobs = {}
    for layer in qnet.computes:
        if layer.name not in layers:
            continue
        convs = layer_convs(cfg, layer, acts[layer.name], size)
        variant, first, w, bias = convs[0]
        extra = {}
        if driver is PeArrayDriver:
            extra["tiling"] = choose_tiling(variant, first, w, bias, tiling)
        parts = [part for _, x, w, bias in convs for part in partial_sums(driver, variant, x, w, bias, extra)]
        batch = [driver.validate(variant, {"x": x, "w": w, "bias": bias, **extra}) for x, w, bias in parts]
        why = "; ".join(([NO_REUSE] if cfg.reuse and not variant.reuse else [])
                        + ([f"{len(parts) // len(convs)} partial-sum runs over input channels, added after the array"]
                           if len(parts) > len(convs) else [])) or None
        n = len(acts[layer.name])
        jobs[layer.name] = (variant, batch, lambda name, batch, results, goldens, v=variant, e=extra, n=n, why=why: {
            "images": n, "preset": v.module, **e, "fallback": why, "mults": summed(results, "mults"),
            "stalls": summed(results, "stalls")})
    return jobs


def check_cartesian_layers(cfg, sim, qnet, images, *, batch=None, tiling=DEFAULT_TILING, layers=None, log=print):
    """One row per compute layer on a Cartesian-product PE or PE array (an fc layer as a 1×1 convolution of one
    image, or of an ``FcBatch`` ``batch``'s size of images as pixels): images, tiling (arrays), products, stalls, RTL
    and golden cycles (summed), mismatches. The block computes the full-mode pre-activation output; the layer's
    padded output is its centre. ``layers``: the names to run (default all)."""
    jobs = cartesian_jobs(cfg, qnet, layer_inputs(qnet, images, batch=batch),
                          layers or [layer.name for layer in qnet.computes], batch.size if batch else 1, tiling=tiling)
    return check_jobs(DRIVERS[cfg.block], sim, jobs, log=log)


def pe_energy(cfg, qnet, images, *, batch=None, log=print):
    """Per compute layer of ``qnet`` on one Cartesian-product PE ``cfg`` (the papers' PE comparison): ``layer``,
    golden ``cycles`` and the energy of its golden counts and job plan (``check_jobs`` without a simulator; the
    PEs' RTL is checked by ``compare`` and the tests)."""
    jobs = cartesian_jobs(cfg, qnet, layer_inputs(qnet, images, batch=batch), [layer.name for layer in qnet.computes],
                          batch.size if batch else 1)
    return [{"layer": r["layer"], "cycles": r["golden_cycles"], "energy_pj": r["energy_pj"],
             "energy_parts": r["energy_parts"]} for r in check_jobs(PeDriver, None, jobs, log=log)]


def tiling_table(cfg, qnet, images, *, batch=None):
    """Per compute layer of ``qnet``: golden cycles (summed over ``images``) of array ``cfg`` under each tiling and
    of one of its PEs (``one_pe``), each tiling's plan of the first job (T_k, T_h×T_w, runs); fc layers as
    ``batch`` says."""
    acts = layer_inputs(qnet, images, batch=batch)
    rows = []
    for layer in qnet.computes:
        convs = layer_convs(cfg, layer, acts[layer.name], batch.size if batch else 1)
        variant = convs[0][0]
        row = {"layer": layer.name,
               "one_pe": sum(pe_conv(variant.pe, x, w, bias)["cycles"] for _, x, w, bias in convs)}
        for t in TILINGS:
            outs = [array_conv(variant, x, w, bias, t) for _, x, w, bias in convs]
            row[t] = sum(o["cycles"] for o in outs)
            row[f"{t}_plan"] = "T_k {t_k}, {t_h}x{t_w} tiles, {runs} runs".format(**outs[0])
        rows.append(row)
    return rows


def kernel_variant(cfg, kernel):
    """``cfg`` for an R×S ``kernel``: itself when its filter size matches, else the same PE with r, s = R, S (the
    filter size is structural: a variant preset ``<name>_<R>x<S>``, its own Verilog)."""
    r, s = (int(k) for k in kernel)
    return cfg if (cfg.r, cfg.s) == (r, s) else dataclasses.replace(cfg, name=f"{cfg.name}_{r}x{s}", r=r, s=s)


class Cscnn(Technique):
    name, title, color = "cscnn", "CSCNN", "tab:green"
    claims = (Claim("CSCNN vs SCNN (arrays, same network)", "scnn", 1 / 1.7,
                    "CSCNN abstract: energy savings of 1.7x over SCNN"),
              Claim("CSCNN vs SCNN (PEs, golden counts, same network)", "scnn_pe", 1 / 1.7,
                    "CSCNN abstract: energy savings of 1.7x over SCNN", own="cscnn_pe"),
              Claim("CSCNN vs dense at equal MACs", "dense", 1 / 2.4,
                    "CSCNN abstract: energy savings of 2.4x over a dense accelerator"))
    block = ("cscnn", "default")
    blocks = ("cscnn", "scnn", "cscnn_pe", "scnn_pe")
    targets = {block: Target(driver, cartesian_jobs, centrosymmetric=block.startswith("cscnn"))
               for block, driver in (("cscnn", PeArrayDriver), ("scnn", PeArrayDriver), ("cscnn_pe", PeDriver),
                                     ("scnn_pe", PeDriver))}
    stage = "cscnn: centrosymmetric retraining and dual pruning, cscnn and scnn PE-array RTL"
    options = {"tiling": (DEFAULT_TILING, TILING_CHOICES)}  # of the PE arrays

    def derive(self, net, *, log=print):
        cscnn_models(net, log=log)

    def run(self, run):
        models = cscnn_models(run.net, log=run.log)
        chosen = models["cs_pruned"].qnet
        rows = run.check(self.name, "technique", check_cartesian_layers, self.cfg, chosen, run.images,
                         batch=run.batch, tiling=self.option(run.options, "tiling"))
        scnn = run.check(self.name, "SCNN array, planar tiling, same network", check_cartesian_layers,
                         preset("scnn", "default"), chosen, run.images, batch=run.batch, tiling="planar")
        # golden only, seconds a layer: cached by inputs and sources like the RTL checks
        pes = {block: cached(f"pe_energy-{block}", pe_energy, default_preset(block), chosen, run.images,
                             batch=run.batch, log=run.log)[0] for block in ("cscnn_pe", "scnn_pe")}
        tilings, _ = cached(f"tilings-{self.cfg.module}", tiling_table, self.cfg, chosen, run.images,
                            batch=run.batch)
        return Result(f"centrosymmetric, {run.net.trained('retrained')}, dual-pruned {PRUNING:.0%}",
                      models["cs_pruned"].accuracy, rows,
                      {"table_ii": table_ii(models, run.images),
                       "scnn": [{"layer": r["layer"], "cycles": r["cycles"], "multiplications": r["mults"],
                                 "energy_pj": r["energy_pj"], "energy_parts": r["energy_parts"]} for r in scnn],
                       **pes, "tilings": tilings})

    def comparisons(self, net, sim, *, images, array_images, log=print):
        cs_pruned = cscnn_models(net, log=log)["cs_pruned"]
        out = []
        for block in ("scnn_pe", "cscnn_pe", "scnn", "cscnn"):
            pe = default_preset(block)
            rows = check_cartesian_layers(pe, sim, cs_pruned.qnet, net.data.x_test[:array_images], log=log)
            out += [(f"{block}/{pe.name}", r, f"{r['images']} image(s), cs_pruned"
                     + (f", {r['tiling']} tiling" if "tiling" in r else "")) for r in rows]
        return out

    def rows(self, net, cfg, sim, images, *, batch=None, layers=None, options=None, log=print):
        return check_cartesian_layers(cfg, sim, cscnn_models(net, log=log)["cs_pruned"].qnet, images, batch=batch,
                                      layers=layers, tiling=self.option(options, "tiling"), log=log)

    def areas(self, comparisons=True):
        return [self.cfg, *([preset("scnn", "default")] if comparisons else [])]

    def area(self, results):
        area, scnn = results[self.cfg.module], results.get(preset("scnn", "default").module, {})
        return {"area": area, "area_scnn": scnn or None,
                "area_vs_scnn": area["logic_cells"] / scnn["logic_cells"] if scnn.get("logic_cells") else None}

    def section(self, entry, summary):
        layers = [r["layer"] for r in entry["layers"]]
        lines = [
            Bars("cscnn_products.png", layers,
                 {"scnn (RTL)": [r["multiplications"] for r in entry["scnn"]],
                  "cscnn (RTL)": [r["multiplications"] for r in entry["layers"]]},
                 ylabel="products formed", title="CSCNN: products vs SCNN on the same network"),
            Bars("cscnn_tilings.png", layers, {t: [r["one_pe"] / r[t] for r in entry["tilings"]] for t in TILINGS},
                 ylabel="speedup over one PE", title="CSCNN array: speedup over one PE per tiling (golden cycles)"),
            Table(entry["table_ii"], [
                ("Table II model", lambda r: r["model"]), ("INT8 accuracy", lambda r: f"{r['accuracy']:.2%}"),
                ("conv weights stored", lambda r: str(r["conv_weights"])),
                ("weight reduction", lambda r: f"{r['weight_reduction']:.2f}x"),
                ("products / image (golden)",
                 lambda r: f"{r['cscnn_products_per_image'] or r['scnn_products_per_image']:.0f}"),
                ("product reduction", lambda r: f"{r['product_reduction']:.2f}x")]), "",
            Table(list(zip(entry["layers"], entry["scnn"])), [
                ("layer", lambda p: p[0]["layer"]), ("tiling", lambda p: p[0].get("tiling", "")),
                ("cscnn products", lambda p: str(p[0]["multiplications"])),
                ("scnn products", lambda p: str(p[1]["multiplications"])),
                ("cscnn cycles", lambda p: str(p[0]["cycles"])),
                ("scnn cycles (planar)", lambda p: str(p[1]["cycles"])),
                ("speedup over SCNN", lambda p: f"{p[1]['cycles'] / p[0]['cycles']:.2f}x"),
                ("speedup over dense", lambda p: f"{p[0]['speedup_vs_dense']:.2f}x"),
                ("energy vs SCNN", lambda p: f"{p[0]['energy_pj'] / p[1]['energy_pj']:.2f}x")]), "",
            "Tilings of the cscnn array (golden cycles, which the RTL tests prove equal to the RTL's; the paper's "
            "Fig. 11a), and the array against one of its PEs:", "",
            Table(entry["tilings"], [
                ("layer", lambda r: r["layer"]), ("one PE", lambda r: str(r["one_pe"])),
                *((t, lambda r, t=t: f"{r[t]} ({r['one_pe'] / r[t]:.2f}x)") for t in TILINGS),
                ("mixed vs planar", lambda r: f"{r['planar'] / r['mixed']:.2f}x"),
                ("mixed vs channel", lambda r: f"{r['channel'] / r['mixed']:.2f}x"),
                ("mixed plan", lambda r: r["mixed_plan"])]), "",
            "![CSCNN products](cscnn_products.png) ![CSCNN tilings](cscnn_tilings.png)"]
        if entry.get("area_vs_scnn"):
            lines += ["", f"Area: {entry['area']['logic_cells']} logic cells ({self.cfg.module}) vs "
                          f"{entry['area_scnn']['logic_cells']} ({preset('scnn', 'default').module}): "
                          f"{entry['area_vs_scnn']:.2f}x (the paper: 1.18x)."]
        return lines


TECHNIQUE = Cscnn()
