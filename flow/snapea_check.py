"""Golden vs RTL of the SnaPEA PE array on every conv layer of a digits CNN (demo and compare)."""

from .cosim import batch_mismatches
from .drivers.snapea import SnapeaDriver
from .network import conv_inputs

__all__ = ["check_snapea_layers"]


def check_snapea_layers(cfg, sim, qnet, images, *, log=print):
    """One row per conv layer: images checked, products, RTL and golden cycles (summed), mismatches.

    Never raises on a mismatch: the row carries the first differing coordinates and the waveform.
    """
    driver = SnapeaDriver(cfg, sim)
    acts = conv_inputs(qnet, images)
    rows = []
    for layer in qnet.convs:
        batch = [SnapeaDriver.validate(cfg, {"x": x, "w": layer.w, "bias": layer.bias, "pad": layer.pad,
                                             "stride": layer.stride}) for x in acts[layer.name]]
        results = driver.run_batch(batch)
        goldens = [SnapeaDriver.golden(cfg, args) for args in batch]
        row = {"layer": layer.name, "images": len(batch), "mults": int(sum(rtl["mults"] for rtl, _ in results)),
               "cycles": int(sum(c for _, c in results)), "golden_cycles": int(sum(c for _, c in goldens)),
               **batch_mismatches(SnapeaDriver, cfg, sim, batch, results, goldens)}
        rows.append(row)
        log(f"  {cfg.module} {layer.name}: {len(batch)} images on {sim}, {row['mismatches']} mismatches, "
            f"{row['mults']} products, {row['cycles']} cycles (model {row['golden_cycles']})")
    return rows
