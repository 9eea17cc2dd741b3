"""The Mixture-of-Rookies layer engine's DNN format and exact schedule (MoR §4, docs/mor.md).

DNN format (MoR §4.2): neurons are stored proxies first (largest cluster first, ties by ascending index: the
proxies whose members wait on them are decided early, so a run does not end waiting on a late decision), then
the members of each proxy in turn (ascending index); a proxy carries its cluster size. A *position* is a
neuron's place in that order.

A *run* computes every neuron of up to ``max_vectors`` input vectors (MoR §4.1's input window): in
run order, all proxies (vector by vector), then the members of proxy q = v·n_proxies + k (cluster k of
vector v) for q in turn. ``engine_schedule`` takes a run's clusters and members flattened in that order.

Schedule, cycle by cycle from the first cycle after a run's inputs are loaded (``t = 0``), every
decision taken on the state at the start of the cycle:

- A CU takes a neuron in cycle t and is free again at ``t + C`` (C = ⌈n_in / mac_width⌉ words); the
  neuron completes (result written, a proxy's decision acc + bias ≤ 0 visible from the next cycle)
  at ``t + C + S`` (S = 5, ``MorConfig.cu_stages``). A binCU lane takes a member at t, is free at
  ``t + CB`` (CB = ⌈n_in / bits_per_cycle⌉) and predicts at ``t + CB + 2 + L`` (2 =
  ``MorConfig.bin_stages``, L = 4 the binCU's latency): zero completes the member as skipped, otherwise
  it joins the *rejected* queue, from which it can be taken from the next cycle.
- The walker goes through the members in DNN order, one cluster at a time once its proxy's decision
  is visible: a member goes to a binCU when its proxy decided zero and it is enabled, else to a CU.
  Taking a cluster's last member moves to the next cluster in the same cycle; an empty cluster
  takes one cycle with no member.
- One CU issue per cycle, to the lowest free CU: the rejected queue's head, else the walker's
  member, else the next proxy (members before proxies, MoR §4.1). One binCU issue per cycle, to
  the lowest free lane.
- The run ends in the cycle of the last completion; ``run_cycles`` counts it.
"""

from collections import deque

import numpy as np

from .mor import binary_predict, mor_layer

__all__ = ["dnn_order", "engine_schedule", "job_cycles", "runs", "engine_layer"]


def dnn_order(proxy):
    """``(order, sizes)``: original neuron index of each position, and each proxy's cluster size (descending)."""
    proxy = np.asarray(proxy)
    proxies = np.flatnonzero(proxy == -1)
    sizes = np.array([(proxy == k).sum() for k in proxies], np.int64)
    proxies = proxies[np.argsort(-sizes, kind="stable")]  # largest clusters first, ties by index
    members = [np.flatnonzero(proxy == k) for k in proxies]
    order = np.concatenate([proxies, *members]).astype(np.int64)
    return order, np.array([len(m) for m in members], np.int64)


def engine_schedule(cfg, n_in, sizes, route_bin, predicted_zero):
    """``(run_cycles, skipped)`` of one run, in run order: ``sizes`` per proxy, ``route_bin`` per neuron (a
    member whose proxy decided zero and that is enabled), ``predicted_zero`` (the binCU's outcome)."""
    n_p, n_out = len(sizes), len(route_bin)
    words, bin_words = -(-n_in // cfg.mac_width), -(-n_in // cfg.bits_per_cycle)
    cu_free, lane_free = [0] * cfg.n_cu, [0] * cfg.n_bincu
    completions, proxy_done_at = {}, []
    rejected = deque()  # (cycle it can be taken, position)
    skipped = np.zeros(n_out, bool)
    next_proxy, cluster, member = 0, 0, n_p
    left = int(sizes[0]) if n_p else 0
    done = t = 0

    def complete(cycle):
        completions[cycle] = completions.get(cycle, 0) + 1

    def next_cluster():
        nonlocal cluster, left
        cluster += 1
        left = int(sizes[cluster]) if cluster < n_p else 0

    def take():
        nonlocal member, left
        member, left = member + 1, left - 1
        if left == 0:
            next_cluster()

    while True:
        decided = sum(1 for c in proxy_done_at if c < t)
        walker = None
        if cluster < decided:
            if left == 0:
                next_cluster()
            else:
                walker = member
        cu = next((i for i in range(cfg.n_cu) if cu_free[i] <= t), None)
        if cu is not None:
            pos = None
            if rejected and rejected[0][0] <= t:
                pos = rejected.popleft()[1]
            elif walker is not None and not route_bin[walker]:
                pos, walker = walker, None
                take()
            elif next_proxy < n_p:
                pos, next_proxy = next_proxy, next_proxy + 1
                proxy_done_at.append(t + words + cfg.cu_stages)
            if pos is not None:
                cu_free[cu] = t + words
                complete(t + words + cfg.cu_stages)
        lane = next((i for i in range(cfg.n_bincu) if lane_free[i] <= t), None)
        if walker is not None and route_bin[walker] and lane is not None:
            lane_free[lane] = t + bin_words
            predicted_at = t + bin_words + cfg.bin_stages + cfg.bincu.latency
            if predicted_zero[walker]:
                skipped[walker] = True
                complete(predicted_at)
            else:
                rejected.append((predicted_at + 1, walker))
            take()
        done += completions.pop(t, 0)
        if done == n_out:
            return t + 1, skipped
        t += 1


def job_cycles(cfg, n_in, n_out, run_vectors, run_cycles):
    """Harness cycles of one job at full rate: a header, n_out table words and n_out·C weight words, then the
    runs, overlapped (two input buffers, two result buffers): run r's vectors (C words each) load while run
    r - 1 computes, into a buffer freed when run r - 2's computation ended; run r starts the cycle after its
    last word once the engine is free and run r - 2's outputs are out, computes for its run cycles from the
    next cycle, and streams its outputs (n_out per vector) after run r - 1's."""
    words = -(-n_in // cfg.mac_width)
    loaded = 1 + n_out + n_out * words         # first cycle after the layer's words
    input_free, results_free = [0, 0], [0, 0]  # first cycle each buffer takes a run
    engine_free = output_free = 0
    last_out = loaded - 1
    for r, (vectors, cycles) in enumerate(zip(run_vectors, run_cycles)):
        b = r % 2
        last_in = max(loaded, input_free[b]) + vectors * words - 1
        loaded = last_in + 1
        start = max(last_in + 1, engine_free, results_free[b])
        end = start + int(cycles)              # the run's last completion
        input_free[b] = engine_free = end + 1
        last_out = max(end + 1, output_free) + vectors * n_out - 1
        output_free = results_free[b] = last_out + 1
    return last_out + 1


def runs(cfg, n_vectors):
    """Slices of consecutive input vectors, one per run (at most ``max_vectors`` each)."""
    return [slice(p, min(p + cfg.max_vectors, n_vectors)) for p in range(0, n_vectors, cfg.max_vectors)]


def engine_layer(cfg, x, w, bias, proxy, m_q, b_q, enable):
    """The engine on one layer: ``{"y", "skipped", "macs", "run_cycles"}``. The skip mask is the
    schedule's (equal to ``mor_layer``'s by construction of the routing, which the tests check);
    ``run_cycles`` per run of up to ``max_vectors`` consecutive input vectors."""
    exact = mor_layer(x, w, bias, proxy, m_q, b_q, enable)["exact"]
    x2 = x.reshape(-1, x.shape[-1])
    exact = exact.reshape(len(x2), -1)
    order, sizes = dnn_order(proxy)
    n_p, n_members = len(sizes), len(order) - len(sizes)
    _, predicted_zero = binary_predict(x2, w, m_q, b_q)
    member_enabled = enable[order[n_p:]]
    skipped = np.zeros(exact.shape, bool)
    cycles = []
    for run in runs(cfg, len(x2)):
        vectors = range(len(x2))[run]
        # Run order: every vector's proxies, then each vector's members (cluster by cluster).
        route_bin = [np.zeros(n_p * len(vectors), bool)]
        zero = [np.zeros(n_p * len(vectors), bool)]
        for v in vectors:
            route_bin.append(member_enabled & np.repeat(exact[v, order[:n_p]] <= 0, sizes))
            zero.append(predicted_zero[v, order[n_p:]])
        run_cycles, run_skipped = engine_schedule(cfg, x2.shape[1], np.tile(sizes, len(vectors)),
                                                  np.concatenate(route_bin), np.concatenate(zero))
        members = run_skipped[n_p * len(vectors):].reshape(len(vectors), n_members)
        skipped[np.ix_(list(vectors), order[n_p:])] = members
        cycles.append(run_cycles)
    y = np.where(skipped, 0, np.maximum(exact, 0)).astype(np.int32)
    shape = x.shape[:-1] + (w.shape[0],)
    return {"y": y.reshape(shape), "skipped": skipped.reshape(shape),
            "macs": np.int64((~skipped).sum() * w.shape[1]), "run_cycles": np.array(cycles, np.int64)}
