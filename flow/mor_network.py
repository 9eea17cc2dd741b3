"""The digits CNN's Mixture-of-Rookies tables: profiled on training images, T chosen on further ones, cached."""

import hashlib
import json

import numpy as np

from models.mor import THRESHOLDS, MorTables, choose_threshold, tables

from .network import CACHE, conv_inputs

__all__ = ["PROFILE_IMAGES", "THRESHOLD_IMAGES", "mor_tables"]

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
    layer_tables = tables(net.qnet, conv_inputs(net.qnet, train[:PROFILE_IMAGES]))
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
