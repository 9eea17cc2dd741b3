"""Mixture-of-Rookies engine inputs of a network: predictor tables profiled on training images (T chosen on further
ones; shipped with the checkpoints or cached) and each compute layer's input vectors stacked for the engine."""

import json

import numpy as np

from models.checkpoint import locate
from models.mor import THRESHOLDS, MorTables, choose_threshold, exact_args, mor_forward, neuron_inputs, tables

from .activations import layer_inputs, no_relu, raised_bias
from .network import CACHE
from .result_cache import digest

__all__ = ["PROFILE_IMAGES", "THRESHOLD_IMAGES", "mor_tables", "prediction_pays", "engine_tables", "engine_inputs",
           "layer_notes"]

PROFILE_IMAGES = 300    # training images the fits and clusters are profiled on
THRESHOLD_IMAGES = 500  # further training images T is chosen on


def _key(net):
    """What the tables depend on: the INT8 network's layers, the profiling settings and the training images and
    labels they are profiled and chosen on."""
    used = slice(0, PROFILE_IMAGES + THRESHOLD_IMAGES)
    return digest([PROFILE_IMAGES, THRESHOLD_IMAGES, THRESHOLDS], net.qnet.layers, net.data.x_train[used],
                  net.data.y_train[used])[:16]


def _splits(n):
    """(profiled, chosen) slices of ``n`` training images: PROFILE_IMAGES then up to THRESHOLD_IMAGES; with no more
    than PROFILE_IMAGES (a user's small data set), its first half then the rest (one image: it, twice)."""
    if n > PROFILE_IMAGES:
        return slice(0, PROFILE_IMAGES), slice(PROFILE_IMAGES, PROFILE_IMAGES + THRESHOLD_IMAGES)
    half = max(1, n // 2)
    return slice(0, half), slice(half if n > 1 else 0, n)


def mor_tables(net, *, log=print):
    """``(tables, T, sweep)``: each conv layer's MorTables of ``net``'s INT8 network and the threshold
    chosen on training data, reused from reports/cache/ when the network and settings are unchanged."""
    path = locate(CACHE / f"mor_tables-{_key(net)}.npz")
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
    profiled, chosen = _splits(len(train))
    layer_tables = tables(net.qnet, layer_inputs(net.qnet, train[profiled]))
    threshold, sweep = choose_threshold(net.qnet, layer_tables, train[chosen], net.data.y_train[chosen])
    for name, t in layer_tables.items():
        log(f"  {name}: {int((t.proxy == -1).sum())} proxies of {len(t.proxy)} filters, median c "
            f"{np.median(t.correlation):.3f}")
    log(f"  T = {threshold} (lowest of {THRESHOLDS[0]}..{THRESHOLDS[-1]} within 0.5 points of the exact "
        f"network on {len(train[chosen])} training images, after {len(train[profiled])} profiled)")
    arrays = {f"{name}.{field}": getattr(t, field) for name, t in layer_tables.items()
              for field in ("proxy", "m_q", "b_q", "correlation")}
    meta = {"threshold": threshold, "sweep": sweep,
            "fraction_bits": {name: t.fraction_bits for name, t in layer_tables.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, meta=json.dumps(meta), **arrays)
    tmp.replace(path)
    return layer_tables, threshold, sweep


def _costs(cfg, layer):
    """(cycles of the engine's CU throughput one of ``layer``'s neurons takes computed, cycles of its binCU path's
    throughput it takes predicted: one member a cycle into the binCUs' queue, ⌈n_in / bits_per_cycle⌉ cycles of one
    of n_bincu binCUs)."""
    n_in = int(np.prod(layer.w.shape[1:]))
    computed = -(-n_in // cfg.mac_width) / cfg.n_cu
    return computed, max(1.0, -(-n_in // cfg.bits_per_cycle) / cfg.n_bincu)


def prediction_pays(cfg, layer):
    """Whether engine ``cfg`` gains from predicting ``layer``'s members: computing one costs its CUs more throughput
    than predicting it costs its binCU path (a 9- or 25-input neuron on the default: 0.25 or 0.5 cycles computed,
    at least a cycle predicted)."""
    computed, predicted = _costs(cfg, layer)
    return computed > predicted


def engine_tables(cfg, qnet, layer_tables):
    """``layer_tables`` as engine ``cfg`` runs them: a layer whose prediction does not pay (``prediction_pays``)
    has every filter its own proxy, so it is computed exactly and waits on nothing. The accuracy and the RTL both
    take these tables."""
    out = dict(layer_tables)
    for layer in qnet.computes:
        if layer.name in out and not prediction_pays(cfg, layer):
            t = out[layer.name]
            out[layer.name] = MorTables(np.full_like(t.proxy, -1), t.m_q, t.b_q, t.correlation, t.fraction_bits)
    return out


def engine_inputs(qnet, layer_tables, threshold, images, *, batch=None, predictor=True):
    """{compute layer name: [engine inputs per group]}: per group (a grouped conv's, ``models.mor.neuron_inputs``;
    one for any other layer; a layer without ReLU with its biases raised, ``raised_bias``) holding every image's
    input vectors one after another, so the engine loads the group's weights once for the whole batch
    (weight-stationary) and runs its vectors in runs of ``max_vectors``; an fc layer under an ``FcBatch`` ``batch``
    over its images, ``batch.size`` images an input (as the other blocks' fc jobs).

    With the predictor: the skipping network's real layer inputs (a misprediction's zero propagates) with the
    profiled tables at ``threshold`` on the layers followed by a ReLU (conv and hidden fc); the others (the
    classifier, a conv feeding a residual Add) compute every neuron. Without: the exact network's inputs on the same
    engine with every neuron a proxy, so nothing waits and nothing is skipped.
    """
    layers = {layer.name: [] for layer in qnet.computes}
    every = images if batch is None else batch.images
    for i, image in enumerate(every):
        args = {}
        if predictor:
            mor_forward(qnet, layer_tables, threshold, image, layer_args=args)
        else:
            inputs = qnet.forward(image)[1]
            for layer in qnet.computes:
                groups = neuron_inputs(layer, inputs[layer.name])[0]
                args[layer.name] = [exact_args(a, w, bias)
                                    for (a, w), bias in zip(groups, np.split(layer.bias, len(groups)))]
        for layer in qnet.computes:
            if layer.kind == "fc" or i < len(images):
                layers[layer.name].append([{**group, "bias": raised_bias(layer, group["w"], group["bias"],
                                                                         x_min=-128)[0]}
                                           for group in args[layer.name]])
    size = {layer.name: batch.size if batch and layer.kind == "fc" else len(images) for layer in qnet.computes}
    return {name: [_stacked([image[k] for image in per_image[i:i + size[name]]])
                   for i in range(0, len(per_image), size[name]) for k in range(len(per_image[0]))]
            for name, per_image in layers.items()}


def _stacked(per_image):
    """One engine input with every image's vectors [Σ P, n_in] after one another (the tables are the layer's)."""
    first = per_image[0]
    for args in per_image[1:]:
        if any(not np.array_equal(args[key], first[key]) for key in first if key != "x"):
            raise AssertionError("the MoR tables differ between images of one layer")
    n_in = first["w"].shape[1]
    return {**first, "x": np.concatenate([args["x"].reshape(-1, n_in) for args in per_image])}


def layer_notes(qnet, cfg=None):
    """{compute layer name: fallback or None} of ``engine_inputs``' layers: why the predictor skips nothing on a
    layer without ReLU (``no_relu``), with one filter per group (a depthwise conv: every filter its own proxy, so
    no neuron is predicted) or whose prediction does not pay on engine ``cfg`` (``engine_tables``)."""
    notes = {}
    for layer in qnet.computes:
        why = None
        if not layer.relu:
            why = f"no predictor: {no_relu(layer)}"
        elif len(layer.w) == layer.groups:
            why = "no prediction: one filter per group (depthwise), every neuron its own proxy"
        elif cfg is not None and not prediction_pays(cfg, layer):
            computed, predicted = _costs(cfg, layer)
            why = (f"no prediction on {cfg.module}: a neuron costs {computed:.2f} cycles of its CUs computed, "
                   f"{predicted:.2f} of its binCUs predicted; every neuron its own proxy")
        notes[layer.name] = why
    return notes
