"""Mixture-of-Rookies: the INT8 network with predictor tables (profiled on training images, T chosen on further
ones, cached) on the ``mor`` engine, with and without its predictor, and the engine's area split."""

import dataclasses
import hashlib
import json

import numpy as np
from amaranth.hdl import Shape

from generators.mor_engine import ram_specs
from models.mor import (
    THRESHOLDS,
    MorTables,
    choose_threshold,
    exact_args,
    mor_evaluate,
    mor_forward,
    neuron_inputs,
    tables,
)

from ..harness.check import check_layers, summed
from ..harness.cosim import rows_bit_exact
from ..harness.drivers.mor import MorDriver
from ..harness.network import CACHE, TWO_PASSES, layer_inputs, relu_passes
from ..synth.area import preset_area
from . import Result, Technique

__all__ = ["PROFILE_IMAGES", "THRESHOLD_IMAGES", "mor_tables", "engine_inputs", "layer_notes", "input_variant",
           "check_mor_layers", "engine_area",
           "TECHNIQUE"]

ORDER = 3

PROFILE_IMAGES = 300    # training images the fits and clusters are profiled on
THRESHOLD_IMAGES = 500  # further training images T is chosen on


def _key(qnet):
    """What the tables depend on: the INT8 network's layers and the profiling settings."""
    digest = hashlib.sha256(json.dumps([PROFILE_IMAGES, THRESHOLD_IMAGES, THRESHOLDS]).encode())
    for layer in qnet.layers:
        for array in (layer.w, layer.bias):
            digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def mor_tables(net, *, log=print):
    """``(tables, T, sweep)``: each conv layer's MorTables of ``net``'s INT8 network and the threshold
    chosen on training data, reused from reports/cache/ when the network and settings are unchanged."""
    path = CACHE / f"mor_tables-{_key(net.qnet)}.npz"
    if path.exists():
        with np.load(path) as cached:
            meta = json.loads(str(cached["meta"]))
            layer_tables = {name: MorTables(cached[f"{name}.proxy"], cached[f"{name}.m_q"], cached[f"{name}.b_q"],
                                            cached[f"{name}.correlation"], bits)
                            for name, bits in meta["fraction_bits"].items()}
        threshold, sweep = meta["threshold"], [tuple(row) for row in meta["sweep"]]
        log(f"  MoR tables reused ({path.name}), T = {threshold}")
        return layer_tables, threshold, sweep
    train = net.data.x_train
    layer_tables = tables(net.qnet, layer_inputs(net.qnet, train[:PROFILE_IMAGES]))
    chosen = slice(PROFILE_IMAGES, PROFILE_IMAGES + THRESHOLD_IMAGES)
    threshold, sweep = choose_threshold(net.qnet, layer_tables, train[chosen], net.data.y_train[chosen])
    for name, t in layer_tables.items():
        log(f"  {name}: {int((t.proxy == -1).sum())} proxies of {len(t.proxy)} filters, median c "
            f"{np.median(t.correlation):.3f}")
    log(f"  T = {threshold} (lowest of {THRESHOLDS[0]}..{THRESHOLDS[-1]} within 0.5 points of the exact "
        f"network on {THRESHOLD_IMAGES} training images)")
    arrays = {f"{name}.{field}": getattr(t, field) for name, t in layer_tables.items()
              for field in ("proxy", "m_q", "b_q", "correlation")}
    meta = {"threshold": threshold, "sweep": sweep,
            "fraction_bits": {name: t.fraction_bits for name, t in layer_tables.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=json.dumps(meta), **arrays)
    tmp.replace(path)
    return layer_tables, threshold, sweep


def engine_inputs(qnet, layer_tables, threshold, images, *, predictor=True):
    """{compute layer name: [engine inputs per pass]}: one pass (the classifier two sign-split ones:
    ``layer_notes``) holding every image's input vectors one after another, so the engine loads the layer's
    weights once for the whole batch (weight-stationary) and runs its vectors in runs of ``max_vectors``.

    With the predictor: the skipping network's real layer inputs (a misprediction's zero propagates)
    with the profiled tables at ``threshold`` on the layers followed by a ReLU (conv and hidden fc); the
    classifier computes every neuron. Without: the exact network's inputs on the same engine with every
    neuron a proxy, so nothing waits and nothing is skipped.
    """
    layers = {layer.name: [] for layer in qnet.computes}
    for image in images:
        args = {}
        if predictor:
            mor_forward(qnet, layer_tables, threshold, image, layer_args=args)
        else:
            inputs = qnet.forward(image)[1]
            for layer in qnet.computes:
                args[layer.name] = exact_args(*neuron_inputs(layer, inputs[layer.name])[:2], layer.bias)
        for layer in qnet.computes:
            layer_args = args[layer.name]
            layers[layer.name].append([{**layer_args, "w": w, "bias": bias}
                                       for w, bias in relu_passes(layer, layer_args["w"], layer_args["bias"])])
    return {name: [_stacked([image[k] for image in per_image]) for k in range(len(per_image[0]))]
            for name, per_image in layers.items()}


def _stacked(per_image):
    """One engine input with every image's vectors [Σ P, n_in] after one another (the tables are the layer's)."""
    first = per_image[0]
    for args in per_image[1:]:
        if any(not np.array_equal(args[key], first[key]) for key in first if key != "x"):
            raise AssertionError("the MoR tables differ between images of one layer")
    n_in = first["w"].shape[1]
    return {**first, "x": np.concatenate([args["x"].reshape(-1, n_in) for args in per_image])}


def layer_notes(qnet):
    """{compute layer name: (passes per image, fallback or None)} of ``engine_inputs``' layers."""
    return {layer.name: (len(relu_passes(layer, layer.w, layer.bias)),
                         None if layer.relu else f"no predictor (nothing to skip); {TWO_PASSES}")
            for layer in qnet.computes}


def input_variant(cfg, n_in):
    """``cfg`` when ``n_in`` fits ``max_in``, else the same engine with ``max_in`` the next power of two (the
    input and weight memories are structural: a variant preset ``<name>_in<max_in>``; a reduction is never
    split, docs/cosim.md)."""
    if n_in <= cfg.max_in:
        return cfg
    max_in = 1 << (n_in - 1).bit_length()
    return dataclasses.replace(cfg, name=f"{cfg.name}_in{max_in}", max_in=max_in)


def check_mor_layers(cfg, sim, layers, *, images, notes=None, log=print):
    """One row per layer of ``layers`` (from ``engine_inputs`` over ``images`` images; ``notes`` from
    ``layer_notes``): images, neurons skipped, MACs, run cycles and harness cycles (RTL, summed over passes)
    with the golden model's, and mismatches."""
    rows = []
    for name, batch in layers.items():
        passes, fallback = (notes or {}).get(name, (1, None))
        variant = input_variant(cfg, batch[0]["w"].shape[1])
        batch = [MorDriver.validate(variant, args) for args in batch]
        rows += check_layers(MorDriver, variant, sim, {name: batch}, log=log,
                             fields=lambda name, batch, results, goldens, v=variant, p=passes, f=fallback: {
                                 "images": images, "preset": v.module, "fallback": f,
                                 "neurons": int(sum(rtl["skipped"].size for rtl, _ in results)) // p,
                                 "skipped": int(sum(rtl["skipped"].sum() for rtl, _ in results)),
                                 "macs": summed(results, "macs"),
                                 "run_cycles": int(sum(rtl["run_cycles"].sum() for rtl, _ in results)),
                                 "golden_run_cycles": int(sum(g["run_cycles"].sum() for g, _ in goldens))})
    return [{**row, "bit_exact": rows_bit_exact([row])} for row in rows]


def engine_area(cfg, area=None):
    """The engine's Yosys ``area`` (``synth.area.preset_area``, run when not given) split: the binCUs' share of
    the logic, and the RAM bits with the binary memories' share (the paper's 5.3% counts both, in silicon area)."""
    area = area or preset_area(cfg)
    rams = ram_specs(cfg)
    bits = {kind: n * depth * Shape.cast(shape).width for kind, (shape, depth, n) in rams.items()}
    binary_bits = bits["bin_weights"] + bits["bin_inputs"] + bits["table"] * cfg.n_bincu // rams["table"][2]
    logic = area["logic_cells"]
    bincu = cfg.n_bincu * area["cells_per_module"][f"{cfg.module}_bincu"]
    return {"logic_cells": logic, "bincu_cells": bincu, "bincu_logic_fraction": bincu / logic,
            "ram_bits": bits, "binary_ram_fraction": binary_bits / sum(bits.values()),
            "cells_per_module": area["cells_per_module"]}


def _plot_categories(plt, mor):
    layers = list(mor["categories"])
    parts = {"skipped, truly zero": lambda c: c["skipped"] - c["mispredicted"],
             "skipped, truly positive (mispredicted)": lambda c: c["mispredicted"],
             "computed, zero (missed)": lambda c: c["zero_missed"],
             "computed, positive": lambda c: c["nonzero_computed"]}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    bottom = [0.0] * len(layers)
    for label, part in parts.items():
        values = [100 * part(mor["categories"][layer]) / mor["categories"][layer]["neurons"] for layer in layers]
        ax.bar(layers, values, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("% of the layer's neurons, whole test set")
    ax.set_title(f"MoR zero-prediction categories (T = {mor['threshold']})")
    return fig, ax


class Mor(Technique):
    name, title, color = "mor", "MoR", "tab:orange"
    block = ("mor", "default")
    blocks = ("mor",)
    stage = "mor: tables, skipping network on the test set, mor engine RTL with and without predictor"

    def rows(self, net, cfg, sim, images, *, layers=None, log=print):
        layer_tables, threshold, _ = mor_tables(net, log=log)
        inputs = engine_inputs(net.qnet, layer_tables, threshold, images)
        return check_mor_layers(cfg, sim, {k: v for k, v in inputs.items() if layers is None or k in layers},
                                images=len(images), notes=layer_notes(net.qnet), log=log)

    def run(self, run):
        net, cfg = run.net, self.cfg
        layer_tables, threshold, _ = mor_tables(net, log=run.log)
        accuracy, categories = mor_evaluate(net.qnet, layer_tables, threshold, net.data.x_test, net.data.y_test)
        notes = layer_notes(net.qnet)
        rows = run.check(self.name, "technique", check_mor_layers, cfg,
                         engine_inputs(net.qnet, layer_tables, threshold, run.images), images=len(run.images),
                         notes=notes)
        base = run.check(self.name, "same engine, no predictor", check_mor_layers, cfg,
                         engine_inputs(net.qnet, layer_tables, threshold, run.images, predictor=False),
                         images=len(run.images), notes=notes)
        return Result(f"INT8 CNN with MoR predictor tables, T = {threshold}", accuracy, rows,
                      {"threshold": threshold, "categories": categories,
                       "run_cycles": sum(r["run_cycles"] for r in rows),
                       "no_predictor": [{"layer": r["layer"], "cycles": r["cycles"], "run_cycles": r["run_cycles"],
                                         "multiplications": r["macs"], "energy_pj": r["energy_pj"]} for r in base]})

    def area(self, results):
        area = results[self.cfg.module]
        return {"area": area, "area_split": engine_area(self.cfg, area)}

    def section(self, entry, summary, out_dir, plt):
        from ..report.markdown import save, table

        save(plt, *_plot_categories(plt, entry), out_dir / "mor_categories.png",
             loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)
        return [
            table(list(entry["categories"].items()), [
                ("layer (test set)", lambda kv: kv[0]),
                ("skipped", lambda kv: f"{kv[1]['skipped'] / kv[1]['neurons']:.1%}"),
                ("mispredicted", lambda kv: f"{kv[1]['mispredicted'] / kv[1]['neurons']:.2%}"),
                ("computed but zero", lambda kv: f"{kv[1]['zero_missed'] / kv[1]['neurons']:.1%}"),
                ("MACs saved", lambda kv: f"{1 - kv[1]['macs'] / kv[1]['dense_macs']:.1%}")]), "",
            table(list(zip(entry["layers"], entry["no_predictor"])), [
                ("layer (RTL)", lambda p: p[0]["layer"]), ("MACs", lambda p: str(p[0]["multiplications"])),
                ("MACs, no predictor", lambda p: str(p[1]["multiplications"])),
                ("cycles", lambda p: str(p[0]["cycles"])), ("cycles, no predictor", lambda p: str(p[1]["cycles"])),
                ("speedup from the predictor", lambda p: f"{p[1]['cycles'] / p[0]['cycles']:.2f}x"),
                ("energy vs no predictor", lambda p: f"{p[0]['energy_pj'] / p[1]['energy_pj']:.2f}x")]), "",
            "![MoR categories](mor_categories.png)"]


TECHNIQUE = Mor()
