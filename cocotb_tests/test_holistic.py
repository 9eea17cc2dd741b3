"""The holistic flow (docs/flow.md): regularisers against hand-computed values, the strength search, the activation
thinning, and `zeroskip train` end to end on the digits network with real RTL (few epochs; the experiment itself
is a benchmark: zeroskip holistic)."""

import json
import math

import numpy as np
import pytest
import torch

from flow.cli import main
from flow.harness.activations import thin
from flow.report.holistic import ALPHA, BETA, FITTED, KEEP, linear_fit
from models import cnn
from models.holistic import Regulariser, conv_relus, hoyer, l1, search_strength


@pytest.mark.parametrize("row, density", [([1, 0, 0, 0], 0.25), ([1, 1, 1, 1], 1.0), ([2, 1, 0, 0], 9 / 20),
                                          ([0, 0, 0, 0], 0.0), ([-3, 0, 3, 0], 0.5)])
def test_hoyer_is_the_squared_l1_over_n_times_the_squared_l2(row, density):
    x = torch.tensor([row], dtype=torch.float64)
    assert hoyer(x).item() == pytest.approx(density)
    assert l1(x).item() == pytest.approx(sum(abs(v) for v in row) / 4)


def test_regularised_layers_are_the_convs_fed_by_a_relu():
    digits = cnn.build(cnn.CnnConfig())
    lenet = cnn.build(cnn.CnnConfig.of("lenet5"))
    assert conv_relus(digits) == {1: 0, 2: 1}      # conv2 and conv3 see ReLU 1 and 2; conv1 the image
    assert conv_relus(lenet) == {1: 0}             # conv2 sees ReLU 1 through max-pooling


@pytest.mark.parametrize("network", ["resnet_fashion", "mobilenet_fashion"])
def test_regularised_layers_of_residual_and_depthwise_networks_are_each_convs_input(network):
    """In a residual network (both branches of a block take its input; the Add is no ReLU) and a depthwise-separable
    one (ReLU6), each regularised conv's captured ReLU output is the very tensor the conv takes (forward hooks), and
    every conv fed by a ReLU is regularised."""
    model = cnn.build(cnn.CnnConfig.of(network)).eval()
    taken = {}
    for i, conv in enumerate(model.convs):
        conv.register_forward_pre_hook(lambda _m, args, i=i: taken.__setitem__(i, args[0]))
    captured = []
    with torch.no_grad():
        model(torch.rand(2, 1, 28, 28), capture=captured)
    relus = conv_relus(model)
    assert sorted(relus) == list(range(1, len(model.convs)))
    assert all(taken[c] is captured[r] for c, r in relus.items())


def test_penalty_weights_each_layer_by_strength_and_weight():
    model = cnn.build(cnn.CnnConfig())
    acts = [torch.rand(2, 4, 3, 3) for _ in range(3)]
    reg = Regulariser("holistic", 2.0, ((1, 0.5), (2, 1.5)))
    want = 2.0 * (0.5 * (l1(acts[0]) + hoyer(acts[0])) + 1.5 * (l1(acts[1]) + hoyer(acts[1])))
    assert reg.penalty(model)(acts).item() == pytest.approx(want.item())
    assert Regulariser("none").penalty(model) is None and Regulariser("l1", 0.0, ((1, 1.0),)).penalty(model) is None


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="l2"), "unknown method 'l2'; methods are none, l1, targeting, holistic"),
    (dict(method="l1", strength=-1.0), "strength must be finite and non-negative, not -1.0"),
    (dict(method="l1", strength=math.nan), "strength must be finite and non-negative"),
])
def test_invalid_regulariser_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Regulariser(**kwargs)


def test_strength_search_finds_the_largest_strength_within_the_floor():
    calls = []

    def score(s):
        calls.append(s)
        return 1.0 - s / 100          # accuracy falls with strength; floor 0.9 is met up to s = 10

    strength, tried = search_strength(score, 0.9, lo=0.01, hi=100.0, steps=8)
    assert 10 / (10_000 ** (1 / 2 ** 8)) <= strength <= 10 and score(strength) >= 0.9
    assert len(calls) == 2 + 8 + 1 and set(tried) == set(calls[:-1])
    strength, tried = search_strength(lambda s: 1.0 - s / 1e5, 0.9, hi=100.0, steps=2)   # within up to 1e4
    assert list(tried)[:3] == [100.0, 1000.0, 10_000.0] and strength == 10_000.0
    strength, tried = search_strength(lambda s: 1.0 - s / 1e4, 0.9, hi=100.0, steps=3)   # within up to 1e3
    assert list(tried)[:3] == [100.0, 1000.0, 10_000.0] and 1000.0 / 10 ** (1 / 8) < strength <= 1000.0
    assert search_strength(lambda s: 0.5, 0.9)[0] == 0.0                   # even the weakest is not within


def test_thinning_zeroes_the_smallest_nonzero_activations(rng):
    x = rng.integers(0, 128, (3, 5, 5)).astype(np.int8)
    nonzero = np.count_nonzero(x)
    for keep in KEEP:
        y = thin(x, keep)
        assert y.dtype == x.dtype and np.count_nonzero(y) == round(keep * nonzero)
        kept = y != 0
        assert np.array_equal(y[kept], x[kept])                      # survivors unchanged
        assert kept.all() or not kept.any() or x[~kept].max() <= y[kept].min()   # every zeroed value is no larger
    assert np.array_equal(thin(x, 1.0), x) and not thin(x, 0.0).any()


def test_linear_fit_recovers_a_line_and_measures_held_out_error():
    line = [{"keep": k, "density": k / 2, "cycles": 300 * k / 2 + 40} for k in KEEP]
    fit = linear_fit(line, "cycles")
    assert fit["slope"] == pytest.approx(300) and fit["intercept"] == pytest.approx(40)
    assert fit["r2"] == pytest.approx(1) and fit["heldout_error"] == pytest.approx(0, abs=1e-9)
    bent = [dict(p, cycles=p["cycles"] * (1.1 if p["keep"] not in FITTED else 1)) for p in line]
    assert linear_fit(bent, "cycles")["heldout_error"] == pytest.approx(0.1 / 1.1)   # only the held-out moved


@pytest.mark.parametrize("argv, message", [
    (["train", "--network", "digits", "--target", "scnn_pe", "--method", "l2"],
     "unknown method 'l2'; methods are none, l1, targeting, holistic"),
    (["train", "--network", "digits", "--target", "sa", "--method", "l1"],
     "unknown target 'sa'; targets are cscnn, scnn, cscnn_pe, scnn_pe, snapea"),
    (["train", "--network", "digits", "--target", "snapea/one_sided", "--method", "l1"],
     "target snapea/one_sided: one-sided SnaPEA responds to negative pre-activations, not input density"),
    (["train", "--network", "digits", "--target", "scnn_pe/huge", "--method", "l1"],
     "unknown preset 'huge' of scnn_pe"),
    (["train", "--network", "digits", "--target", "scnn_pe", "--method", "l1", "--budget", "0"],
     "budget must be a positive number of accuracy points, not 0.0"),
    (["holistic", "--networks", "digits", "--budget", "-1"], "budget must be a positive number of accuracy points"),
    (["holistic", "--networks", "alexnet"], "unknown network 'alexnet'; networks are digits, lenet5, lenet5_fashion"),
    (["holistic", "--networks", "digits", "--epochs", "0"], "epochs must be an integer of at least 1, not 0"),
])
def test_bad_training_input_is_refused_in_one_line_before_any_training(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not out.exists()


@pytest.mark.xdist_group("demo_mismatch")  # after the demo-mismatch test on its worker: the digits CNN is trained
def test_holistic_experiment_fits_trains_and_measures_every_method_on_rtl(tmp_path):
    """`zeroskip holistic` on digits and the cscnn_pe with one epoch per fine-tuning and no bisection steps: the
    cost model's fits on golden cycles and its RTL confirmations, every method's network on the RTL, all exact;
    the summary's schema and the report with its plots."""
    out = tmp_path / "holistic"
    assert main(["holistic", "--networks", "digits", "--targets", "cscnn_pe", "--epochs", "1", "--steps", "0",
                 "--images", "1", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    cost = summary["cost_model"]["digits"]["cscnn_pe"]
    assert set(cost) == {"conv1", "conv2", "conv3"}
    for fit in cost.values():
        assert fit["slope"] > 0 and 0.9 < fit["r2"] <= 1 and 0 <= fit["heldout_error"] < 0.5
        energy = fit["energy"]   # pJ per image from the per-action model: falls with density too
        assert energy["slope"] > 0 and 0.9 < energy["r2"] <= 1 and all(p["energy_pj"] > 0 for p in fit["points"])
        on_rtl = [p for p in fit["points"] if "rtl" in p]
        assert len(on_rtl) == 2 and all(p["rtl"]["cycles"] == p["cycles"] and not p["rtl"]["mismatches"]
                                        for p in on_rtl)
        densities = [p["density"] for p in fit["points"]]
        assert densities == sorted(densities, reverse=True) and len(set(densities)) == len(densities)
    methods = summary["digits"]["cscnn_pe"]
    assert list(methods) == ["none", "l1", "targeting", "holistic"]
    for name, m in methods.items():
        assert m["rtl_bit_exact"] and m["rtl_cycles"] == m["golden_cycles"] > 0 and m["energy_pj"] > 0, name
        assert [r["layer"] for r in m["layers"]] == ["conv1", "conv2", "conv3"]
        assert m["strength"] == 0 or m["accuracy"] >= m["floor"], name
    weights = methods["holistic"]["weights"]
    if weights:  # α·e_l + β·c_l, each slope scaled to mean 1 over the regularised layers (conv2, conv3)
        layers = ("conv2", "conv3")
        e, c = ({k: slope(cost[k]) for k in layers} for slope in (lambda f: f["energy"]["slope"], lambda f: f["slope"]))
        terms = {k: ALPHA * e[k] / np.mean(list(e.values())) + BETA * c[k] / np.mean(list(c.values())) for k in layers}
        assert set(weights) == set(layers) and sum(weights.values()) == pytest.approx(2.0)
        assert weights["conv3"] / weights["conv2"] == pytest.approx(terms["conv3"] / terms["conv2"])
    assert methods["none"]["strength"] == 0 and methods["none"]["weights"] == {}
    report = (out / "report.md").read_text()
    assert "Worst held-out error" in report and "| cscnn_pe | holistic |" in report
    for plot in ("pareto", "densities"):
        assert (out / f"{plot}.png").stat().st_size > 10_000, plot


@pytest.mark.xdist_group("demo_mismatch")
def test_train_writes_one_methods_figures(tmp_path):
    out = tmp_path / "train"
    assert main(["train", "--network", "digits", "--target", "scnn_pe", "--method", "l1", "--epochs", "1",
                 "--steps", "0", "--images", "1", "--out", str(out)]) == 0
    figures = json.loads((out / "train.json").read_text())
    assert figures["method"] == "l1" and figures["target"] == "scnn_pe" and figures["rtl_bit_exact"]
    assert set(figures["weights"]) in ({"conv2", "conv3"}, set()) and "cost_model" not in figures
    assert figures["checkpoint"].endswith(".pt")
