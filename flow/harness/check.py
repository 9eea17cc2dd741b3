"""Batch check → row: one layer's images on a block's RTL against its golden model, the row every technique returns."""

from ..synth.calibration import energy_pj
from .cosim import batch_mismatches

__all__ = ["check_layers", "summed"]


def check_layers(driver_cls, cfg, sim, layers, *, fields=lambda name, batch, results, goldens: {}, log=print):
    """One row per entry of ``layers`` ({layer name: [validated driver args, one per image]}).

    A row holds ``layer``, ``images``, the technique's ``fields(name, batch, results, goldens)`` (its counters
    summed over images), RTL and golden ``cycles`` (summed), ``energy_pj`` (the per-action energy model on the golden
    counts, summed) and the mismatch count with the first differing coordinates and the kept waveform
    (``harness.cosim.batch_mismatches``). Never raises on a mismatch.
    """
    driver = driver_cls(cfg, sim)
    rows = []
    for name, batch in layers.items():
        results = driver.run_batch(batch)
        goldens = [driver_cls.golden(cfg, args) for args in batch]
        row = {"layer": name, "images": len(batch), **fields(name, batch, results, goldens),
               "cycles": int(sum(c for _, c in results)), "golden_cycles": int(sum(c for _, c in goldens)),
               "energy_pj": sum(energy_pj(cfg, args, *golden, log=log) for args, golden in zip(batch, goldens)),
               **batch_mismatches(driver_cls, cfg, sim, batch, results, goldens)}
        rows.append(row)
        log(f"  {cfg.module} {name}: {row['images']} images on {sim}, {row['mismatches']} mismatches, "
            f"{row['cycles']} cycles (model {row['golden_cycles']})")
    return rows


def summed(results, key):
    """The RTL counter ``key`` summed over a batch's ``results``."""
    return int(sum(rtl[key] for rtl, _ in results))
