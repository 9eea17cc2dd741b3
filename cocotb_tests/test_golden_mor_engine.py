"""Golden MoR engine: DNN format, hand-worked schedules, and the schedule's skips equal the skip rule's."""

import numpy as np
import pytest

from generators.config import MorConfig
from golden.mor import mor_layer
from golden.mor_engine import breakdown, dnn_order, engine_layer, engine_schedule, job_cycles, runs, streamed_ready


def test_dnn_order_puts_proxies_first_largest_cluster_first_then_members_by_cluster():
    proxy = np.array([3, -1, 1, -1, 3, 1, -1, 3])
    order, sizes = dnn_order(proxy)
    assert order.tolist() == [3, 1, 6, 0, 4, 7, 2, 5]
    assert sizes.tolist() == [3, 2, 0]
    order, sizes = dnn_order(np.array([3, -1, 1, -1, 3, 1, -1]))  # equal clusters keep index order
    assert order.tolist() == [1, 3, 6, 2, 5, 0, 4] and sizes.tolist() == [2, 2, 0]


def test_one_cu_runs_neurons_back_to_back():
    """n_cu = 1, no members: neuron k is issued at k·C and the last completes at (n-1)·C + C + 5 (its words'
    RAM data, operand, product and sum stages, then the result)."""
    cfg = MorConfig(name="t", n_cu=1, mac_width=4, n_bincu=1, bits_per_cycle=8, max_in=64, max_out=16)
    for n, n_in in ((1, 1), (5, 9), (16, 64)):
        words = -(-n_in // 4)
        run, skipped, idle = engine_schedule(cfg, n_in, np.zeros(n, np.int64), np.zeros((1, 0), bool),
                                             np.zeros((1, 0), bool))
        assert cfg.cu_stages == 5 and run == n * words + 6 and skipped.size == 0
        assert sum(idle.values()) == run * cfg.n_cu - n * words  # every CU-cycle not computing has a cause


@pytest.mark.parametrize("predicted_zero, run", [(True, 17), (False, 25)])
def test_proxy_then_binary_prediction(predicted_zero, run):
    """One proxy (zero) and one enabled member, C = 2, CB = 1: the proxy is issued at 0 and completes at 0 + 2 + 5
    = 7; the member is queued for the binCUs at 8, taken at 9 and predicted at 9 + 1 + 2 (RAM data, chunk) + 4
    (the binCU's latency) = 16. Zero ends the run there; otherwise it is taken from the rejected queue at 17 and
    completes at 17 + 2 + 5."""
    cfg = MorConfig(name="t", n_cu=1, mac_width=4, n_bincu=1, bits_per_cycle=8, max_in=64, max_out=16)
    got, skipped, _ = engine_schedule(cfg, 8, np.array([1]), np.array([[True]]), np.array([[predicted_zero]]))
    assert (got, skipped.tolist()) == (run, [[predicted_zero]])


def test_a_member_waits_for_its_proxys_decision():
    """Two CUs, C = 4, proxies 0..3 and one member of proxy 0 (to a CU). Proxies issue at 0, 1, 4, 5
    (completing at 9, 10, 13, 14); proxy 0's decision is visible at 10, CU 0 free since 8 takes the member then
    and it completes at 10 + 4 + 5 = 19, so the run is 20 cycles."""
    cfg = MorConfig(name="t", n_cu=2, mac_width=4, n_bincu=1, bits_per_cycle=8, max_in=64, max_out=16)
    run, _, idle = engine_schedule(cfg, 16, np.array([1, 0, 0, 0]), np.zeros((1, 1), bool), np.zeros((1, 1), bool))
    assert run == 20
    assert idle["prediction"] == 3  # CU 0 free at 8 and 9, CU 1 at 9: the member waits on proxy 0's decision


@pytest.mark.parametrize("issue, run", [(4, 8), (1, 14)])
def test_several_proxies_issued_a_cycle(issue, run):
    """Four CUs, C = 1, two proxies on four vectors, proxy by proxy. issue = 4: proxy 0 on vectors 0-3 at 0, proxy
    1 at 1, the last completing at 1 + 1 + 5 = 7 (8 cycles); issue = 1: one neuron a cycle, the eighth at 7,
    completing at 13 (14 cycles)."""
    cfg = MorConfig(name="t", n_cu=4, mac_width=4, n_bincu=1, bits_per_cycle=8, max_in=64, max_out=16, issue=issue)
    got, _, idle = engine_schedule(cfg, 4, np.zeros(2, np.int64), np.zeros((4, 0), bool), np.zeros((4, 0), bool))
    assert got == run and sum(idle.values()) == run * 4 - 8
    if issue == 1:
        assert idle["issue"] == 3 * 8  # cycles 0-7: one CU took a neuron, three free ones did not


def test_a_streamed_first_run_waits_for_its_rows_or_vectors():
    """The same layer as a job's first run. Rows streamed (row r usable from (r + 1)·C - 1): row 0 at 0, row 1 at 1,
    as issued anyway: 8 cycles. Vectors streamed: vector by vector, vector v usable from v; both proxies of vector v
    at v (two CUs idle: one vector's proxies a cycle), the last completing at 3 + 1 + 5 = 9: 10 cycles."""
    cfg = MorConfig(name="t", n_cu=4, mac_width=4, n_bincu=1, bits_per_cycle=8, max_in=64, max_out=16, issue=4)
    none = np.zeros((4, 0), bool)
    assert engine_schedule(cfg, 4, np.zeros(2, np.int64), none, none, stream="weights",
                           ready=streamed_ready(cfg, 4, 2))[0] == 8
    run, _, idle = engine_schedule(cfg, 4, np.zeros(2, np.int64), none, none, stream="inputs",
                                   ready=streamed_ready(cfg, 4, 4))
    assert run == 10 and idle["loading"] == 0 and idle["issue"] == 2 * 4


@pytest.mark.parametrize("issue, run", [(4, 14), (1, 16)])
def test_a_cluster_s_members_issued_together(issue, run):
    """Four CUs, C = 1, one proxy with three members bound for CUs (its decision not zero): the proxy at 0 completes
    at 6, its decision visible at 7; issue = 4 takes the three members at 7 (done at 13: 14 cycles), issue = 1 at
    7, 8, 9 (16 cycles)."""
    cfg = MorConfig(name="t", n_cu=4, mac_width=4, n_bincu=1, bits_per_cycle=8, max_in=64, max_out=16, issue=issue)
    got, _, _ = engine_schedule(cfg, 4, np.array([3]), np.zeros((1, 3), bool), np.zeros((1, 3), bool))
    assert got == run


@pytest.mark.parametrize("issue", [1, 2])
def test_schedule_skips_what_the_skip_rule_skips(rng, issue):
    """The schedule's routing (proxy decision, enable, binCU outcome) skips exactly docs/mor.md's neurons; its
    cycles and the job's phases account for every cycle (``breakdown``)."""
    cfg = MorConfig(name="t", n_cu=3 + issue, mac_width=4, n_bincu=2, bits_per_cycle=8, max_in=64, max_out=32,
                    issue=issue)
    for _ in range(20):
        n_out, n_in, vectors = int(rng.integers(1, 33)), int(rng.integers(1, 65)), int(rng.integers(1, 9))
        proxies = rng.choice(n_out, int(rng.integers(1, n_out + 1)), replace=False)
        proxy = rng.choice(proxies, n_out).astype(np.int64)
        proxy[proxies] = -1
        args = {"x": np.maximum(rng.integers(-60, 128, (vectors, n_in)), 0).astype(np.int8),
                "w": rng.integers(-128, 128, (n_out, n_in)).astype(np.int8),
                "bias": rng.integers(-30 * n_in, 10 * n_in, n_out).astype(np.int32), "proxy": proxy,
                "m_q": rng.integers(-2, 30, n_out).astype(np.int32),
                "b_q": rng.integers(-100 * n_in, 30 * n_in, n_out).astype(np.int32),
                "enable": rng.random(n_out) < 0.7}
        out, rule = engine_layer(cfg, **args), mor_layer(**args)
        assert np.array_equal(out["skipped"], rule["skipped"]) and np.array_equal(out["y"], rule["y"])
        assert out["macs"] == rule["macs"]
        # Every computed neuron costs C cycles of some CU: a run (here all vectors) takes at least that.
        words = -(-n_in // 4)
        computed = (~rule["skipped"]).sum()
        assert out["run_cycles"].shape == (1,) and out["run_cycles"][0] >= np.ceil(computed * words / cfg.n_cu) + 2
        cycles, phases = job_cycles(cfg, n_in, n_out, [vectors], out["run_cycles"])
        parts = breakdown(cfg, n_in, out, phases, cycles)
        assert sum(v for k, v in parts.items() if k != "mac_utilisation") == pytest.approx(cycles)
        assert 0 < parts["mac_utilisation"] <= 1 or computed == 0


def test_runs_hold_max_vectors_consecutive_vectors():
    cfg = MorConfig(name="t", max_vectors=4)
    assert runs(cfg, 10) == [slice(0, 4), slice(4, 8), slice(8, 10)]


def test_job_cycles_stream_the_larger_kind_under_the_first_run():
    """C = 2 words a vector or row. 3 neurons, runs of 4 and 2 vectors: inputs stream (3 < 4). Header and table
    0-3, weights 4-9; run 0 starts at 10 (its inputs 10-17 load as it computes), computes 11-60, streams 4·3
    outputs 61-72. Run 1's words 18-21; it starts when the engine is free (61), computes 62-91, streams 92-97: 98
    cycles = load 11 + 50 + between 1 + 30 + drain 6."""
    cfg = MorConfig(name="t", max_vectors=4)
    assert job_cycles(cfg, 16, 3, [4, 2], [50, 30]) == (98, {"load": 11, "between": 1, "drain": 6})
    # Two words a beat: a vector or row is one beat. Header and table 0-3, weights 4-6, run 0 starts at 7 (inputs
    # 7-10), computes 8-57, streams 58-69; run 1's beats 11-12, start 58, computes 59-88, streams 89-94: 95 cycles.
    cfg = MorConfig(name="t", max_vectors=4, load_words=2)
    assert job_cycles(cfg, 16, 3, [4, 2], [50, 30]) == (95, {"load": 8, "between": 1, "drain": 6})
    # 6 neurons, issue 2 (3 output words a vector), runs of 4: weights stream (6 ≥ 4). Header and table 0-6, run
    # 0's inputs 7-14; it starts at 15 (weights 15-26), computes 16-17, streams 18-29. Run 1's words 27-34, start 35,
    # computes 36-37, streams 38-49. Run 2's words 35-42 (its buffer free since 18), start 43 (its result buffer
    # out at 30), computes 44-45, streams after run 1: 50-61. 62 cycles = 16 + 6 + between 18 + 6 + drain 16.
    cfg = MorConfig(name="t", max_vectors=4, issue=2)
    assert job_cycles(cfg, 16, 6, [4, 4, 4], [2, 2, 2]) == (62, {"load": 16, "between": 24, "drain": 16})


def test_prediction_pays_only_where_a_member_costs_more_computed_than_predicted():
    """mor_default: a member costs ⌈n_in / 8⌉ / 8 cycles of its CUs computed and at least one cycle of its binCU path
    (one member a cycle into their queue) predicted; a layer that does not gain runs every filter as its own proxy."""
    from types import SimpleNamespace

    from flow.harness.mor_inputs import engine_tables, prediction_pays
    from generators.config import CATALOG
    from models.mor import MorTables

    cfg = CATALOG["mor"]["default"]
    layers = [SimpleNamespace(name=f"l{n_in}", w=np.zeros((4, n_in), np.int8)) for n_in in (9, 25, 64, 72, 144)]
    assert [prediction_pays(cfg, layer) for layer in layers] == [False, False, False, True, True]
    proxy = np.array([-1, 0, 0, -1])
    tables = {layer.name: MorTables(proxy, np.ones(4, np.int32), np.zeros(4, np.int32), np.ones(4), 8)
              for layer in layers}
    ran = engine_tables(cfg, SimpleNamespace(computes=layers), tables)
    assert [ran[layer.name].proxy.tolist() for layer in layers] == [[-1] * 4] * 3 + [proxy.tolist()] * 2
    assert tables["l9"].proxy is proxy  # the network's tables are left as they were
