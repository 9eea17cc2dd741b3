"""Mixture-of-Rookies (docs/mor.md): binarized dot products and the proxy + binary ReLU-zero skip rule."""

import numpy as np

from .checks import InputError, require_array, require_int8
from .quant import fits

__all__ = ["binary_dot", "check_bincu", "bincu_chunks", "binary_predict", "bincu_cycles", "check_mor", "mor_layer"]


def binary_dot(x, w):
    """``p_bin`` int64 [P, n_out]: 2·popcount(XNOR(x > 0, w ≥ 0)) - n over each input vector's n bits."""
    sx = np.where(x > 0, 1, -1).astype(np.int64)
    sw = np.where(w >= 0, 1, -1).astype(np.int64)
    return sx @ sw.T


def check_bincu(cfg, x, w, m_q, b_q):
    """Refuse what the binCU cannot take: ``x``, ``w`` int8 [N, n], 1 ≤ n ≤ max_in; ``m_q``, ``b_q`` int32 [N]."""
    require_int8("x", x, ndim=2)
    require_int8("w", w, shape=x.shape)
    for name, table in (("m_q", m_q), ("b_q", b_q)):
        require_array(name, table, dtype=np.int32, shape=(x.shape[0],))
    if not 1 <= x.shape[1] <= cfg.max_in:
        raise InputError(f"a vector of {x.shape[1]} inputs does not fit {cfg.module} (1..{cfg.max_in})")


def bincu_chunks(cfg, x, w):
    """One neuron's sign bits for the binCU: ``(x_bits, w_bits, count)``, bits [chunks, bits_per_cycle]
    (x > 0, w ≥ 0; chunk c holds elements c·bits_per_cycle + i) and ``count`` valid bits per chunk."""
    n = len(x)
    width = cfg.bits_per_cycle
    chunks = -(-n // width)
    x_bits = np.zeros(chunks * width, np.int64)
    w_bits = np.zeros(chunks * width, np.int64)
    x_bits[:n], w_bits[:n] = x > 0, w >= 0
    count = np.minimum(width, n - width * np.arange(chunks))
    return x_bits.reshape(chunks, width), w_bits.reshape(chunks, width), count


def binary_predict(x, w, m_q, b_q):
    """``(p_bin, zero)`` [P, n_out]: the binCU's estimate ``m_q·p_bin + b_q`` (int64, exact) is negative."""
    p = binary_dot(x, w)
    return p, m_q.astype(np.int64) * p + b_q.astype(np.int64) < 0


def bincu_cycles(cfg, n_in, neurons):
    """Cycles of ``neurons`` predictions of ``n_in`` inputs streamed back to back (first chunk to last result)."""
    return neurons * -(-n_in // cfg.bits_per_cycle) + cfg.latency


def check_mor(x, w, bias, proxy, m_q, b_q, enable, *, acc_width=32):
    """Refuse what the skip rule cannot run exactly; return ``x`` as [P, n_in].

    Tables must have one entry per neuron; ``proxy[i]`` is -1 (i is a proxy) or the index of a
    proxy; and no accumulator may leave ``acc_width`` bits for any int8 input (the skip rule tests
    the accumulator's sign, so a wrapped value would decide wrongly).
    """
    require_int8("x", x)
    if x.ndim not in (1, 2):
        raise InputError(f"x must be [n_in] or [P, n_in], not shape {list(x.shape)}")
    require_int8("w", w, ndim=2)
    x2 = x.reshape(-1, x.shape[-1])
    n_out, n_in = w.shape
    if n_out == 0 or n_in == 0 or x2.shape[0] == 0:
        raise InputError(f"x {list(x.shape)} and w {list(w.shape)} must not be empty")
    if x2.shape[1] != n_in:
        raise InputError(f"x has {x2.shape[1]} inputs but w has {n_in}")
    require_array("bias", bias, dtype=np.int32, shape=(n_out,))
    for name, table in (("m_q", m_q), ("b_q", b_q)):
        require_array(name, table, dtype=np.int32, shape=(n_out,))
    require_array("enable", enable, dtype=np.bool_, shape=(n_out,))
    proxy = require_array("proxy", proxy, shape=(n_out,))
    if not np.issubdtype(proxy.dtype, np.integer):
        raise InputError(f"proxy must be integers, not {proxy.dtype}")
    outside = (proxy < -1) | (proxy >= n_out)
    if outside.any():
        i = int(np.argmax(outside))
        raise InputError(f"proxy[{i}] = {proxy[i]} is outside -1..{n_out - 1}")
    members = np.flatnonzero(proxy >= 0)
    not_proxy = members[proxy[proxy[members]] != -1]
    if len(not_proxy):
        i = int(not_proxy[0])
        raise InputError(f"proxy[{i}] = {proxy[i]} points at neuron {proxy[i]}, which is not a proxy")
    bound = np.abs(w.astype(np.int64)).sum(axis=1) * 128 + np.abs(bias.astype(np.int64))
    if not fits(bound, acc_width):
        i = int(np.argmax(bound))
        raise InputError(f"neuron {i}'s accumulator could reach {int(bound[i])}, beyond {acc_width} bits")
    return x2


def mor_layer(x, w, bias, proxy, m_q, b_q, enable):
    """One layer under the skip rule: ``{"y", "skipped", "mispredicted", "macs", "exact"}``.

    A non-proxy, enabled neuron is skipped (output 0, no MACs) iff its proxy's accumulator + bias
    ≤ 0 and ``m_q·p_bin + b_q < 0``; every other neuron is computed exactly. ``y`` is the post-ReLU
    int32 output (shape of ``x`` with n_out), ``skipped`` the skip mask, ``mispredicted`` the skipped
    neurons whose exact output is positive, ``macs`` the multiply-accumulates performed, ``exact``
    the exact pre-ReLU accumulators (int64).
    """
    x2 = check_mor(x, w, bias, proxy, m_q, b_q, enable)
    exact = x2.astype(np.int64) @ w.astype(np.int64).T + bias.astype(np.int64)
    _, predicted_zero = binary_predict(x2, w, m_q, b_q)
    member = proxy >= 0
    proxy_zero = np.where(member, exact[:, np.where(member, proxy, 0)] <= 0, False)
    skipped = member & enable & proxy_zero & predicted_zero
    y = np.where(skipped, 0, np.maximum(exact, 0)).astype(np.int32)
    shape = x.shape[:-1] + (w.shape[0],)
    return {"y": y.reshape(shape), "skipped": skipped.reshape(shape),
            "mispredicted": (skipped & (exact > 0)).reshape(shape),
            "macs": int((~skipped).sum()) * w.shape[1], "exact": exact.reshape(shape)}
