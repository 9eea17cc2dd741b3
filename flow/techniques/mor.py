"""Mixture-of-Rookies: the INT8 network with predictor tables (profiled on training images, T chosen on further
ones, cached) on the ``mor`` engine, with and without its predictor, and the engine's area split."""

import dataclasses

from amaranth.hdl import Shape

from generators.mor_engine import ram_specs
from models.mor import mor_evaluate

from ..harness.activations import layer_images
from ..harness.check import summed
from ..harness.cosim import rows_bit_exact
from ..harness.drivers.mor import MorDriver
from ..harness.mor_inputs import engine_inputs, engine_tables, layer_notes, mor_tables
from ..synth.area import preset_area
from . import Claim, Plot, Result, Table, Technique, check_jobs

__all__ = ["input_variant", "check_mor_layers", "engine_area", "TECHNIQUE"]

ORDER = 3

def input_variant(cfg, n_in):
    """``cfg`` when ``n_in`` fits ``max_in``, else the same engine with ``max_in`` the next power of two (the
    input and weight memories are structural: a variant preset ``<name>_in<max_in>``; a reduction is never
    split, docs/cosim.md)."""
    if n_in <= cfg.max_in:
        return cfg
    max_in = 1 << (n_in - 1).bit_length()
    return dataclasses.replace(cfg, name=f"{cfg.name}_in{max_in}", max_in=max_in)


def check_mor_layers(cfg, sim, layers, *, images, notes=None, log=print):
    """One row per layer of ``layers`` (from ``engine_inputs`` over ``images`` images, {layer: count} where the
    layers ran different counts: ``layer_images``; ``notes`` from ``layer_notes``): images, neurons skipped, MACs,
    run cycles and harness cycles (RTL, summed) with the golden model's, and mismatches."""
    jobs = {}
    for name, batch in layers.items():
        n = images[name] if isinstance(images, dict) else images
        fallback = (notes or {}).get(name)
        variant = input_variant(cfg, batch[0]["w"].shape[1])
        jobs[name] = (variant, [MorDriver.validate(variant, args) for args in batch],
                      lambda name, batch, results, goldens, v=variant, f=fallback, n=n: {
                          "images": n, "preset": v.module, "fallback": f,
                          "neurons": int(sum(rtl["skipped"].size for rtl, _ in results)),
                          "skipped": int(sum(rtl["skipped"].sum() for rtl, _ in results)),
                          "macs": summed(results, "macs"),
                          "run_cycles": int(sum(rtl["run_cycles"].sum() for rtl, _ in results)),
                          "golden_run_cycles": int(sum(g["run_cycles"].sum() for g, _ in goldens))})
    return [{**row, "bit_exact": rows_bit_exact([row])} for row in check_jobs(MorDriver, sim, jobs, log=log)]


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
    claims = (Claim("MoR with vs without its predictor (same engine)", "no_predictor", 1 - 0.165,
                    "Mixture-of-Rookies abstract: 16.5% energy savings on average"),
              Claim("MoR vs dense at equal MACs", "dense", None, "no figure against a dense array"))
    block = ("mor", "default")
    blocks = ("mor",)
    stage = "mor: tables, skipping network on the test set, mor engine RTL with and without predictor"

    def derive(self, net, *, log=print):
        mor_tables(net, log=log)

    @staticmethod
    def tables(net, cfg, *, log=print):
        """``(tables, T)``: the network's predictor tables as engine ``cfg`` runs them (``engine_tables``)."""
        layer_tables, threshold, _ = mor_tables(net, log=log)
        return engine_tables(cfg, net.qnet, layer_tables), threshold

    def comparisons(self, net, sim, *, images, array_images, log=print):
        layer_tables, threshold = self.tables(net, self.cfg, log=log)
        layers = engine_inputs(net.qnet, layer_tables, threshold, net.data.x_test[:array_images])
        rows = check_mor_layers(self.cfg, sim, layers, images=array_images, notes=layer_notes(net.qnet, self.cfg),
                                log=log)
        return [(f"mor/{self.cfg.name}", r, f"{r['images']} image(s), T = {threshold}, {r['skipped']} skipped")
                for r in rows]

    def rows(self, net, cfg, sim, images, *, batch=None, layers=None, options=None, log=print):
        layer_tables, threshold = self.tables(net, cfg, log=log)
        inputs = engine_inputs(net.qnet, layer_tables, threshold, images, batch=batch)
        return check_mor_layers(cfg, sim, {k: v for k, v in inputs.items() if layers is None or k in layers},
                                images=layer_images(net.qnet, images, batch), notes=layer_notes(net.qnet, cfg),
                                log=log)

    def run(self, run):
        net, cfg = run.net, self.cfg
        layer_tables, threshold = self.tables(net, cfg, log=run.log)
        accuracy, categories = mor_evaluate(net.qnet, layer_tables, threshold, net.data.x_test, net.data.y_test)
        notes = layer_notes(net.qnet, cfg)
        counts = layer_images(net.qnet, run.images, run.batch)
        rows = run.check(self.name, "technique", check_mor_layers, cfg,
                         engine_inputs(net.qnet, layer_tables, threshold, run.images, batch=run.batch), images=counts,
                         notes=notes)
        base = run.check(self.name, "same engine, no predictor", check_mor_layers, cfg,
                         engine_inputs(net.qnet, layer_tables, threshold, run.images, batch=run.batch,
                                       predictor=False), images=counts, notes=notes)
        return Result(f"INT8 CNN with MoR predictor tables, T = {threshold}", accuracy, rows,
                      {"threshold": threshold, "categories": categories,
                       "run_cycles": sum(r["run_cycles"] for r in rows),
                       "no_predictor": [{"layer": r["layer"], "cycles": r["cycles"], "run_cycles": r["run_cycles"],
                                         "multiplications": r["macs"], "energy_pj": r["energy_pj"],
                                         "energy_parts": r["energy_parts"]} for r in base]})

    def area(self, results):
        area = results[self.cfg.module]
        return {"area": area, "area_split": engine_area(self.cfg, area)}

    def section(self, entry, summary):
        return [
            Plot("mor_categories.png", lambda plt: _plot_categories(plt, entry),
                 dict(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)),
            Table(list(entry["categories"].items()), [
                ("layer (test set)", lambda kv: kv[0]),
                ("skipped", lambda kv: f"{kv[1]['skipped'] / kv[1]['neurons']:.1%}"),
                ("mispredicted", lambda kv: f"{kv[1]['mispredicted'] / kv[1]['neurons']:.2%}"),
                ("computed but zero", lambda kv: f"{kv[1]['zero_missed'] / kv[1]['neurons']:.1%}"),
                ("MACs saved", lambda kv: f"{1 - kv[1]['macs'] / kv[1]['dense_macs']:.1%}")]), "",
            Table(list(zip(entry["layers"], entry["no_predictor"])), [
                ("layer (RTL)", lambda p: p[0]["layer"]), ("MACs", lambda p: str(p[0]["multiplications"])),
                ("MACs, no predictor", lambda p: str(p[1]["multiplications"])),
                ("cycles", lambda p: str(p[0]["cycles"])), ("cycles, no predictor", lambda p: str(p[1]["cycles"])),
                ("speedup from the predictor", lambda p: f"{p[1]['cycles'] / p[0]['cycles']:.2f}x"),
                ("energy vs no predictor", lambda p: f"{p[0]['energy_pj'] / p[1]['energy_pj']:.2f}x")]), "",
            "![MoR categories](mor_categories.png)"]


TECHNIQUE = Mor()
