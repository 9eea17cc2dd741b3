"""The digits CNN's conv layers on the MoR engine, with and without the predictor (bench and demo)."""

import numpy as np

from models.mor import mor_forward, neuron_inputs

from .cosim import batch_mismatches, rows_bit_exact
from .drivers.mor import MorDriver
from .network import conv_inputs

__all__ = ["engine_inputs", "check_mor_layers"]


def engine_inputs(qnet, layer_tables, threshold, images, *, predictor=True):
    """{conv layer name: [engine inputs per image]}.

    With the predictor: the skipping network's real layer inputs (a misprediction's zero propagates)
    with the profiled tables at ``threshold``. Without: the exact network's inputs on the same engine
    with every neuron a proxy, so nothing waits and nothing is skipped.
    """
    layers = {layer.name: [] for layer in qnet.convs}
    if predictor:
        for image in images:
            args = {}
            mor_forward(qnet, layer_tables, threshold, image, layer_args=args)
            for name, layer_args in args.items():
                layers[name].append(layer_args)
        return layers
    acts = conv_inputs(qnet, images)
    for layer in qnet.convs:
        n_out = len(layer.w)
        for x in acts[layer.name]:
            a, w, _ = neuron_inputs(layer, x)
            layers[layer.name].append({"x": a, "w": w, "bias": layer.bias, "proxy": np.full(n_out, -1, np.int64),
                                       "m_q": np.zeros(n_out, np.int32), "b_q": np.zeros(n_out, np.int32),
                                       "enable": np.zeros(n_out, bool)})
    return layers


def check_mor_layers(cfg, sim, layers, *, log=print):
    """One row per conv layer of ``layers`` (from ``engine_inputs``): images, neurons skipped, MACs,
    run cycles and harness cycles (RTL, summed over images) with the golden model's, and mismatches.

    Never raises on a mismatch: the row carries the first differing coordinates and the waveform.
    """
    driver = MorDriver(cfg, sim)
    rows = []
    for name, batch in layers.items():
        batch = [MorDriver.validate(cfg, args) for args in batch]
        results = driver.run_batch(batch)
        goldens = [MorDriver.golden(cfg, args) for args in batch]
        row = {
            "layer": name, "images": len(batch),
            "neurons": int(sum(rtl["skipped"].size for rtl, _ in results)),
            "skipped": int(sum(rtl["skipped"].sum() for rtl, _ in results)),
            "macs": int(sum(rtl["macs"] for rtl, _ in results)),
            "run_cycles": int(sum(rtl["run_cycles"].sum() for rtl, _ in results)),
            "golden_run_cycles": int(sum(g["run_cycles"].sum() for g, _ in goldens)),
            "cycles": int(sum(c for _, c in results)), "golden_cycles": int(sum(c for _, c in goldens)),
            **batch_mismatches(MorDriver, cfg, sim, batch, results, goldens),
        }
        row["bit_exact"] = rows_bit_exact([row])
        rows.append(row)
        log(f"  {cfg.module} {name}: {len(batch)} images on {sim}, {row['mismatches']} mismatches, "
            f"{row['skipped']}/{row['neurons']} skipped, {row['run_cycles']} run cycles "
            f"(model {row['golden_run_cycles']}), {row['cycles']} cycles (model {row['golden_cycles']})")
    return rows
