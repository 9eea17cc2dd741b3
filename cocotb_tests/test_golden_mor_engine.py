"""Golden MoR engine: DNN format, hand-worked schedules, and the schedule's skips equal the skip rule's."""

import numpy as np
import pytest

from generators.config import MorConfig
from golden.mor import mor_layer
from golden.mor_engine import dnn_order, engine_layer, engine_schedule, job_cycles, runs


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
        run, skipped = engine_schedule(cfg, n_in, np.zeros(n, np.int64), np.zeros(n, bool), np.zeros(n, bool))
        assert cfg.cu_stages == 5 and run == n * words + 6 and not skipped.any()


@pytest.mark.parametrize("predicted_zero, run", [(True, 16), (False, 24)])
def test_proxy_then_binary_prediction(predicted_zero, run):
    """One proxy (zero) and one enabled member, C = 2, CB = 1: the proxy is issued at 0 and completes at 0 + 2 + 5
    = 7; the member is walked at 8 and predicted at 8 + 1 + 2 (RAM data, chunk) + 4 (the binCU's latency) = 15.
    Zero ends the run there; otherwise it is taken from the rejected queue at 16 and completes at 16 + 2 + 5."""
    cfg = MorConfig(name="t", n_cu=1, mac_width=4, n_bincu=1, bits_per_cycle=8, max_in=64, max_out=16)
    got, skipped = engine_schedule(cfg, 8, np.array([1]), np.array([False, True]),
                                   np.array([False, predicted_zero]))
    assert (got, skipped.tolist()) == (run, [False, predicted_zero])


def test_a_member_waits_for_its_proxys_decision():
    """Two CUs, C = 4, proxies 0..3 and one member of proxy 0 (to a CU). Proxies issue at 0, 1, 4, 5
    (completing at 9, 10, 13, 14); proxy 0's decision is visible at 10, CU 0 free since 8 takes the member then
    and it completes at 10 + 4 + 5 = 19, so the run is 20 cycles."""
    cfg = MorConfig(name="t", n_cu=2, mac_width=4, n_bincu=1, bits_per_cycle=8, max_in=64, max_out=16)
    sizes = np.array([1, 0, 0, 0])
    route_bin = np.zeros(5, bool)
    run, _ = engine_schedule(cfg, 16, sizes, route_bin, np.zeros(5, bool))
    assert run == 20


def test_schedule_skips_what_the_skip_rule_skips(rng):
    """The schedule's routing (proxy decision, enable, binCU outcome) skips exactly docs/mor.md's neurons."""
    cfg = MorConfig(name="t", n_cu=3, mac_width=4, n_bincu=2, bits_per_cycle=8, max_in=64, max_out=32)
    for _ in range(20):
        n_out, n_in = int(rng.integers(1, 33)), int(rng.integers(1, 65))
        proxies = rng.choice(n_out, int(rng.integers(1, n_out + 1)), replace=False)
        proxy = rng.choice(proxies, n_out).astype(np.int64)
        proxy[proxies] = -1
        args = {"x": np.maximum(rng.integers(-60, 128, (4, n_in)), 0).astype(np.int8),
                "w": rng.integers(-128, 128, (n_out, n_in)).astype(np.int8),
                "bias": rng.integers(-30 * n_in, 10 * n_in, n_out).astype(np.int32), "proxy": proxy,
                "m_q": rng.integers(-2, 30, n_out).astype(np.int32),
                "b_q": rng.integers(-100 * n_in, 30 * n_in, n_out).astype(np.int32),
                "enable": rng.random(n_out) < 0.7}
        out, rule = engine_layer(cfg, **args), mor_layer(**args)
        assert np.array_equal(out["skipped"], rule["skipped"]) and np.array_equal(out["y"], rule["y"])
        assert out["macs"] == rule["macs"]
        # Every computed neuron costs C cycles of some CU: a run (here all 4 vectors) takes at least that.
        words = -(-n_in // 4)
        computed = (~rule["skipped"]).sum()
        assert out["run_cycles"].shape == (1,) and out["run_cycles"][0] >= np.ceil(computed * words / cfg.n_cu) + 2


def test_runs_hold_max_vectors_consecutive_vectors():
    cfg = MorConfig(name="t", max_vectors=4)
    assert runs(cfg, 10) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    # C = 2 words a vector. The layer's 10 words take cycles 0-9; run 0's 8 input words 10-17; it starts in 18
    # and computes 19-68; its 12 outputs stream 69-80. Run 1's 4 words load meanwhile (18-21) and it starts
    # when the engine is free (69), computes 70-99 and streams 100-105: 106 cycles.
    assert job_cycles(cfg, 16, 3, [4, 2], [50, 30]) == 106
    # Output-bound runs of 6 neurons: layer 0-18; run 0 loads 19-26, starts 27, computes 28-29, streams 24 words
    # 30-53; run 1 loads 27-34, starts 35, computes 36-37, streams 54-77; run 2 loads 35-42 but starts only when
    # run 0's results buffer is out (54), computes 55-56 and streams after run 1 (78-101): 102 cycles.
    assert job_cycles(cfg, 16, 6, [4, 4, 4], [2, 2, 2]) == 102
