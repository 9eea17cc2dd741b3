"""Mixture-of-Rookies offline stage (MoR §3.2, docs/mor.md): profiling, angle clustering, threshold, skipping inference.

A neuron is a conv filter at one output pixel; its input vector is that pixel's im2col row (docs/conventions.md
order, unpadded). Fit, threshold and clusters are per filter, shared by all its pixels. Profiling
uses the exact INT8 network's real layer inputs on training images; the classifier (no ReLU) is
never predicted.
"""

from dataclasses import dataclass

import numpy as np

from golden.conv import conv_as_gemm
from golden.mor import binary_dot, mor_layer
from golden.quant import requantize

__all__ = ["MorTables", "neuron_inputs", "profile", "proxy_clusters", "predicted", "tables", "exact_args",
           "mor_forward", "mor_evaluate", "THRESHOLDS", "choose_threshold"]

THRESHOLDS = tuple(round(1.0 - 0.05 * i, 2) for i in range(9))  # 1.0 ... 0.6 (MoR Fig. 6)


@dataclass(frozen=True)
class MorTables:
    """One layer's predictor tables (per filter or neuron): the fit, its correlation and the clusters."""

    proxy: np.ndarray        # int64 [F], -1 for proxies
    m_q: np.ndarray          # int32 [F], slope with ``fraction_bits`` fractional bits
    b_q: np.ndarray          # int32 [F], intercept, same scale
    correlation: np.ndarray  # float64 [F], Pearson c of p_bin vs the exact accumulator
    fraction_bits: int

    def enable(self, threshold):
        """bool [F]: the binary predictor is used where c ≥ T."""
        return self.correlation >= threshold


def neuron_inputs(layer, x):
    """``(a, w, (F, H', W'))``: int8 [pixels, R·S·C] input vectors of a conv ``layer``'s neurons for one input
    ``x`` [C, H, W] and their weights [F, R·S·C] in the same order; for an fc layer ``(x [1, n_in], w, (F,))``."""
    if layer.kind == "fc":
        return x.reshape(1, -1), layer.w, (len(layer.w),)
    a, wmat, shape = conv_as_gemm(x, layer.w, pad=layer.pad, stride=layer.stride)
    return a, np.ascontiguousarray(wmat.T), shape


def profile(layer, inputs):
    """Per filter (neuron): Pearson c, least-squares slope m and intercept b of the exact accumulator (bias
    included) against p_bin over every pixel of ``inputs`` (the layer's real int8 inputs, [N, C, H, W] or
    [N, n_in])."""
    rows = [neuron_inputs(layer, x)[:2] for x in inputs]
    a = np.concatenate([r[0] for r in rows])
    w = rows[0][1]
    p = binary_dot(a, w).astype(np.float64)
    acc = (a.astype(np.int64) @ w.astype(np.int64).T + layer.bias).astype(np.float64)
    dp, da = p - p.mean(axis=0), acc - acc.mean(axis=0)
    var_p, var_a = (dp ** 2).mean(axis=0), (da ** 2).mean(axis=0)
    cov = (dp * da).mean(axis=0)
    m = np.divide(cov, var_p, out=np.zeros_like(cov), where=var_p > 0)
    b = acc.mean(axis=0) - m * p.mean(axis=0)
    c = np.divide(cov, np.sqrt(var_p * var_a), out=np.zeros_like(cov), where=(var_p > 0) & (var_a > 0))
    return c, m, b


def proxy_clusters(w):
    """``proxy`` int64 [F] from the angles between filters' weight vectors ``w`` [F, K] (MoR §3.2.2).

    Each filter points at its smallest-angle neighbour; filters are taken by descending in-degree
    (ties by index); an unassigned filter taken becomes a proxy and its unassigned in-neighbours
    its members.
    """
    v = w.astype(np.float64)
    norms = np.linalg.norm(v, axis=1)
    cos = np.divide(v @ v.T, np.outer(norms, norms), out=np.zeros((len(v), len(v))),
                    where=np.outer(norms, norms) > 0)
    np.fill_diagonal(cos, -np.inf)
    nearest = cos.argmax(axis=1)
    in_degree = np.bincount(nearest, minlength=len(v))
    proxy = np.full(len(v), -2, np.int64)  # -2: unassigned
    for node in sorted(range(len(v)), key=lambda i: (-in_degree[i], i)):
        if proxy[node] != -2:
            continue
        proxy[node] = -1
        for member in np.flatnonzero((nearest == node) & (proxy == -2)):
            proxy[member] = node
    return proxy


def _fixed_point(m, b):
    """(m_q, b_q, F): the largest F ≤ 16 at which both fit int32 with a bit to spare."""
    largest = max(float(np.abs(m).max(initial=0)), float(np.abs(b).max(initial=0)), 1.0)
    bits = int(min(16, 30 - np.ceil(np.log2(largest + 1))))
    scale = 2.0 ** bits
    return np.round(m * scale).astype(np.int32), np.round(b * scale).astype(np.int32), bits


def predicted(qnet):
    """The layers the predictor serves: every compute layer followed by a ReLU (conv and hidden fc)."""
    return [layer for layer in qnet.computes if layer.relu]


def tables(qnet, layer_inputs):
    """{layer name: MorTables} of the ``predicted`` layers, profiled on ``layer_inputs`` (each compute layer's
    inputs on training images)."""
    out = {}
    for layer in predicted(qnet):
        c, m, b = profile(layer, layer_inputs[layer.name])
        m_q, b_q, bits = _fixed_point(m, b)
        out[layer.name] = MorTables(proxy_clusters(layer.w.reshape(len(layer.w), -1)), m_q, b_q, c, bits)
    return out


def exact_args(x, w, bias):
    """``mor_layer``'s arguments that compute every neuron (each its own proxy, none skipped)."""
    n_out = len(w)
    return {"x": x, "w": w, "bias": bias, "proxy": np.full(n_out, -1, np.int64), "m_q": np.zeros(n_out, np.int32),
            "b_q": np.zeros(n_out, np.int32), "enable": np.zeros(n_out, bool)}


def mor_forward(qnet, mor_tables, threshold, image, *, layer_args=None):
    """Logits of one int8 image with every ``predicted`` layer (conv and hidden fc) under the skip rule, and
    per-layer counts.

    ``layer_args``, if a dict, receives each predicted layer's skip-rule inputs (``mor_layer``'s arguments,
    the ``mor`` engine's inputs) under its name, and the classifier's ``exact_args``.

    Counts per predicted layer (MoR Fig. 12 categories): ``neurons``, ``skipped`` (predicted zero),
    ``mispredicted`` (skipped but truly positive), ``zero_missed`` (computed, truly zero),
    ``nonzero_computed``, ``macs`` (performed) and ``dense_macs``.
    """
    x, stats = image, {}
    for layer in qnet.layers:
        if layer.name not in mor_tables:  # the classifier runs exactly, pooling moves activations
            if layer.kind == "fc" and layer_args is not None:
                layer_args[layer.name] = exact_args(*neuron_inputs(layer, x)[:2], layer.bias)
            x = qnet.forward(x, layers=[layer])[0]
            continue
        t = mor_tables[layer.name]
        a, w, shape = neuron_inputs(layer, x)
        args = {"x": a, "w": w, "bias": layer.bias, "proxy": t.proxy, "m_q": t.m_q, "b_q": t.b_q,
                "enable": t.enable(threshold)}
        if layer_args is not None:
            layer_args[layer.name] = args
        out = mor_layer(**args)
        x = requantize(out["y"], layer.mult, layer.shift).T.reshape(shape)
        zero = out["exact"] <= 0
        stats[layer.name] = {"neurons": out["skipped"].size, "skipped": int(out["skipped"].sum()),
                             "mispredicted": int(out["mispredicted"].sum()),
                             "zero_missed": int((zero & ~out["skipped"]).sum()),
                             "nonzero_computed": int((~zero & ~out["skipped"]).sum()),
                             "macs": out["macs"], "dense_macs": a.shape[0] * w.shape[0] * w.shape[1]}
    return x, stats


def mor_evaluate(qnet, mor_tables, threshold, images, labels):
    """(accuracy of the skipping network on ``images``, {conv layer: ``mor_forward``'s counts summed over them})."""
    correct, counts = 0, {}
    for image, label in zip(images, labels):
        logits, stats = mor_forward(qnet, mor_tables, threshold, image)
        correct += int(np.argmax(logits)) == label
        for layer, values in stats.items():
            total = counts.setdefault(layer, dict.fromkeys(values, 0))
            for key, value in values.items():
                total[key] += int(value)
    return correct / len(labels), counts


def choose_threshold(qnet, mor_tables, images, labels, *, budget=0.005):
    """The lowest T of THRESHOLDS whose accuracy on ``images`` (training data) stays within ``budget``
    of the exact network's; returns (T, [(T, accuracy), ...])."""
    exact = qnet.accuracy(images, labels)
    sweep = []
    for threshold in THRESHOLDS:
        sweep.append((threshold, float(mor_evaluate(qnet, mor_tables, threshold, images, labels)[0])))
    within = [t for t, acc in sweep if acc >= exact - budget]
    return (min(within) if within else max(THRESHOLDS)), sweep
