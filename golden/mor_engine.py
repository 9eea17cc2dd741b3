"""The Mixture-of-Rookies layer engine's DNN format and exact schedule (MoR §4, docs/mor.md).

DNN format (MoR §4.2): neurons are stored proxies first (largest cluster first, ties by ascending index: the
proxies whose members wait on them are decided early, so a run does not end waiting on a late decision), then
the members of each proxy in turn (ascending index); a proxy carries its cluster size. A *position* is a
neuron's place in that order; the engine's weight rows and its results are in that order.

A *run* computes every neuron of up to ``max_vectors`` input vectors (MoR §4.1's input window), proxy by
proxy: proxy k for every vector, then proxy k + 1 (cluster q = k·V + v is proxy k on vector v), and the
members of cluster q for q in turn; a job's first run streaming its inputs goes vector by vector instead
(q = v·n_proxies + k, ``stream_for``).

Schedule, cycle by cycle from the first cycle after a run starts (``t = 0``), every decision taken on the
state at the start of the cycle:

- A CU takes a neuron in cycle t and is free again at ``t + C`` (C = ⌈n_in / mac_width⌉ words); the
  neuron completes (result written, a proxy's decision acc + bias ≤ 0 visible from the next cycle)
  at ``t + C + S`` (S = 5, ``MorConfig.cu_stages``). A binCU lane takes a member at t, is free at
  ``t + CB`` (CB = ⌈n_in / bits_per_cycle⌉) and predicts at ``t + CB + 2 + L`` (2 =
  ``MorConfig.bin_stages``, L = 4 the binCU's latency): zero completes the member as skipped, otherwise
  it joins the *rejected* queue, from which it can be taken from the next cycle.
- A neuron is taken only once its weight row and input vector are loaded (``streamed_ready``: the first run
  of a job computes while the larger of the two streams in, a beat a cycle).
- The walker goes through the members of cluster q in DNN order once proxy q's decision is visible: a
  member goes to the binCUs' queue when its proxy decided zero and it is enabled (``route_bin``; one a cycle,
  if the queue held fewer than ``MorConfig.bin_queue`` at the cycle's start), else to a CU.
  Taking a cluster's last member moves to the next cluster in the same cycle; an empty cluster
  takes one cycle with no member.
- CU issue: one source per cycle, its neurons to the lowest free CUs: the rejected queue's head (one),
  else the walker's members bound for CUs (up to ``issue`` consecutive ones of its cluster), else the
  next proxy on up to ``issue`` consecutive vectors (members before proxies, MoR §4.1). One binCU issue
  per cycle: the queue's head (queued in an earlier cycle) to the lowest free lane.
- The run ends in the cycle of the last completion; ``run_cycles`` counts it.

A group of neurons issued together is consecutive positions of one vector or one position of consecutive
vectors, so its results go to distinct banks of the engine's ``issue`` result memories; one group completes
per cycle (every neuron of a layer takes C cycles).
"""

from collections import deque

import numpy as np

from .mor import binary_predict, mor_layer

__all__ = ["IDLE", "stream_for", "dnn_order", "engine_schedule", "beats", "streamed_ready", "job_cycles", "runs",
           "engine_layer", "breakdown"]

# Why a free CU takes nothing in a cycle of a run (``engine_schedule``'s ``idle``):
IDLE = {
    "issue": "other neurons were issued this cycle (one source, at most `issue` neurons a cycle)",
    "loading": "the next neuron's weight row or input vector is still loading (a job's first run)",
    "prediction": "neurons are left but wait on a proxy's decision or a binCU's prediction",
    "tail": "every neuron of the run is issued; the last ones finish",
}


def stream_for(n_out, n_vectors):
    """What loads while a job's first run (of ``n_vectors`` vectors) computes, the other kind loading before it
    starts: the larger of the two (weights when n_out ≥ n_vectors). "weights": the run goes proxy by proxy
    (cluster q = k·V + v), each row used as soon as it is in; "inputs": vector by vector (q = v·n_proxies + k),
    each vector used as soon as it is in."""
    return "weights" if n_out >= n_vectors else "inputs"


def dnn_order(proxy):
    """``(order, sizes)``: original neuron index of each position, and each proxy's cluster size (descending)."""
    proxy = np.asarray(proxy)
    proxies = np.flatnonzero(proxy == -1)
    sizes = np.array([(proxy == k).sum() for k in proxies], np.int64)
    proxies = proxies[np.argsort(-sizes, kind="stable")]  # largest clusters first, ties by index
    members = [np.flatnonzero(proxy == k) for k in proxies]
    order = np.concatenate([proxies, *members]).astype(np.int64)
    return order, np.array([len(m) for m in members], np.int64)


def engine_schedule(cfg, n_in, sizes, route_bin, predicted_zero, *, stream=None, ready=None):
    """``(run_cycles, skipped, idle)`` of one run of V vectors: ``sizes`` per proxy (DNN order); ``route_bin``
    and ``predicted_zero`` bool [V, members in DNN order] (a member whose proxy decided zero and that is
    enabled; the binCU's outcome). ``stream`` "weights" or "inputs" when the run is a job's first (``stream_for``),
    ``ready`` the first cycle each weight row or input vector of the streamed kind can be used. ``skipped``
    [V, members]; ``idle`` {``IDLE`` cause: CU-cycles}."""
    route_bin = np.asarray(route_bin, bool)
    n_vectors, n_members = route_bin.shape
    n_p = len(sizes)
    n_out = n_p + n_members
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)  # cluster k's first member
    row_at, vector_at = np.zeros(n_out, np.int64), np.zeros(n_vectors, np.int64)
    if stream is not None:
        row_at, vector_at = (ready, vector_at) if stream == "weights" else (row_at, ready)
    vector_major = stream == "inputs"
    words, bin_words = -(-n_in // cfg.mac_width), -(-n_in // cfg.bits_per_cycle)
    cu_free, lane_free = [0] * cfg.n_cu, [0] * cfg.n_bincu
    completions, decided_at = {}, []   # decided_at: each proxy's completion, in cluster order q
    rejected = deque()                 # (cycle it can be taken, (member, vector))
    bin_queue, queued = deque(), 0     # the same, the walker's members for the binCUs; its length at a cycle's start
    skipped = np.zeros((n_vectors, n_members), bool)
    idle = dict.fromkeys(IDLE, 0)
    issued = 0                         # proxies issued, in cluster order
    walk_q = walk_j = walked = 0       # the walker: cluster q, its member j; members it has taken
    decided = done = t = 0
    total, n_q = n_vectors * n_out, n_vectors * n_p

    def cluster(q):
        """(proxy k, vector v) of cluster q."""
        return divmod(q, n_p)[::-1] if vector_major else divmod(q, n_vectors)

    def take(n):
        nonlocal walk_q, walk_j, walked
        walk_j, walked = walk_j + n, walked + n
        if walk_j == sizes[cluster(walk_q)[0]]:
            walk_q, walk_j = walk_q + 1, 0

    def proxies(t, most):
        """The next proxies (k, v) that can be issued together: consecutive clusters of one vector or one proxy."""
        group = []
        k0, v0 = cluster(issued) if issued < n_q else (0, 0)
        for q in range(issued, min(issued + most, n_q)):
            k, v = cluster(q)
            if (v != v0 if vector_major else k != k0) or row_at[k] > t or vector_at[v] > t:
                break
            group.append((k, v))
        return group

    while True:
        while decided < len(decided_at) and decided_at[decided] < t:
            decided += 1
        walker = None                  # (member, vector) of the walker's next member
        if walk_q < decided:
            k, v = cluster(walk_q)
            if sizes[k] == 0:
                walk_q += 1
            else:
                walker = (int(first[k]) + walk_j, v)
        free = [i for i in range(cfg.n_cu) if cu_free[i] <= t]
        group = []
        if free:
            if rejected and rejected[0][0] <= t:
                group = [rejected.popleft()[1]]
            elif walker is not None and not route_bin[walker[1], walker[0]] and row_at[n_p + walker[0]] <= t:
                m, v = walker
                left = sizes[cluster(walk_q)[0]] - walk_j
                n = 1
                while (n < min(cfg.issue, len(free), left) and not route_bin[v, m + n]
                       and row_at[n_p + m + n] <= t):
                    n += 1
                group, walker = [(n_p + m + i, v) for i in range(n)], None
                take(n)
            else:
                group = proxies(t, min(cfg.issue, len(free)))
                issued += len(group)
                decided_at += [t + words + cfg.cu_stages] * len(group)
            for cu, _ in zip(free, group):
                cu_free[cu] = t + words
            if group:
                completions[t + words + cfg.cu_stages] = completions.get(t + words + cfg.cu_stages, 0) + len(group)
        lane = next((i for i in range(cfg.n_bincu) if lane_free[i] <= t), None)
        if lane is not None and bin_queue and bin_queue[0][0] <= t:
            _, (m, v) = bin_queue.popleft()
            lane_free[lane] = t + bin_words
            predicted_at = t + bin_words + cfg.bin_stages + cfg.bincu.latency
            if predicted_zero[v, m]:
                skipped[v, m] = True
                completions[predicted_at] = completions.get(predicted_at, 0) + 1
            else:
                rejected.append((predicted_at + 1, (n_p + m, v)))
        if (walker is not None and route_bin[walker[1], walker[0]] and queued < cfg.bin_queue
                and row_at[n_p + walker[0]] <= t):
            bin_queue.append((t + 1, walker))
            take(1)
        queued = len(bin_queue)
        if len(free) > len(group):
            if group:
                cause = "issue"
            elif (issued < n_q and not proxies(t, 1)) or (walker is not None and row_at[n_p + walker[0]] > t):
                cause = "loading"
            elif issued < n_q or walked < n_vectors * n_members or rejected or bin_queue:
                cause = "prediction"
            else:
                cause = "tail"
            idle[cause] += len(free) - len(group)
        done += completions.pop(t, 0)
        if done == total:
            return t + 1, skipped, idle
        t += 1


def beats(cfg, n_in):
    """Loaded beats (``load_words`` words of mac_width) of one input vector or weight row."""
    return -(-n_in // (cfg.mac_width * cfg.load_words))


def streamed_ready(cfg, n_in, n):
    """First cycle of a job's first run (its t = 0) from which each of ``n`` streamed rows or vectors can be used:
    they load one beat per cycle from the cycle the run starts."""
    return np.arange(1, n + 1, dtype=np.int64) * beats(cfg, n_in) - 1


def job_cycles(cfg, n_in, n_out, run_vectors, run_cycles):
    """``(cycles, phases)`` of one job at full rate, one word or beat (``beats``: B of a vector or row) a cycle: a
    header and n_out table words, then run 0's vectors (B beats each) and the n_out·B weight beats — the streamed
    kind (``stream_for``) second, while run 0 computes: run 0
    starts the cycle after the other kind's last word — then the other runs' vectors. Runs overlap (two input
    buffers, two result buffers): run r's vectors load while run r - 1 computes, into a buffer freed when run
    r - 2's computation ended; run r starts the cycle after its last word once the engine is free and run r - 2's
    outputs are out, computes for its run cycles from the next cycle, and streams its outputs (⌈n_out / issue⌉
    words per vector) after run r - 1's. ``phases``: cycles before run 0 computes (``load``), between runs
    (``between``) and after the last run (``drain``); with the runs' cycles they sum to ``cycles``."""
    per_row, out_words = beats(cfg, n_in), -(-n_out // cfg.issue)
    loaded = 1 + n_out                         # first cycle after the header and tables
    input_free, results_free = [0, 0], [0, 0]  # first cycle each buffer takes a run
    engine_free = output_free = 0
    last_out = loaded - 1
    phases = {"load": 0, "between": 0, "drain": 0}
    for r, (vectors, cycles) in enumerate(zip(run_vectors, run_cycles)):
        b = r % 2
        if r == 0:
            weights, inputs = n_out * per_row, vectors * per_row
            first = inputs if stream_for(n_out, vectors) == "weights" else weights
            start = loaded + first
            loaded += weights + inputs
        else:
            last_in = max(loaded, input_free[b]) + vectors * per_row - 1
            loaded = last_in + 1
            start = max(last_in + 1, engine_free, results_free[b])
        phases["load" if r == 0 else "between"] += start + 1 - engine_free
        end = start + int(cycles)              # the run's last completion
        input_free[b] = engine_free = end + 1
        last_out = max(end + 1, output_free) + vectors * out_words - 1
        output_free = results_free[b] = last_out + 1
    phases["drain"] = last_out + 1 - engine_free
    return last_out + 1, phases


def runs(cfg, n_vectors):
    """Slices of consecutive input vectors, one per run (at most ``max_vectors`` each)."""
    return [slice(p, min(p + cfg.max_vectors, n_vectors)) for p in range(0, n_vectors, cfg.max_vectors)]


def engine_layer(cfg, x, w, bias, proxy, m_q, b_q, enable, job_starts=(0,)):
    """The engine on one layer: ``{"y", "skipped", "macs", "run_cycles", "idle"}``. The skip mask is the
    schedule's (equal to ``mor_layer``'s by construction of the routing, which the tests check);
    ``run_cycles`` per run of up to ``max_vectors`` consecutive input vectors, ``idle`` the runs' idle
    CU-cycles by cause; runs in ``job_starts`` begin a job, computing while its streamed kind loads."""
    exact = mor_layer(x, w, bias, proxy, m_q, b_q, enable)["exact"]
    x2 = x.reshape(-1, x.shape[-1])
    exact = exact.reshape(len(x2), -1)
    order, sizes = dnn_order(proxy)
    n_p = len(sizes)
    _, predicted_zero = binary_predict(x2, w, m_q, b_q)
    member_enabled = enable[order[n_p:]]
    skipped = np.zeros(exact.shape, bool)
    cycles, idle = [], dict.fromkeys(IDLE, 0)
    for r, run in enumerate(runs(cfg, len(x2))):
        route_bin = member_enabled & np.repeat(exact[run][:, order[:n_p]] <= 0, sizes, axis=1)
        stream = stream_for(len(order), run.stop - run.start) if r in job_starts else None
        n_streamed = len(order) if stream == "weights" else run.stop - run.start
        run_cycles, run_skipped, run_idle = engine_schedule(
            cfg, x2.shape[1], sizes, route_bin, predicted_zero[run][:, order[n_p:]], stream=stream,
            ready=None if stream is None else streamed_ready(cfg, x2.shape[1], n_streamed))
        skipped[run, order[n_p:]] = run_skipped
        cycles.append(run_cycles)
        idle = {cause: idle[cause] + run_idle[cause] for cause in IDLE}
    y = np.where(skipped, 0, np.maximum(exact, 0)).astype(np.int32)
    shape = x.shape[:-1] + (w.shape[0],)
    return {"y": y.reshape(shape), "skipped": skipped.reshape(shape),
            "macs": np.int64((~skipped).sum() * w.shape[1]), "run_cycles": np.array(cycles, np.int64),
            "idle": idle}


def breakdown(cfg, n_in, out, phases, cycles):
    """Where a layer's cycles went: {part: cycles} summing to ``cycles`` — ``compute`` (CU-cycles computing, over
    n_cu), each ``IDLE`` cause (idle CU-cycles in runs, over n_cu), ``load``, ``between`` and ``drain`` (every CU
    idle: ``job_cycles``' phases) — and ``mac_utilisation``, the MACs over n_cu·mac_width·cycles."""
    words = -(-n_in // cfg.mac_width)
    computed = int(out["macs"]) // n_in
    parts = {"compute": computed * words / cfg.n_cu,
             **{cause: out["idle"][cause] / cfg.n_cu for cause in IDLE}, **phases}
    return {**parts, "mac_utilisation": int(out["macs"]) / (cfg.n_cu * cfg.mac_width * cycles)}
