"""Batch check → row: one layer's images on a block's RTL against its golden model, the row every technique returns."""

from .cosim import batch_mismatches

__all__ = ["check_layers", "actions", "summed", "per_image"]


def check_layers(driver_cls, cfg, sim, layers, *, fields=lambda name, batch, results, goldens: {}, log=print):
    """One row per entry of ``layers`` ({layer name: [validated driver args, one per image]}).

    Every layer and image runs in one simulator process (its start paid once). A row holds ``layer``, ``images``,
    ``checked`` (the simulator), the technique's ``fields(name, batch, results, goldens)`` (its counters summed over
    images), RTL and golden ``cycles`` (summed), ``actions`` (the driver's action counts of the golden runs, summed:
    what an energy model charges), ``traffic`` (the bits its job plan reads from and writes to the global buffer,
    summed: ``StreamDriver.traffic``), ``traffic_rtl`` (the same counted from the words the RTL accepted and
    produced) and the mismatch count with the first differing coordinates and the kept waveform
    (``harness.cosim.batch_mismatches``; a traffic difference is named there when the outputs agree). Never raises
    on a mismatch. ``sim`` None: the golden models only, nothing simulated (``checked`` "golden"; the RTL's figures
    are the golden ones): a comparison taken from the models.
    """
    driver = driver_cls(cfg, sim or "verilator")   # without a simulator nothing is built
    flat = [args for batch in layers.values() for args in batch]
    plans = [driver.layer_jobs(args) for args in flat]   # packed once: for the RTL and for the traffic
    every = driver.run_batch(flat, plans=plans) if sim else None
    rows, start = [], 0
    for name, batch in layers.items():
        goldens, golden = _golden(driver, batch, plans[start:start + len(batch)])
        results, start = (every[start:start + len(batch)] if sim else goldens), start + len(batch)
        traffic = golden["traffic"]
        row = {"layer": name, "images": len(batch), "checked": sim or "golden", **fields(name, batch, results, goldens),
               "cycles": int(sum(c for _, c in results)), **golden,
               "traffic_rtl": {key: summed(results, key) for key in traffic} if sim else dict(traffic),
               **(batch_mismatches(driver_cls, cfg, sim, batch, results, goldens) if sim else
                  {"mismatches": 0, "first_mismatch": None, "waveform": None})}
        if row["traffic_rtl"] != traffic and row["first_mismatch"] is None:
            row["first_mismatch"] = f"buffer traffic: rtl={row['traffic_rtl']} plan={traffic}"
        rows.append(row)
        log(f"  {cfg.module} {name}: {row['images']} images on {sim or 'the golden models'}, "
            f"{row['mismatches']} mismatches, {row['cycles']} cycles (model {row['golden_cycles']})")
    return rows


def _golden(driver, batch, plans):
    """(golden (outputs, cycles) of each input of ``batch``, {"golden_cycles", "actions", "traffic"} summed;
    ``plans``: each input's harness jobs)."""
    goldens = [driver.golden(driver.cfg, args) for args in batch]
    return goldens, {"golden_cycles": int(sum(c for _, c in goldens)),
                     "actions": actions(type(driver), driver.cfg, batch, goldens),
                     "traffic": _total(driver.traffic(args, jobs) for args, jobs in zip(batch, plans))}


def summed(results, key):
    """The RTL counter ``key`` summed over a batch's ``results``."""
    return int(sum(rtl[key] for rtl, _ in results))


def actions(driver_cls, cfg, batch, goldens):
    """{action: count} of ``driver_cls``'s golden runs ``goldens`` of ``batch``, summed."""
    return _total(driver_cls.actions(cfg, args, outputs, cycles) for args, (outputs, cycles) in zip(batch, goldens))


def _total(counts):
    """The {key: count} dicts ``counts`` summed key by key."""
    total = {}
    for each in counts:
        for key, n in each.items():
            total[key] = total.get(key, 0) + int(n)
    return total


def per_image(row, key):
    """Row ``row``'s figure ``key`` (a number or {part: pJ}) per image it ran (``row["images"]``: an fc layer's row
    ran its batches' images, a conv layer's the chosen ones)."""
    value = row[key]
    return {k: v / row["images"] for k, v in value.items()} if isinstance(value, dict) else value / row["images"]
