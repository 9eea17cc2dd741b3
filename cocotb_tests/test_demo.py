"""The demo end to end (one test image, real Verilator runs) and the result cache it reuses."""

import json
from pathlib import Path

import numpy as np
import pytest

from flow.harness import result_cache
from flow.report.evaluate import demo, evaluate
from flow.synth.system import SYSTEM_PARTS
from flow.techniques import TECHNIQUES

FIELDS = ("accuracy", "rtl_bit_exact", "rtl_layers_checked", "cycles", "speedup_vs_dense", "energy_pj",
          "energy_vs_dense", "energy_calibration", "multiplications", "area")
PLOTS = ("cycles_by_layer", "accuracy_vs_cycles", "energy_by_layer", "energy_parts", "s2ta_speedup_vs_density",
         "cscnn_products", "cscnn_tilings", "mor_categories", "snapea_mults")


def test_result_cache_keys_on_every_input_and_keeps_only_what_it_is_told(tmp_path, monkeypatch):
    monkeypatch.setattr(result_cache, "RESULTS", tmp_path)
    calls = []

    def step(x, *, scale):
        calls.append(1)
        return {"sum": int(x.sum()) * scale}

    x = np.arange(6, dtype=np.int8)
    assert result_cache.cached("s", step, x, scale=2) == ({"sum": 30}, False)
    assert result_cache.cached("s", step, x, scale=2) == ({"sum": 30}, True)
    for other in (x.astype(np.int16), x.reshape(2, 3), x + 1):
        assert result_cache.cached("s", step, other, scale=2)[1] is False, other
    assert result_cache.cached("s", step, x, scale=3) == ({"sum": 45}, False)
    assert result_cache.cached("s", step, x, scale=2, fresh=True) == ({"sum": 30}, False)
    before = len(calls)
    assert result_cache.cached("s", step, x, scale=4, keep=lambda r: False)[1] is False
    assert result_cache.cached("s", step, x, scale=4, keep=lambda r: False)[1] is False
    assert len(calls) == before + 2
    assert result_cache.digest({"a": 1, "b": 2}) == result_cache.digest({"b": 2, "a": 1})
    with pytest.raises(TypeError, match="cannot digest"):
        result_cache.digest(object())
    with pytest.raises(TypeError, match="object array"):  # its bytes would be addresses, different in every process
        result_cache.digest(np.asarray([None, 1], dtype=object))


def _summary(path):
    return json.loads((path / "summary.json").read_text())


@pytest.mark.xdist_group("demo")  # the longest test, first on a worker of its own (conftest.GROUP_ORDER)
def test_demo_writes_every_technique_bit_exact_with_the_report(tmp_path):
    """One test image through all five techniques' RTL (re-simulated) and the dense baselines, the fc layer in a
    batch of 3 (the image and the next two test images)."""
    assert demo(images=1, batch=3, synth=False, fresh=True, out_dir=tmp_path, log=lambda *_: None) == 0
    summary = _summary(tmp_path)
    assert summary["bit_exact"] and summary["dataset"]["images"] == 1
    assert (summary["dataset"]["fc_batch"], summary["dataset"]["fc_images"]) == (3, 3)
    assert set(summary["presets"]) >= set(TECHNIQUES) and summary["seeds"]["cnn"] == 0
    for name in TECHNIQUES:
        t = summary[name]
        assert all(field in t for field in FIELDS), name
        assert t["rtl_bit_exact"] is True and t["rtl_layers_checked"] >= 3, name
        # by default a technique's comparisons come from the golden models (--rtl-comparisons runs them on RTL)
        assert (t["golden_comparisons"] != []) == (name != "dense") and not set(t["golden_comparisons"]) & set(
            t["rtl_checks"]), name
        # network figures are per image: each layer's over the images it ran (conv 1, the fc layer its batch)
        assert t["cycles"] == pytest.approx(sum(r["cycles"] / r["images"] for r in t["layers"])) and t["cycles"] > 0
        assert all(r["cycles"] == r["golden_cycles"] and r["images"] == (3 if r["role"] == "fc" else 1)
                   for r in t["layers"])
        assert t["speedup_vs_dense"] == pytest.approx(t["dense_baseline"]["cycles"] / t["cycles"])
        assert t["dense_baseline"]["macs"] == t["preset"]["macs"]
        assert t["energy_pj"] == pytest.approx(sum(r["energy_pj"] / r["images"] for r in t["layers"]))
        assert t["energy_pj"] > 0
        assert set(t["energy_parts"]) == set(SYSTEM_PARTS) and all(
            r["energy_pj"] == pytest.approx(sum(r["energy_parts"].values())) for r in t["layers"])
        # every design pays its global buffer; DRAM is the same at equal MACs for the same layers
        assert all(r["energy_parts"]["buffer"] > 0 and r["dram_bits"]["read"] > 0 for r in t["layers"]), name
        assert t["energy_parts"]["dram"] == pytest.approx(t["dense_baseline"]["energy_parts"]["dram"]), name
        assert t["energy_pj"] == pytest.approx(sum(t["energy_parts"].values()))
        assert t["energy_vs_dense"] == pytest.approx(t["energy_pj"] / t["dense_baseline"]["energy_pj"])
        assert 0.9 < t["accuracy"] <= 1 and t["multiplications"] > 0
    assert summary["dense"]["speedup_vs_dense"] == 1 and summary["dense"]["energy_vs_dense"] == 1
    # S2TA's fc layer is W-DBB trained: it runs in W-DBB mode, not the dense-weight fallback
    assert [r.get("fallback") for r in summary["s2ta"]["layers"] if r["role"] == "fc"] == [None]
    # the sparse techniques form fewer products than the dense array on the same layers
    assert all(summary[name]["multiplications"] < summary["dense"]["multiplications"]
               for name in ("s2ta", "cscnn", "snapea"))
    claims = [(name, claim.label) for name, t in TECHNIQUES.items() for claim in t.claims]
    assert [(r["technique"], r["comparison"]) for r in summary["papers"]] == claims and claims
    for r in summary["papers"]:   # measured on our RTL; where a technique does not save, the part that costs it
        assert r["measured"] > 0 and (r["cause"] is None) == (r["measured"] < 1) and r["layers"], r
        assert (r["cause_conv"] is None) == (r["measured_conv"] < 1), r
    assert json.loads((tmp_path / "papers.json").read_text()) == summary["papers"]
    report = (tmp_path / "report.md").read_text()
    assert "## Energy against the papers' claims" in report
    assert "Every technique's RTL matched golden." in report and "| MoR | mor_default (64 MACs)" in report
    assert "relative energy, OSU 0.18 µm" in report
    assert summary["dense"]["energy_calibration"] == "sa_default"       # calibrated at gate level itself
    assert "extrapolated from mor_small" in report                      # the MoR default is too large to be
    for plot in PLOTS:
        assert (tmp_path / f"{plot}.png").stat().st_size > 10_000, plot


@pytest.mark.xdist_group("demo_mismatch")
def test_demo_mismatch_fails_naming_technique_layer_coordinates_and_waveform(tmp_path, monkeypatch, capsys,
                                                                             corrupt_golden):
    """A golden model that disagrees with the RTL in one output: exit 1, the mismatch in the log, summary and
    report, the waveform kept, and the failing result never cached."""
    from flow.harness.drivers.array import ArrayDriver

    # the dense technique's conv1 (16 filters) on sa_default only, not on its 64-MAC baseline
    corrupt_golden(ArrayDriver, "y", (0, 1, 2), when=lambda args: args["w"].shape[1] == 16, module="sa_default")
    run = dict(techniques=["dense"], images=1, synth=False, out_dir=tmp_path, command="demo", log=lambda *_: None)
    assert evaluate(fresh=["dense"], **run) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("demo:")]
    assert errors and all("dense MISMATCH on sa_default" in line for line in errors), errors
    assert "layer conv1: first mismatch at image 0: y[0, 1, 2]" in errors[0]
    waveform = errors[0].rsplit("waveform kept at ", 1)[1]
    assert Path(waveform).stat().st_size > 0
    summary = _summary(tmp_path)
    assert not summary["bit_exact"] and not summary["dense"]["rtl_bit_exact"]
    assert set(summary) & set(TECHNIQUES) == {"dense"}
    assert summary["dense"]["layers"][0]["waveform"] == waveform
    assert "RTL MISMATCHES" in (tmp_path / "report.md").read_text()
    monkeypatch.undo()  # the failing result was not cached: the same inputs re-simulate and pass
    assert evaluate(**run) == 0


@pytest.mark.parametrize("kwargs,message", [
    ({"sim": "xcelium"}, "sim must be one of verilator, icarus, not 'xcelium'"),
    ({"images": 0}, "images must be between 1 and the 360 test images, not 0"),
    ({"images": 361}, "not 361"),
    ({"images": 2.5}, "not 2.5"),
    ({"fresh": ["mor", "scnn"]}, "fresh names techniques of dense, s2ta, cscnn, mor, snapea, not ['scnn']"),
    ({"batch": 0}, "an fc batch is a positive whole number of images, not 0"),
    ({"batch": 2.5}, "an fc batch is a positive whole number of images, not 2.5"),
])
def test_demo_refuses_bad_arguments_before_doing_anything(kwargs, message, tmp_path):
    with pytest.raises(ValueError) as error:
        demo(out_dir=tmp_path / "out", log=lambda *_: None, **kwargs)
    assert message in str(error.value) and not (tmp_path / "out").exists()


def test_cli_demo_refusal_is_one_line_with_exit_2(capsys):
    from flow.cli import main

    assert main(["demo", "--images", "0"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "zeroskip demo: images must be between 1 and the 360 test images, not 0"]


def test_a_technique_far_below_the_int8_network_is_flagged():
    from flow.report.evaluate import ACCURACY_DROP_POINTS, accuracy_warnings

    results = {"dense": {"accuracy": 0.4375}, "snapea": {"accuracy": 0.125}, "mor": {"accuracy": 0.40}}
    warnings = accuracy_warnings(results, 0.4375)
    assert ACCURACY_DROP_POINTS == 5 and len(warnings) == 1
    assert warnings[0] == "SnaPEA's model has 12.50% test accuracy, 31.2 points below the INT8 network's 43.75%"
