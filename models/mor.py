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
    """``([(a, w), ...], shape)``: per group of compute ``layer`` (a grouped or depthwise conv's groups in filter
    order; any other layer one) on one input ``x`` [C, H, W], int8 [pixels, R·S·C/g] input vectors of its neurons
    and their weights [F/g, R·S·C/g] in the same order; ``shape`` the layer's output (F, H', W'). An fc layer:
    ``([(x [1, n_in], w)], (F,))``."""
    if layer.kind == "fc":
        return [(x.reshape(1, -1), layer.w)], (len(layer.w),)
    g = layer.groups
    c, f = x.shape[0] // g, len(layer.w) // g
    groups = []
    for i in range(g):
        a, wmat, (_, h_out, w_out) = conv_as_gemm(x[i * c:(i + 1) * c], layer.w[i * f:(i + 1) * f], pad=layer.pad,
                                                  stride=layer.stride)
        groups.append((a, np.ascontiguousarray(wmat.T)))
    return groups, (len(layer.w), h_out, w_out)


def profile(layer, inputs):
    """Per filter (neuron): Pearson c, least-squares slope m and intercept b of the exact accumulator (bias
    included) against p_bin over every pixel of ``inputs`` (the layer's real int8 inputs, [N, C, H, W] or
    [N, n_in])."""
    per_image = [neuron_inputs(layer, x)[0] for x in inputs]
    fits, start = [], 0
    for k in range(len(per_image[0])):
        a = np.concatenate([groups[k][0] for groups in per_image])
        w = per_image[0][k][1]
        bias = layer.bias[start:start + len(w)]
        start += len(w)
        p = binary_dot(a, w).astype(np.float64)
        acc = (a.astype(np.int64) @ w.astype(np.int64).T + bias).astype(np.float64)
        dp, da = p - p.mean(axis=0), acc - acc.mean(axis=0)
        var_p, var_a = (dp ** 2).mean(axis=0), (da ** 2).mean(axis=0)
        cov = (dp * da).mean(axis=0)
        m = np.divide(cov, var_p, out=np.zeros_like(cov), where=var_p > 0)
        b = acc.mean(axis=0) - m * p.mean(axis=0)
        c = np.divide(cov, np.sqrt(var_p * var_a), out=np.zeros_like(cov), where=(var_p > 0) & (var_a > 0))
        fits.append((c, m, b))
    return tuple(np.concatenate(part) for part in zip(*fits))


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
    inputs on training images). A grouped conv's filters cluster within their group (a proxy shares its members'
    input vectors); ``proxy`` holds layer-wide filter indices."""
    out = {}
    for layer in predicted(qnet):
        c, m, b = profile(layer, layer_inputs[layer.name])
        m_q, b_q, bits = _fixed_point(m, b)
        f = len(layer.w) // layer.groups
        proxy = np.concatenate([np.where(p >= 0, p + i * f, p) for i, p in enumerate(
            proxy_clusters(layer.w[i * f:(i + 1) * f].reshape(f, -1)) for i in range(layer.groups))])
        out[layer.name] = MorTables(proxy, m_q, b_q, c, bits)
    return out


def exact_args(x, w, bias):
    """``mor_layer``'s arguments that compute every neuron (each its own proxy, none skipped)."""
    n_out = len(w)
    return {"x": x, "w": w, "bias": bias, "proxy": np.full(n_out, -1, np.int64), "m_q": np.zeros(n_out, np.int32),
            "b_q": np.zeros(n_out, np.int32), "enable": np.zeros(n_out, bool)}


def mor_forward(qnet, mor_tables, threshold, image, *, layer_args=None):
    """Logits of one int8 image with every ``predicted`` layer (conv and hidden fc) under the skip rule, and
    per-layer counts.

    ``layer_args``, if a dict, receives under each compute layer's name a list of ``mor_layer``'s arguments (the
    ``mor`` engine's inputs), one per group (``neuron_inputs``): the skip rule's for the predicted layers,
    ``exact_args`` for the others (the classifier, a conv feeding a residual Add).

    Counts per predicted layer (MoR Fig. 12 categories): ``neurons``, ``skipped`` (predicted zero),
    ``mispredicted`` (skipped but truly positive), ``zero_missed`` (computed, truly zero),
    ``nonzero_computed``, ``macs`` (performed) and ``dense_macs``.
    """
    stats = {}

    def compute(layer, x):
        groups, shape = neuron_inputs(layer, x)
        biases = np.split(layer.bias, len(groups))
        if layer.name not in mor_tables:  # computed exactly by the network
            if layer_args is not None:
                layer_args[layer.name] = [exact_args(a, w, bias) for (a, w), bias in zip(groups, biases)]
            return None
        t, f = mor_tables[layer.name], len(layer.w) // len(groups)
        args = []
        for i, ((a, w), bias) in enumerate(zip(groups, biases)):
            own = slice(i * f, (i + 1) * f)
            args.append({"x": a, "w": w, "bias": bias, "proxy": np.where(t.proxy[own] >= 0, t.proxy[own] - i * f, -1),
                         "m_q": t.m_q[own], "b_q": t.b_q[own], "enable": t.enable(threshold)[own]})
        if layer_args is not None:
            layer_args[layer.name] = args
        outs = [mor_layer(**each) for each in args]
        merged = {key: np.concatenate([out[key] for out in outs], axis=1) for key in ("y", "exact", "skipped")}
        zero = merged["exact"] <= 0
        stats[layer.name] = {"neurons": merged["skipped"].size, "skipped": int(merged["skipped"].sum()),
                             "mispredicted": int(sum(out["mispredicted"].sum() for out in outs)),
                             "zero_missed": int((zero & ~merged["skipped"]).sum()),
                             "nonzero_computed": int((~zero & ~merged["skipped"]).sum()),
                             "macs": int(sum(out["macs"] for out in outs)),
                             "dense_macs": sum(a.shape[0] * w.shape[0] * w.shape[1] for a, w in groups)}
        return requantize(merged["y"].T.reshape(shape), layer.mult, layer.shift)

    return qnet.forward(image, compute=compute)[0], stats


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
