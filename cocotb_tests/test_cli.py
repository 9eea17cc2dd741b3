"""The `zeroskip` CLI: presets, generate refusals and the docs/cosim.md cosim contract (exit 0 / 1 / 2)."""

import json
from pathlib import Path

import numpy as np
import pytest

from flow.cli import main
from flow.harness.drivers.dap import DapDriver
from flow.harness.runner import REPO
from generators.config import CATALOG, DapConfig
from generators.emit import emit
from golden.dbb import dap


def test_presets_json(capsys):
    assert main(["presets", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert set(table) == set(CATALOG)
    for block, presets in table.items():
        assert [name for name, p in presets.items() if p["default"]] == ["default"]
        for name, params in presets.items():
            assert {k: v for k, v in params.items() if k != "default"} == CATALOG[block][name].params()


@pytest.mark.parametrize("params, message", [
    (dict(bz=8, nnz_max=9), "nnz_max must be between 1 and 8, not 9"),
    (dict(bz=8, nnz_max=0), "nnz_max must be between 1 and 8, not 0"),
    (dict(bz=6, nnz_max=2), "bz must be a power of two"),
    (dict(bz=64, nnz_max=2), "bz must be between 2 and 32"),
    (dict(bz=8, nnz_max=2, stage_regs=1), "stage_regs must be a bool"),
])
def test_invalid_config_refused(params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        DapConfig(name="bad", **params)


@pytest.mark.parametrize("params, message", [
    (dict(variant="tpu", rows=2, cols=2), "variant must be one of sa, sa_zvcg, s2ta_w, s2ta_aw"),
    (dict(variant="sa", a=2, rows=2, cols=2), "sa is a 1x1x1 scalar-PE array, not 2x1x1"),
    (dict(variant="s2ta_w", b=9, rows=2, cols=2), "b must be between 1 and 8, not 9"),
    (dict(variant="s2ta_aw", bz=12, rows=2, cols=2), "bz must be a power of two"),
    (dict(variant="s2ta_aw", nnz_max=9, rows=2, cols=2), "nnz_max must be between 1 and 8, not 9"),
    (dict(variant="sa", rows=0, cols=2), "rows must be between 1 and 256, not 0"),
    (dict(variant="s2ta_w", b=4, acc_width=16, rows=2, cols=2), "acc_width must be between 18 and 64"),
    (dict(variant="sa", rows=2, cols=2.0), "cols must be an integer"),
])
def test_invalid_array_config_refused(params, message):
    from generators.config import ArrayConfig

    with pytest.raises((ValueError, TypeError), match=message):
        ArrayConfig(name="bad", **params)


def test_generate_refuses_unknown_preset_and_writes_nothing(tmp_path, capsys):
    assert main(["generate", "dap", "--preset", "nosuch", "--out", str(tmp_path)]) == 2
    assert "unknown preset 'nosuch'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_generate_is_deterministic(tmp_path):
    """Every default generated now equals, byte for byte, the committed hdl/ (emitted by another process, on another
    machine); a fresh conversion (not the machine's emission cache) writes the same bytes; a second generation of a
    block writes nothing that did not change."""
    assert main(["generate", "--out", str(tmp_path)]) == 0
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert first == {p.name: p.read_bytes() for p in (REPO / "hdl").iterdir() if p.suffix in (".v", ".json")}
    assert {"dap_default.v", "dap_default.json"} <= set(first)
    emit(CATALOG["dap"]["default"], tmp_path / "fresh")
    assert {p.name: p.read_bytes() for p in (tmp_path / "fresh").iterdir()} == \
        {name: text for name, text in first.items() if name.startswith("dap_default.")}
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    assert main(["generate", "dap", "--out", str(tmp_path)]) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == first
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps  # written only when changed


def _write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_cosim_matches_golden(sim, tmp_path, rng):
    cfg = CATALOG["dap"]["default"]
    blocks = rng.integers(-128, 128, (3000, 8)).astype(np.int8)
    nnz = rng.integers(1, 6, 3000)
    out = tmp_path / "out.npz"
    assert main(["cosim", "dap", "--sim", sim, "--inputs", _write(tmp_path / "in.npz", blocks=blocks, nnz=nnz),
                 "--out", str(out)]) == 0
    result = np.load(out)
    values, mask = dap(cfg, blocks, nnz)
    assert result["values"].dtype == np.int8 and (result["values"] == values).all()
    assert result["mask"].dtype == np.uint32 and (result["mask"] == mask).all()
    assert result["golden_match"] and result["cycles"] == 3000 + cfg.latency and result["hw_macs"] == 0


def test_cosim_scalar_nnz_and_other_preset(tmp_path):
    cfg = CATALOG["dap"]["wide"]
    blocks = np.tile(np.arange(-8, 8, dtype=np.int8), (40, 1))
    out = tmp_path / "out.npz"
    assert main(["cosim", "dap", "--preset", "wide", "--sim", "icarus", "--inputs",
                 _write(tmp_path / "in.npz", blocks=blocks, nnz=np.int64(3)), "--out", str(out)]) == 0
    assert (np.load(out)["values"] == dap(cfg, blocks, 3)[0]).all()


@pytest.mark.parametrize("arrays, message", [
    (dict(nnz=np.int64(2)), "missing input 'blocks'"),
    (dict(blocks=np.zeros((4, 8), np.int8)), "missing input 'nnz'"),
    (dict(blocks=np.zeros((4, 8), np.int16), nnz=np.int64(2)), "dtype int8"),
    (dict(blocks=np.zeros((4, 4), np.int8), nnz=np.int64(2)), "shape"),
    (dict(blocks=np.zeros((0, 8), np.int8), nnz=np.int64(2)), "array 'blocks' is empty (shape [0, 8])"),
    (dict(blocks=np.zeros((4, 8), np.int8), nnz=np.int64(0)), "between 1 and 5"),
    (dict(blocks=np.zeros((4, 8), np.int8), nnz=np.int64(6)), "between 1 and 5"),
    (dict(blocks=np.zeros((4, 8), np.int8), nnz=np.ones(3, np.int64)), "shape"),
    (dict(blocks=np.zeros((4, 8), np.int8), nnz=np.float64(2)), "integers"),
])
def test_cosim_refuses_invalid_input(arrays, message, tmp_path, capsys):
    out = tmp_path / "out.npz"
    assert main(["cosim", "dap", "--inputs", _write(tmp_path / "in.npz", **arrays), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cosim_refuses_unreadable_input(tmp_path, capsys):
    bad = tmp_path / "in.npz"
    bad.write_text("not a zip")
    assert main(["cosim", "dap", "--inputs", str(bad), "--out", str(tmp_path / "out.npz")]) == 2
    assert "is not an .npz archive" in capsys.readouterr().err
    assert not (tmp_path / "out.npz").exists()


def test_cosim_reports_a_mismatch_and_keeps_waves(tmp_path, capsys, corrupt_golden):
    """A corrupted expectation stands in for a faulty RTL: exit 1, OUT.npz kept, coordinates, waveform."""
    corrupt_golden(DapDriver, "values", (7, 1), change=lambda v: v ^ 0x10)
    blocks = np.tile(np.array([9, -3, 4, 0, 8, 1, -2, 5], np.int8), (20, 1))
    out = tmp_path / "out.npz"
    assert main(["cosim", "dap", "--sim", "icarus", "--inputs",
                 _write(tmp_path / "in.npz", blocks=blocks, nnz=np.int64(4)), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "first mismatch at values[7, 1]" in err
    waves = err.split("waveform kept at ")[1].strip()
    assert out.exists() and not np.load(out)["golden_match"]
    assert Path(waves).exists() and Path(waves).stat().st_size > 0


def test_cosim_array_conv_and_gemm(tmp_path, rng):
    """An sa conv on Icarus and an s2ta_aw GEMM on Verilator: exit 0, y and cycles of the golden models."""
    from flow.harness.drivers.array import ArrayDriver
    from golden.conv import conv2d
    from golden.dbb import wdbb_prune

    x = rng.integers(0, 128, (3, 6, 5)).astype(np.int8)
    w = rng.integers(-127, 128, (5, 3, 3, 3)).astype(np.int8)
    out = tmp_path / "conv.npz"
    inputs = _write(tmp_path / "conv_in.npz", x=x, w=w, pad=np.int64(1), stride=np.int64(1))
    assert main(["cosim", "sa", "--sim", "icarus", "--inputs", inputs, "--out", str(out)]) == 0
    result = np.load(out)
    assert result["y"].dtype == np.int32 and np.array_equal(result["y"], conv2d(x, w, pad=1))
    assert result["golden_match"] and result["hw_macs"] == CATALOG["sa"]["default"].macs
    assert result["energy_pj"].dtype == np.float64 and result["energy_pj"] > 0

    cfg = CATALOG["s2ta_aw"]["default"]
    a = rng.integers(-128, 128, (7, 21)).astype(np.int8)
    wm = wdbb_prune(rng.integers(-128, 128, (21, 6)).astype(np.int8), cfg.b, cfg.bz, axis=0)
    out = tmp_path / "gemm.npz"
    inputs = _write(tmp_path / "gemm_in.npz", a=a, w=wm, nnz_a=np.int64(3))
    assert main(["cosim", "s2ta_aw", "--inputs", inputs, "--out", str(out)]) == 0
    args = ArrayDriver.validate(cfg, {"a": a, "w": wm, "nnz_a": np.int64(3)})
    golden, cycles = ArrayDriver.golden(cfg, args)
    assert np.array_equal(np.load(out)["y"], golden["y"]) and np.load(out)["cycles"] == cycles


_ONES = np.ones((4, 16), np.int8)
_DENSE_W = np.ones((16, 3), np.int8)


@pytest.mark.parametrize("block, arrays, message", [
    ("s2ta_w", dict(a=_ONES, w=_DENSE_W), "breaks the 4/8 W-DBB bound of s2ta_w/default: column 0, rows 0..7"),
    ("s2ta_aw", dict(a=_ONES, w=_DENSE_W, dense_w=np.bool_(True), nnz_a=np.int64(6)), "nnz_a must be one of"),
    ("s2ta_aw", dict(a=_ONES, w=_DENSE_W, dense_w=np.bool_(True)), "missing input 'nnz_a' (an integer scalar)"),
    ("sa", dict(a=_ONES, w=np.ones((15, 3), np.int8)), "K differs"),
    ("sa", dict(a=_ONES, w=_DENSE_W, nnz_a=np.int64(2)), "nnz_a applies to s2ta_aw only"),
    ("sa", dict(a=_ONES.astype(np.int16), w=_DENSE_W), "a must have dtype int8"),
    ("sa", dict(x=np.ones((2, 4, 4), np.int8), w=np.ones((3, 1, 3, 3), np.int8)), "w has 1 input channels but x has 2"),
    ("sa", dict(x=np.ones((1, 4, 4), np.int8), w=np.ones((3, 1, 3, 3), np.int8), pad=np.int64(-1)), "pad must be"),
    ("sa", dict(a=_ONES, x=np.ones((1, 4, 4), np.int8), w=_DENSE_W), "a and w (GEMM) or x and w (conv)"),
    ("s2ta_w", dict(a=_ONES, w=_DENSE_W, dense_w=np.int64(1)), "dense_w must be a bool"),
])
def test_cosim_array_refuses_invalid_input(block, arrays, message, tmp_path, capsys):
    out = tmp_path / "out.npz"
    assert main(["cosim", block, "--inputs", _write(tmp_path / "in.npz", **arrays), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cosim_array_mismatch_names_output_coordinates(tmp_path, capsys, corrupt_golden):
    """A corrupted expectation stands in for a faulty RTL: exit 1 with y[f, p, q] and a kept waveform."""
    from flow.harness.drivers.array import ArrayDriver

    corrupt_golden(ArrayDriver, "y", (2, 1, 3), when=lambda args: args["out_shape"] is not None)
    x = np.arange(2 * 5 * 5, dtype=np.int8).reshape(2, 5, 5)
    inputs = _write(tmp_path / "in.npz", x=x, w=np.ones((4, 2, 3, 3), np.int8), pad=np.int64(1))
    out = tmp_path / "out.npz"
    assert main(["cosim", "sa", "--sim", "icarus", "--inputs", inputs, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "first mismatch at y[2, 1, 3]" in err
    waves = Path(err.split("waveform kept at ")[1].strip())
    assert out.exists() and not np.load(out)["golden_match"] and waves.stat().st_size > 0


@pytest.mark.parametrize("params, message", [
    (dict(reuse=True, banks=24), "banks must be a power of two, not 24"),
    (dict(reuse=False, filters=64), "filters must be between 1 and 32, not 64"),
    (dict(reuse=False, filters=3), "filters must be a power of two, not 3"),
    (dict(reuse=True, px=0), "px must be between 1 and 16, not 0"),
    (dict(reuse=True, r=8), "r must be between 1 and 7, not 8"),
    (dict(reuse=1), "reuse must be a bool"),
])
def test_invalid_pe_config_refused(params, message, tmp_path):
    from generators.config import PeConfig

    with pytest.raises((ValueError, TypeError), match=message):
        PeConfig(name="bad", **params)


def _symmetric_layer(rng, c=2, f=5, h=9, w=10):
    from golden.cscnn import mirror_canonical

    x = np.where(rng.random((c, h, w)) < 0.5, rng.integers(0, 128, (c, h, w)), 0).astype(np.int8)
    wgt = mirror_canonical(rng.integers(-127, 128, (f, c, 3, 3))).astype(np.int8)
    return x, wgt, rng.integers(-999, 999, f).astype(np.int32)


@pytest.mark.parametrize("block, sim", [("scnn_pe", "icarus"), ("cscnn_pe", "verilator")])
def test_cosim_pe_full_mode_with_bias(block, sim, tmp_path, rng):
    """A layer of two planar tiles and two filter groups: exit 0, y = full-mode conv + bias, counters of golden."""
    from flow.harness.drivers.cartesian import PeDriver
    from golden.conv import conv2d

    x, w, bias = _symmetric_layer(rng)
    out = tmp_path / "out.npz"
    assert main(["cosim", block, "--sim", sim, "--inputs", _write(tmp_path / "in.npz", x=x, w=w, bias=bias),
                 "--out", str(out)]) == 0
    result = np.load(out)
    assert result["y"].shape == (5, 11, 12) and result["y"].dtype == np.int32
    assert np.array_equal(result["y"], conv2d(x, w, pad=2, bias=bias))
    cfg = CATALOG[block]["default"]
    golden, cycles = PeDriver.golden(cfg, PeDriver.validate(cfg, {"x": x, "w": w, "bias": bias}))
    assert result["mults"] == golden["mults"] and result["stalls"] == golden["stalls"]
    assert result["cycles"] == cycles and result["hw_macs"] == 16 and result["golden_match"]


@pytest.mark.parametrize("change, message", [
    (lambda x, w, b: dict(x=x, w=np.where(np.arange(9).reshape(3, 3) == 0, w + 1, w).astype(np.int8), bias=b),
     "w is not centrosymmetric (filter 0, channel 0 differs from its dual); cscnn_pe refuses it"),
    (lambda x, w, b: dict(x=x, w=w), "missing input 'bias' (cscnn_pe needs x, w, bias)"),
    (lambda x, w, b: dict(x=x, w=w[:, :, :2, :2], bias=b), "cscnn_pe_default takes 3x3 filters, not 2x2"),
    (lambda x, w, b: dict(x=x.astype(np.int32), w=w, bias=b), "x must have dtype int8"),
    (lambda x, w, b: dict(x=x, w=w, bias=b.astype(np.int8)), "bias must have dtype int32"),
])
def test_cosim_cscnn_refuses_invalid_input(change, message, tmp_path, capsys, rng):
    out = tmp_path / "out.npz"
    inputs = _write(tmp_path / "in.npz", **change(*_symmetric_layer(rng)))
    assert main(["cosim", "cscnn_pe", "--inputs", inputs, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cosim_pe_mismatch_names_output_coordinates(tmp_path, capsys, corrupt_golden, rng):
    """A corrupted expectation stands in for a faulty RTL: exit 1 with y[f, u, v] and a kept waveform."""
    from flow.harness.drivers.cartesian import PeDriver

    corrupt_golden(PeDriver, "y", (4, 9, 2))
    x, w, bias = _symmetric_layer(rng)
    out = tmp_path / "out.npz"
    assert main(["cosim", "scnn_pe", "--sim", "icarus", "--inputs", _write(tmp_path / "in.npz", x=x, w=w, bias=bias),
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "first mismatch at y[4, 9, 2]" in err
    waves = Path(err.split("waveform kept at ")[1].strip())
    assert out.exists() and not np.load(out)["golden_match"] and waves.stat().st_size > 0


@pytest.mark.parametrize("tiling", [None, "channel"])
def test_cosim_pe_array_full_mode_with_bias_under_a_tiling(tiling, tmp_path, rng):
    """The cscnn array: exit 0, y = full-mode conv + bias whatever the tiling, counters and cycles of golden."""
    from flow.harness.drivers.cartesian import PeArrayDriver
    from golden.conv import conv2d

    x, w, bias = _symmetric_layer(rng)
    extra = {} if tiling is None else {"tiling": np.asarray(tiling)}
    out = tmp_path / "out.npz"
    assert main(["cosim", "cscnn", "--inputs", _write(tmp_path / "in.npz", x=x, w=w, bias=bias, **extra),
                 "--out", str(out)]) == 0
    result = np.load(out)
    assert np.array_equal(result["y"], conv2d(x, w, pad=2, bias=bias)) and result["y"].dtype == np.int32
    cfg = CATALOG["cscnn"]["default"]
    golden, cycles = PeArrayDriver.golden(cfg, PeArrayDriver.validate(cfg, {"x": x, "w": w, "bias": bias, **extra}))
    assert result["mults"] == golden["mults"] and result["stalls"] == golden["stalls"]
    assert result["cycles"] == cycles and result["hw_macs"] == 64 and result["golden_match"]


@pytest.mark.parametrize("change, message", [
    (lambda x, w, b: dict(x=x, w=np.where(np.arange(9).reshape(3, 3) == 0, w + 1, w).astype(np.int8), bias=b),
     "w is not centrosymmetric (filter 0, channel 0 differs from its dual); cscnn refuses it"),
    (lambda x, w, b: dict(x=x, w=w, bias=b, tiling=np.asarray("rows")),
     "tiling must be one of mixed, planar, channel or fastest, not 'rows'"),
    (lambda x, w, b: dict(x=x, w=w, bias=b, tiling=np.asarray(["mixed"])), "tiling must be a string scalar"),
])
def test_cosim_pe_array_refuses_invalid_input(change, message, tmp_path, capsys, rng):
    out = tmp_path / "out.npz"
    inputs = _write(tmp_path / "in.npz", **change(*_symmetric_layer(rng)))
    assert main(["cosim", "cscnn", "--inputs", inputs, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cosim_pe_array_mismatch_names_output_coordinates(tmp_path, capsys, corrupt_golden, rng):
    """A corrupted expectation stands in for a faulty RTL: exit 1 with y[f, u, v] and a kept waveform."""
    from flow.harness.drivers.cartesian import PeArrayDriver

    corrupt_golden(PeArrayDriver, "y", (4, 9, 2))
    x, w, bias = _symmetric_layer(rng)
    out = tmp_path / "out.npz"
    assert main(["cosim", "scnn", "--sim", "icarus", "--inputs", _write(tmp_path / "in.npz", x=x, w=w, bias=bias),
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "first mismatch at y[4, 9, 2]" in err
    waves = Path(err.split("waveform kept at ")[1].strip())
    assert out.exists() and not np.load(out)["golden_match"] and waves.stat().st_size > 0


@pytest.mark.parametrize("params, message", [
    (dict(bits_per_cycle=0), "bits_per_cycle must be between 1 and 256, not 0"),
    (dict(max_in=0), "max_in must be between 1 and 65536, not 0"),
    (dict(bits_per_cycle=8.0), "bits_per_cycle must be an integer"),
])
def test_invalid_bincu_config_refused(params, message):
    from generators.config import BinCuConfig

    with pytest.raises((ValueError, TypeError), match=message):
        BinCuConfig(name="bad", **params)


def test_cosim_has_no_bincu_block_alone(tmp_path, capsys):
    """The binCU is verified on its own by the RTL tests; docs/cosim.md's block is the whole `mor` engine."""
    assert main(["cosim", "bincu", "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'bincu'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("params, message", [
    (dict(bits_per_cycle=12, mac_width=8), "bits_per_cycle must be a multiple of mac_width \\(8\\), not 12"),
    (dict(max_out=24), "max_out must be a power of two, not 24"),
    (dict(n_cu=0), "n_cu must be between 1 and 32, not 0"),
    (dict(n_bincu=1.5), "n_bincu must be an integer"),
    (dict(issue=3), "issue must be a power of two, not 3"),
    (dict(n_cu=4, issue=8), "issue must be between 1 and 4, not 8"),
    (dict(load_words=16), "load_words must divide bits_per_cycle / mac_width \\(8\\), not 16"),
])
def test_invalid_mor_config_refused(params, message):
    from generators.config import MorConfig

    with pytest.raises((ValueError, TypeError), match=message):
        MorConfig(name="bad", **params)


def _mor_layer(rng, n_out=6, n_in=21, vectors=4):
    return {"x": np.maximum(rng.integers(-60, 128, (vectors, n_in)), 0).astype(np.int8),
            "w": rng.integers(-128, 128, (n_out, n_in)).astype(np.int8),
            "bias": rng.integers(-2000, 500, n_out).astype(np.int32),
            "proxy": np.array([-1, 0, 0, -1, 3, 3, -1, 6, 6, 6, -1, 10, 10, 10, 10, -1][:n_out], np.int64),
            "m_q": rng.integers(0, 40, n_out).astype(np.int32),
            "b_q": rng.integers(-4000, 500, n_out).astype(np.int32), "enable": np.ones(n_out, bool)}


def test_cosim_mor_writes_outputs_and_counters(tmp_path, rng):
    from golden.mor import mor_layer

    args = _mor_layer(rng)
    out = tmp_path / "out.npz"
    assert main(["cosim", "mor", "--preset", "small", "--sim", "icarus", "--inputs",
                 _write(tmp_path / "in.npz", **args), "--out", str(out)]) == 0
    result = np.load(out)
    expected = mor_layer(**args)
    assert result["y"].dtype == np.int32 and np.array_equal(result["y"], expected["y"])
    assert np.array_equal(result["skipped"], expected["skipped"]) and result["macs"] == expected["macs"]
    assert result["hw_macs"] == 8 and result["golden_match"] and result["run_cycles"].shape == (1,)  # one run of 4


@pytest.mark.parametrize("change, message", [
    (dict(proxy=np.array([-1, 0, 1, -1, 3, 3])), "proxy[2] = 1 points at neuron 1, which is not a proxy"),
    (dict(proxy=np.array([-1, 0, 0, -1, 3, 6])), "proxy[5] = 6 is outside -1..5"),
    (dict(m_q=np.zeros(5, np.int32)), "m_q must have shape [6]"),
    (dict(enable=np.ones(6, np.int8)), "enable must have dtype bool"),
    (dict(bias=np.full(6, 2**31 - 1000, np.int32)), "accumulator could reach"),
    (dict(x=np.zeros((2, 129), np.int8), w=np.zeros((6, 129), np.int8)),
     "an input vector of 129 does not fit mor_small (max_in 128)"),
    (dict(w=np.zeros((17, 21), np.int8)), "bias must have shape [17]"),
    (dict(x=np.zeros((2, 21), np.int16)), "x must have dtype int8"),
])
def test_cosim_mor_refuses_invalid_input(change, message, tmp_path, capsys, rng):
    out = tmp_path / "out.npz"
    inputs = _write(tmp_path / "in.npz", **(_mor_layer(rng) | change))
    assert main(["cosim", "mor", "--preset", "small", "--inputs", inputs, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cosim_mor_refuses_a_cluster_larger_than_the_preset(tmp_path, capsys, rng):
    """Clusters are never split (docs/cosim.md): one proxy with 16 members cannot run on max_out 16."""
    n = 17
    args = _mor_layer(rng, n_out=16) | {"proxy": np.array([-1] + [0] * (n - 1), np.int64),
                                          "w": np.zeros((n, 21), np.int8), "bias": np.zeros(n, np.int32),
                                          "m_q": np.zeros(n, np.int32), "b_q": np.zeros(n, np.int32),
                                          "enable": np.ones(n, bool)}
    out = tmp_path / "out.npz"
    assert main(["cosim", "mor", "--preset", "small", "--inputs", _write(tmp_path / "in.npz", **args),
                 "--out", str(out)]) == 2
    assert "a cluster of 17 neurons does not fit mor_small (max_out 16); clusters are never split" in \
        capsys.readouterr().err
    assert not out.exists()


def test_cosim_mor_runs_more_neurons_than_the_preset_in_pieces_of_whole_clusters(tmp_path, rng):
    """40 neurons in clusters of 1 to 5 on max_out 16 (Icarus): pieces of whole clusters, outputs and skips equal
    to the unsplit skip rule's, MACs summed over the pieces."""
    from generators.config import preset
    from golden.mor import mor_layer

    n_out, sizes = 40, [1, 3, 5, 2, 4, 1, 5, 3, 2, 4, 5, 5]
    proxy, k = [], 0
    for size in sizes:
        proxy += [-1] + [k] * (size - 1)
        k += size
    args = _mor_layer(rng, n_out=16) | {
        "w": rng.integers(-128, 128, (n_out, 21)).astype(np.int8),
        "bias": rng.integers(-2000, 500, n_out).astype(np.int32),
        "proxy": np.array(proxy, np.int64), "m_q": rng.integers(0, 40, n_out).astype(np.int32),
        "b_q": rng.integers(-4000, 500, n_out).astype(np.int32), "enable": np.ones(n_out, bool)}
    out = tmp_path / "out.npz"
    assert main(["cosim", "mor", "--preset", "small", "--sim", "icarus",
                 "--inputs", _write(tmp_path / "in.npz", **args), "--out", str(out)]) == 0
    result, want = np.load(out), mor_layer(**args)
    assert preset("mor", "small").max_out == 16 and bool(result["golden_match"])
    assert np.array_equal(result["y"], want["y"]) and np.array_equal(result["skipped"], want["skipped"])
    assert int(result["macs"]) == int(want["macs"]) and want["skipped"].any()


def test_cosim_mor_mismatch_names_the_neuron(tmp_path, capsys, corrupt_golden, rng):
    """A corrupted expectation stands in for a faulty RTL: exit 1 with skipped[v, n] and a kept waveform."""
    from flow.harness.drivers.mor import MorDriver

    corrupt_golden(MorDriver, "skipped", (2, 4), change=lambda v: not v)
    out = tmp_path / "out.npz"
    assert main(["cosim", "mor", "--preset", "small", "--sim", "icarus", "--inputs",
                 _write(tmp_path / "in.npz", **_mor_layer(rng)), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "first mismatch at skipped[2, 4]" in err
    waves = Path(err.split("waveform kept at ")[1].strip())
    assert out.exists() and not np.load(out)["golden_match"] and waves.stat().st_size > 0


@pytest.mark.parametrize("params, message", [
    (dict(lanes=4, window=2), "window must be between 4 and 64, not 2"),
    (dict(max_x=100), "max_x must be a multiple of 8, not 100"),
    (dict(two_sided=1), "two_sided must be a bool"),
])
def test_invalid_snapea_config_refused(params, message):
    from generators.config import SnapeaConfig

    with pytest.raises((ValueError, TypeError), match=message):
        SnapeaConfig(name="bad", **params)


def _snapea_layer(rng, f=3):
    x = np.where(rng.random((2, 5, 5)) < 0.4, 0, rng.integers(0, 128, (2, 5, 5))).astype(np.int8)
    return {"x": x, "w": rng.integers(-128, 128, (f, 2, 3, 3)).astype(np.int8),
            "bias": rng.integers(-2000, 2000, f).astype(np.int32), "pad": np.int64(1)}


def test_cosim_snapea_writes_relu_outputs_and_counters(tmp_path, rng):
    from golden.conv import conv2d
    from golden.snapea import terminating_layer

    args = _snapea_layer(rng)
    out = tmp_path / "out.npz"
    assert main(["cosim", "snapea", "--preset", "small", "--sim", "icarus", "--inputs",
                 _write(tmp_path / "in.npz", **args), "--out", str(out)]) == 0
    result = np.load(out)
    assert result["y"].dtype == np.int32
    assert np.array_equal(result["y"], np.maximum(conv2d(args["x"], args["w"], pad=1, bias=args["bias"]), 0))
    # small is two-sided: at least the algorithm's products, at most a group (lanes) more per output.
    algorithm = terminating_layer(args["x"], args["w"], args["bias"], pad=1, skip_zero_x=True)["mults"]
    lanes = CATALOG["snapea"]["small"].lanes
    assert (result["pixel_mults"] >= algorithm).all() and (result["pixel_mults"] <= algorithm + lanes).all()
    assert result["mults"] == result["pixel_mults"].sum() and result["hw_macs"] == 4 and result["golden_match"]


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "x": np.where(a["x"] == a["x"].max(), -3, a["x"]).astype(np.int8)},
     "is negative; SnaPEA's early termination is exact only for activations >= 0"),
    (lambda a: {**a, "bias": np.full(3, 2**31 - 100, np.int32)}, "accumulator could reach"),
    (lambda a: {k: v for k, v in a.items() if k != "pad"}, "missing input 'pad' (snapea needs x, w, bias, pad)"),
    (lambda a: {**a, "x": np.zeros((8, 6, 6), np.int8), "w": np.ones((3, 8, 3, 3), np.int8)},
     "288 input activations C·H·W exceed snapea_small's 256"),
    (lambda a: {**a, "w": a["w"].astype(np.int16)}, "w must have dtype int8"),
    (lambda a: {**a, "pad": np.float64(1.0)}, "pad must be an integer scalar, not float64 1.0"),
    (lambda a: {**a, "stride": np.array([1, 2])}, "stride must be an integer scalar, not an array of shape [2]"),
])
def test_cosim_snapea_refuses_invalid_input(change, message, tmp_path, capsys, rng):
    out = tmp_path / "out.npz"
    inputs = _write(tmp_path / "in.npz", **change(_snapea_layer(rng)))
    assert main(["cosim", "snapea", "--preset", "small", "--inputs", inputs, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cosim_snapea_mismatch_names_the_output(tmp_path, capsys, corrupt_golden, rng):
    """A corrupted expectation stands in for a faulty RTL: exit 1 with y[f, p, q] and a kept waveform."""
    from flow.harness.drivers.snapea import SnapeaDriver

    corrupt_golden(SnapeaDriver, "y", (2, 3, 1))
    out = tmp_path / "out.npz"
    assert main(["cosim", "snapea", "--preset", "small", "--sim", "icarus", "--inputs",
                 _write(tmp_path / "in.npz", **_snapea_layer(rng)), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "first mismatch at y[2, 3, 1]" in err
    waves = Path(err.split("waveform kept at ")[1].strip())
    assert out.exists() and not np.load(out)["golden_match"] and waves.stat().st_size > 0


def test_the_help_states_the_defaults_the_commands_use(capsys):
    """A default stated in --help (the parser loads no flow step, so it states them as text) is the function's."""
    import inspect
    import re

    from flow.report.evaluate import demo, evaluate
    from flow.report.holistic import holistic, train

    for command, function in (("evaluate", evaluate), ("demo", demo), ("train", train), ("holistic", holistic)):
        assert main([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        stated = dict(re.findall(r"--(\w[\w-]*) [A-Z_]+ (?:(?!--).)*?\(default (\d+)\)", text))
        parameters = inspect.signature(function).parameters
        compared = {option: value for option, value in stated.items() if option.replace("-", "_") in parameters}
        assert "images" in compared, (command, stated)
        for option, value in compared.items():
            assert parameters[option.replace("-", "_")].default == int(value), (command, option)


def test_help_and_refusals_load_neither_torch_nor_a_data_set(tmp_path):
    """A refusal answers at once (issue 35; flow.bench.hostile times each from a fresh process): in a fresh
    interpreter, --help, presets and a refusal of every command that trains or simulates import no torch,
    scikit-learn, ONNX or data set."""
    import subprocess
    import sys

    refusals = [["--help"], ["presets", "sa"], ["evaluate", "--network", "nope"], ["evaluate", "--images", "999999"],
                ["evaluate", "--model", "missing.onnx", "--data", "missing.npz"], ["demo", "--images", "0"],
                ["compare", "--images", "0"], ["train", "--network", "nope", "--target", "snapea", "--method", "l1"],
                ["holistic", "--networks", "digits", "--epochs", "0"], ["sweep", "missing.toml"],
                ["cosim", "sa", "--inputs", "missing.npz", "--out", "out.npz"]]
    script = f"""import contextlib, io, sys
from flow.cli import main
codes = []
for argv in {refusals!r}:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        codes.append(main(argv))
print(codes, sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "sklearn", "mlxtend", "onnx")))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == f"{[0, 0] + [2] * (len(refusals) - 2)} []", done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []
