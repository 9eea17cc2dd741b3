"""MoR engine RTL vs golden on Verilator and Icarus: outputs, skip masks, MACs, run cycles and job cycles."""

import numpy as np
import pytest

from flow.harness.cosim import first_mismatch
from flow.harness.drivers.mor import MorDriver
from flow.harness.runner import SIMULATORS
from generators.config import CATALOG

from .matrix import REAL_LAYER_SIMS, on_simulators

PRESETS = list(CATALOG["mor"].values())
REAL_VECTORS = {"icarus": 16, "verilator": None}  # input vectors per real layer (None: the whole layer)
_drivers = {}


def driver(cfg, sim):
    if (cfg, sim) not in _drivers:
        _drivers[cfg, sim] = MorDriver(cfg, sim)
    return _drivers[cfg, sim]


def clusters(rng, n_out, n_proxies):
    """A random proxy table with ``n_proxies`` proxies anywhere in index order."""
    proxies = rng.choice(n_out, n_proxies, replace=False)
    proxy = rng.choice(proxies, n_out).astype(np.int64)
    proxy[proxies] = -1
    return proxy


def layer(rng, n_out, n_in, vectors, *, proxy=None, enable=None, m_q=None, bias=None, x=None):
    """A random layer: post-ReLU-like inputs, fits around the true line, ~80% enabled."""
    w = rng.integers(-128, 128, (n_out, n_in)).astype(np.int8)
    if x is None:
        x = np.maximum(rng.integers(-60, 128, (vectors, n_in)), 0).astype(np.int8)
    return {"x": x, "w": w,
            "bias": rng.integers(-40 * n_in, 20 * n_in, n_out).astype(np.int32) if bias is None else bias,
            "proxy": clusters(rng, n_out, max(1, n_out // 3)) if proxy is None else proxy,
            "m_q": rng.integers(-4, 60, n_out).astype(np.int32) if m_q is None else m_q,
            "b_q": rng.integers(-200 * n_in, 50 * n_in, n_out).astype(np.int32),
            "enable": rng.random(n_out) < 0.8 if enable is None else enable}


def check(cfg, sim, inputs, **patterns):
    """RTL == golden (and at full rate, cycles == the schedule's); returns golden's outputs."""
    args = MorDriver.validate(cfg, inputs)
    golden, golden_cycles = MorDriver.golden(cfg, args)
    rtl, cycles = driver(cfg, sim).run(args, **patterns)
    if patterns:  # a job's first run computes while its weights or inputs stream in: its cycles follow their arrival
        rtl.pop("run_cycles")  # (bubbles reorder issue, so they can make it slower or faster), not only the data
        golden = {key: value for key, value in golden.items() if key != "run_cycles"}
    assert first_mismatch(rtl, golden) is None, f"{cfg.module} on {sim}: {first_mismatch(rtl, golden)}"
    if not patterns:
        assert cycles == golden_cycles, f"{cfg.module} on {sim}: {cycles} cycles, golden {golden_cycles}"
    return golden


@pytest.mark.parametrize("cfg,sim", on_simulators(PRESETS, icarus=["small"]))
def test_random_layers(cfg, sim, rng):
    """Vector lengths around mac_width and bits_per_cycle (most not a multiple of bits_per_cycle)."""
    skipped = 0
    for n_in in sorted({1, cfg.mac_width + 1, cfg.bits_per_cycle - 1, cfg.bits_per_cycle + 3, cfg.max_in}):
        n_out = int(rng.integers(2, cfg.max_out + 1))
        skipped += check(cfg, sim, layer(rng, n_out, n_in, 3))["skipped"].sum()
    assert skipped > 0  # the binCU path was exercised


def _edge_layers(cfg, rng):
    n_out, n_in = cfg.max_out, cfg.bits_per_cycle + cfg.mac_width + 1
    zero_bias = np.full(n_out, -128 * 128 * n_in, np.int32)  # below any x·w: every proxy decides zero
    one_cluster = np.zeros(n_out, np.int64)
    one_cluster[0] = -1
    return {
        "all neurons proxies": layer(rng, n_out, n_in, 2, proxy=np.full(n_out, -1, np.int64)),
        "one giant cluster, all skipped": layer(rng, n_out, n_in, 2, proxy=one_cluster, bias=zero_bias,
                                                enable=np.ones(n_out, bool), m_q=np.zeros(n_out, np.int32)) |
        {"b_q": np.full(n_out, -1, np.int32)},
        "one giant cluster, all rejected": layer(rng, n_out, n_in, 2, proxy=one_cluster,
                                                 bias=zero_bias, enable=np.ones(n_out, bool)) |
        {"b_q": np.full(n_out, 2**31 - 1, np.int32), "m_q": np.zeros(n_out, np.int32)},
        "enable all off": layer(rng, n_out, n_in, 2, bias=zero_bias, enable=np.zeros(n_out, bool)),
        "negative and zero m_q": layer(rng, n_out, n_in, 2, bias=zero_bias,
                                       m_q=rng.integers(-3, 1, n_out).astype(np.int32)),
        "all-zero inputs": layer(rng, n_out, n_in, 2, x=np.zeros((2, n_in), np.int8)),
        "one neuron, one input": layer(rng, 1, 1, 2, proxy=np.array([-1])),
        "inputs streamed, vector by vector": layer(rng, 3, n_in, cfg.max_vectors + 1),
        "weights streamed, one word a row": layer(rng, n_out, 1, cfg.max_vectors, proxy=np.full(n_out, -1, np.int64)),
        "two neurons, 1-D x": layer(rng, 2, n_in, 1, proxy=np.array([1, -1])) | {
            "x": np.maximum(rng.integers(-60, 128, n_in), 0).astype(np.int8)},
        "-128 everywhere": layer(rng, n_out, cfg.max_in, 1, x=np.full((1, cfg.max_in), -128, np.int8)) | {
            "w": np.full((n_out, cfg.max_in), -128, np.int8), "bias": np.zeros(n_out, np.int32)},
    }


@pytest.mark.parametrize("cfg,sim", on_simulators(PRESETS, icarus=["small"]))
def test_named_edge_layers(cfg, sim, rng):
    for name, inputs in _edge_layers(cfg, rng).items():
        golden = check(cfg, sim, inputs)
        if name == "one giant cluster, all skipped":
            assert golden["skipped"][:, 1:].all()
        if name in ("all neurons proxies", "enable all off", "one giant cluster, all rejected"):
            assert not golden["skipped"].any()


@pytest.mark.parametrize("sim", SIMULATORS)
def test_bubbles_and_back_pressure(sim, rng):
    cfg = CATALOG["mor"]["small"]
    check(cfg, sim, layer(rng, cfg.max_out, 21, 3), in_pattern=0b1011_0111, out_pattern=0b0110_1101)


def test_vectors_split_across_jobs(rng):
    """More vectors than one job holds: each job reloads the layer; cycles sum over jobs."""
    cfg = CATALOG["mor"]["small"]
    inputs = layer(rng, cfg.max_out, cfg.max_in, 1000)
    assert len(MorDriver.job_runs(cfg, 1000, cfg.max_in, cfg.max_out)) == 2
    check(cfg, "verilator", inputs)


def test_predictor_saves_cycles_on_the_same_engine(rng):
    """Skipped members cost no CU time: a layer whose proxies all decide zero runs faster than the
    same layer with every neuron a proxy (no predictor); a full run, so computing outlasts the weights' loading."""
    cfg = CATALOG["mor"]["default"]
    inputs = layer(rng, cfg.max_out, 200, cfg.max_vectors, bias=np.full(cfg.max_out, -10**6, np.int32),
                   enable=np.ones(cfg.max_out, bool), m_q=np.zeros(cfg.max_out, np.int32))
    with_predictor = check(cfg, "verilator", inputs)
    without = check(cfg, "verilator", inputs | {"proxy": np.full(cfg.max_out, -1, np.int64)})
    assert with_predictor["skipped"].sum() > 0
    assert (with_predictor["run_cycles"] < without["run_cycles"]).all()


@pytest.fixture(scope="module")
def real_layers():
    """The digits CNN's conv layers: real INT8 inputs of two test images as im2col rows, with tables
    profiled on training images and T = 0.6 (the sweep's lowest, so the most skipping)."""
    from flow.harness.activations import conv_inputs
    from flow.harness.network import load_network
    from models.mor import neuron_inputs, tables

    net = load_network()
    layer_tables = tables(net.qnet, conv_inputs(net.qnet, net.data.x_train[:100]))
    acts = conv_inputs(net.qnet, net.data.x_test[:2])
    out = []
    for conv in net.qnet.convs:
        t = layer_tables[conv.name]
        for x in acts[conv.name]:
            [(a, w)], _ = neuron_inputs(conv, x)   # one group
            out.append((conv.name, {"x": a, "w": w, "bias": conv.bias, "proxy": t.proxy, "m_q": t.m_q,
                                    "b_q": t.b_q, "enable": t.enable(0.6)}))
    return out


@pytest.mark.parametrize("sim", REAL_LAYER_SIMS)
def test_real_digits_layers(sim, real_layers):
    cfg = CATALOG["mor"]["default"]
    skipped = 0
    for _, inputs in real_layers:
        inputs = inputs | {"x": inputs["x"][:REAL_VECTORS[sim]]}
        skipped += check(cfg, sim, inputs)["skipped"].sum()
    assert skipped > 0


def test_shape_sweep_rows_hold_on_the_rtl():
    """A row of the shape sweep (flow.bench.mor): a layer with the predictor on mor_default and the dense sa_mac64,
    golden equal to both RTLs bit- and cycle-exact; its split adds up to its cycles; its skipped MACs are the skip
    rule's, at least the members of proxies 0 and 8 (clusters 0-3, 4-7, 8-11), whose biases make them zero."""
    from flow.bench.mor import shape_cycles, shape_layer
    from golden.mor import mor_layer

    args = shape_layer(25, 12, 16, predictor=True)
    row = shape_cycles(CATALOG["mor"]["default"], CATALOG["sa"]["mac64"], args, sim="verilator")
    assert row["rtl"]["exact"] and row["rtl"]["cycles"] == row["cycles"]
    parts = row["breakdown"]
    assert sum(v for k, v in parts.items() if k != "mac_utilisation") == pytest.approx(row["cycles"])
    skipped = mor_layer(**args)["skipped"]
    assert skipped[:, [1, 2, 3, 9, 10, 11]].all() and row["skipped_macs"] == pytest.approx(skipped.mean())
