"""Golden vs RTL of the Cartesian-product PEs on every conv layer of a digits CNN (demo and compare)."""

from .cosim import batch_mismatches
from .drivers.cartesian import PeDriver
from .network import conv_inputs

__all__ = ["check_pe_layers"]


def check_pe_layers(cfg, sim, qnet, images, *, log=print):
    """One row per conv layer: images checked, products, stalls, RTL and golden cycles (summed), mismatches.

    The PE computes the full-mode pre-activation output; the layer's padded output is its centre.
    Never raises on a mismatch: the row carries the first differing coordinates and the waveform.
    """
    driver = PeDriver(cfg, sim)
    acts = conv_inputs(qnet, images)
    rows = []
    for layer in qnet.convs:
        batch = [PeDriver.validate(cfg, {"x": x, "w": layer.w, "bias": layer.bias}) for x in acts[layer.name]]
        results = driver.run_batch(batch)
        goldens = [PeDriver.golden(cfg, args) for args in batch]
        row = {
            "layer": layer.name, "images": len(batch),
            "mults": int(sum(rtl["mults"] for rtl, _ in results)),
            "stalls": int(sum(rtl["stalls"] for rtl, _ in results)),
            "cycles": int(sum(c for _, c in results)), "golden_cycles": int(sum(c for _, c in goldens)),
            **batch_mismatches(PeDriver, cfg, sim, batch, results, goldens),
        }
        rows.append(row)
        log(f"  {cfg.module} {layer.name}: {len(batch)} images on {sim}, {row['mismatches']} mismatches, "
            f"{row['mults']} products, {row['cycles']} cycles (model {row['golden_cycles']})")
    return rows
