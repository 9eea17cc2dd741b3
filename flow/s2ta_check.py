"""Golden vs RTL of the systolic arrays on every conv layer of the digits CNN (demo and compare)."""

import numpy as np

from golden.systolic import fold_steps

from .cosim import batch_mismatches
from .drivers.array import ArrayDriver
from .network import conv_inputs

__all__ = ["check_array_layers"]


def check_array_layers(cfg, sim, qnet, images, *, nnz_a=None, log=print):
    """One row per conv layer: images checked, RTL and golden cycles (summed over images), mismatches, and
    ``mults``: products the array forms for the layer's outputs (one per output per PE step; idle PEs of
    partial folds not counted).

    The C = 1 layer runs in dense-weight mode on the s2ta variants; ``nnz_a`` (layer name ->
    nnz) is applied by golden to earlier layers and by the RTL to each s2ta_aw layer's input.
    Never raises on a mismatch: the row carries the first differing coordinates and the waveform.
    """
    driver = ArrayDriver(cfg, sim)
    acts = conv_inputs(qnet, images, nnz_a=nnz_a)
    rows = []
    for layer in qnet.convs:
        batch = []
        for x in acts[layer.name]:
            conv = {"x": x, "w": layer.w, "pad": np.int64(layer.pad), "stride": np.int64(layer.stride)}
            if not cfg.scalar:
                conv["dense_w"] = np.bool_(x.shape[0] == 1)
            if cfg.variant == "s2ta_aw":
                conv["nnz_a"] = np.int64(nnz_a[layer.name])
            batch.append(ArrayDriver.validate(cfg, conv))
        results = driver.run_batch(batch)
        goldens = [ArrayDriver.golden(cfg, args) for args in batch]
        row = {
            "layer": layer.name, "images": len(batch), "nnz_a": None if nnz_a is None else nnz_a.get(layer.name),
            "dense_w": bool(batch[0]["dense_w"]), "macs_dense": int(sum(a["a"].size * a["w"].shape[1] for a in batch)),
            "mults": int(sum(a["a"].shape[0] * a["w"].shape[1] * fold_steps(cfg, a["a"].shape[1], nnz_a=a["nnz_a"],
                                                                             dense_w=a["dense_w"]) for a in batch)),
            "cycles": int(sum(c for _, c in results)), "golden_cycles": int(sum(c for _, c in goldens)),
            **batch_mismatches(ArrayDriver, cfg, sim, batch, results, goldens),
        }
        rows.append(row)
        log(f"  {cfg.module} {layer.name}: {len(batch)} images on {sim}, {row['mismatches']} mismatches, "
            f"{row['cycles']} cycles (model {row['golden_cycles']})")
    return rows
