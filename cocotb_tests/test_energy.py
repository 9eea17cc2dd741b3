"""Energy on OSU 0.18 µm (docs/flow.md, Energy): the Liberty library read right, a block mapped to its cells, and
the gate-level netlist simulated on Icarus inside the co-simulation harness — equal to golden, with energy from
its toggles that falls with activation density — and the per-action models calibrated from it."""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from flow.harness.check import check_layers
from flow.harness.cosim import rows_bit_exact
from flow.harness.drivers import DRIVERS
from flow.harness.drivers.array import ArrayDriver
from flow.harness.runner import SIMULATORS
from flow.synth import sram
from flow.synth.calibration import (
    CALIBRATED,
    TABLE,
    actions,
    digest,
    energy_model,
    macro_kind,
    model_parts,
)
from flow.synth.cells import map_to_cells
from flow.synth.energy import gate_driver, macro_of, measure_energy, vcd_toggles
from flow.synth.liberty import osu018
from flow.synth.system import buffer_macro, buffer_pj, layer_dram_bits
from generators.config import preset
from golden.dbb import wdbb_prune
from models.quantize import QLayer


def test_the_osu018_library_is_read_with_its_cells_pins_and_energy_tables():
    lib = osu018()
    assert lib.name == "osu018_stdcells" and lib.voltage == 1.8 and len(lib.cells) == 32
    and2 = lib.cells["AND2X1"]                     # figures as the .lib states them
    assert and2.area == 32 and and2.leakage == pytest.approx(0.0746794)
    assert and2.inputs == {"A": pytest.approx(0.0129077), "B": pytest.approx(0.0125298)} and and2.outputs == ("Y",)
    loads, slews, rise, fall = and2.energy["Y", "A"]
    assert list(loads) == [0.005, 0.0125, 0.025, 0.075, 0.15] and list(slews) == [0.06, 0.18, 0.42, 0.6, 1.2]
    at = and2.transition_energy("Y", 0.025, 0.42)  # on the grid: the mean of both related pins' rise and fall
    rise_b, fall_b = and2.energy["Y", "B"][2:]
    assert at == pytest.approx(np.mean([rise[2, 2], fall[2, 2], rise_b[2, 2], fall_b[2, 2]]))
    assert and2.transition_energy("Y", 0.0, 0.0) == and2.transition_energy("Y", 0.005, 0.06)   # clamped
    dff = lib.cells["DFFPOSX1"]
    assert ("CLK", "") in dff.energy and dff.transition_energy("CLK", 0, 0.18) > 0   # the clock pin's own energy


@pytest.fixture(scope="module")
def sa_small_gates():
    cfg = preset("sa", "small")
    return cfg, map_to_cells(cfg), *gate_driver(ArrayDriver, cfg)


@pytest.mark.xdist_group("sa_gates")   # one worker maps the sa/sa_zvcg small netlists at a time (one work folder)
def test_a_block_maps_to_library_cells_with_yosys_area(sa_small_gates):
    cfg, cells, _, netlist = sa_small_gates
    lib = osu018()
    assert set(cells["cells_by_type"]) <= set(lib.cells) and cells["cells"] == len(netlist.cells)
    assert cells["area_um2"] > 0 and cells["area_um2"] == pytest.approx(cells["yosys_area_um2"])
    assert cells["cells_by_type"]["DFFPOSX1"] >= cfg.rows * cfg.cols * cfg.acc_width   # accumulators at least
    with pytest.raises(ValueError, match="^style must be one of asic, flops, not 'gates'$"):
        map_to_cells(cfg, style="gates")


@pytest.mark.xdist_group("sa_gates")   # one worker maps the sa/sa_zvcg small netlists at a time (one work folder)
def test_gate_level_netlist_equals_golden_and_its_energy_falls_with_density(sa_small_gates, rng):
    cfg, _, driver, netlist = sa_small_gates
    w = rng.integers(-128, 128, (48, cfg.cols)).astype(np.int8)
    a = rng.integers(-128, 128, (4, 48))
    keep = rng.random(a.shape)
    energy = {}
    for density in (1.0, 0.5, 0.0):
        args = ArrayDriver.validate(cfg, {"a": np.where(keep < density, a, 0).astype(np.int8), "w": w})
        e = measure_energy(driver, netlist, args)   # raises if the netlist's outputs differ from golden
        assert e["rtl_cycles"] == ArrayDriver.golden(cfg, args)[1] and abs(e["cycles"] - e["rtl_cycles"]) <= 1
        assert e["switching_pj"] > 0 and e["internal_pj"] > 0 and e["leakage_pj"] > 0
        assert e["energy_pj"] == pytest.approx(e["switching_pj"] + e["internal_pj"] + e["leakage_pj"])
        energy[density] = e["energy_pj"]
    assert energy[1.0] > energy[0.5] > energy[0.0]


@pytest.mark.xdist_group("sa_gates")   # one worker maps the sa/sa_zvcg small netlists at a time (one work folder)
def test_zero_value_clock_gating_saves_energy_on_sparse_activations_at_equal_cycles(sa_small_gates, rng):
    """sa_zvcg against sa on the same operands: the same cycles and outputs; on sparse activations less energy
    (its accumulators get no clock edge in a zero step), on dense ones no saving to speak of."""
    cfg, _, sa_driver, sa_netlist = sa_small_gates
    zvcg_cfg = preset("sa_zvcg", "small")
    zvcg_driver, zvcg_netlist = gate_driver(ArrayDriver, zvcg_cfg)
    w = rng.integers(-128, 128, (48, cfg.cols)).astype(np.int8)
    a = rng.integers(-128, 128, (4, 48))
    keep = rng.random(a.shape)
    ratio = {}
    for density in (1.0, 0.1):
        x = {"a": np.where(keep < density, a, 0).astype(np.int8), "w": w}
        sa = measure_energy(sa_driver, sa_netlist, ArrayDriver.validate(cfg, x))
        zvcg = measure_energy(zvcg_driver, zvcg_netlist, ArrayDriver.validate(zvcg_cfg, x))
        assert sa["rtl_cycles"] == zvcg["rtl_cycles"]
        ratio[density] = zvcg["energy_pj"] / sa["energy_pj"]
    # Both arrays are clock-gated where enabled. Over seeds 0-5: 1.022-1.024 dense; 0.82-0.85 at 10% density (at 30%
    # the saving depends on which steps happen to be all-zero: 0.90-0.95, too close to any bound).
    assert ratio[0.1] < 0.9 and ratio[1.0] < 1.05, ratio


@pytest.mark.xdist_group("scnn_pe_gates")   # one worker builds and runs the scnn_pe_small netlist at a time
@pytest.mark.parametrize("block", ["scnn_pe", pytest.param("cscnn_pe", marks=pytest.mark.slow)])
def test_cartesian_pe_energy_falls_with_activation_density(block, rng):
    """The PE's gate-level netlist equals golden, its energy falls as its input activations get sparser, and the
    per-action model predicts it."""
    from flow.harness.drivers.cartesian import PeDriver
    from golden.cscnn import mirror_canonical

    cfg = preset(block, "small")
    driver, netlist = gate_driver(PeDriver, cfg)
    x = rng.integers(1, 128, (4, cfg.tile_h, cfg.tile_w))
    w = rng.integers(-128, 128, (cfg.filters, 4, cfg.r, cfg.s)).astype(np.int8)
    w = mirror_canonical(w) if cfg.reuse else w
    keep = rng.random(x.shape)
    energy = {}
    for density in (1.0, 0.5, 0.2):
        args = PeDriver.validate(cfg, {"x": np.where(keep < density, x, 0).astype(np.int8), "w": w,
                                       "bias": rng.integers(-999, 999, cfg.filters).astype(np.int32)})
        e = measure_energy(driver, netlist, args)
        assert e["rtl_cycles"] == PeDriver.golden(cfg, args)[1]
        energy[density] = e["energy_pj"]
        model = _model_pj(cfg, args, e["cycles"])   # random operands: the calibration saw real data only
        assert abs(model - e["energy_pj"]) < 0.15 * e["energy_pj"], (density, model, e["energy_pj"])
    assert energy[1.0] > energy[0.5] > energy[0.2]


def test_every_block_has_a_current_calibration_within_ten_percent_on_held_out_densities():
    """The committed per-action table holds every calibrated preset of every block that co-simulates, calibrated on
    today's Verilog and library (else `make energy`), with non-negative energies and a held-out error of at most
    10%."""
    table = json.loads(TABLE.read_text())
    assert set(CALIBRATED) == set(DRIVERS)
    assert set(table) == {f"{block}/{name}" for block, names in CALIBRATED.items() for name in names}
    for key, entry in table.items():
        assert entry["digest"] == digest(*key.split("/")), f"{key}'s calibration is stale: run make energy"
        assert entry["heldout_error"] <= 0.10, key
        assert entry["per_action_pj"]["clock"]["clock"] > 0, key
        rates = [v for part in entry["per_action_pj"].values() for v in part.values()]
        rates += [v for kind in entry["access_rates"].values() for port in kind.values() for v in port.values()]
        assert min(rates) >= 0, key


def test_every_memory_of_every_default_preset_is_an_sram_macro_costed_by_cacti():
    """No memory is costed as flip-flops in the system figure: every RAM leaf of every block's default preset has
    its CACTI macro and a calibrated access rate for its kind, so a run's SRAM part counts it."""
    for block, driver in DRIVERS.items():
        cfg = preset(block, "default")
        macros, model = macro_of(cfg), energy_model(cfg)
        assert set(map(lambda leaf: macro_kind(cfg, leaf), macros)) == set(model["access_rates"]), block
        assert all(m["read_pj"] > 0 and m["write_pj"] > 0 and m["area_um2"] > 0 for m in macros.values()), block
        if macros:   # a second's run at the calibration's rates reads and writes them
            counts = {a: 0 for a in next(iter(model["access_rates"].values()))["read"]}
            counts["clock"] = 100 * driver.clock_units(cfg)
            assert model_parts(cfg, model, counts)["sram"] > 0, block


def _model_pj(cfg, args, cycles):
    counts = actions(cfg, args, DRIVERS[cfg.block].golden(cfg, args)[0], cycles)
    return sum(model_parts(cfg, energy_model(cfg), counts).values())   # the block's parts: no global buffer


@pytest.mark.xdist_group("scnn_pe_gates")
def test_clock_gates_hold_idle_banks_without_an_edge_and_change_no_output(rng):
    """The clock-gated netlist against the all-flip-flop one on the same layer: both equal golden (measure_energy
    checks), a bank whose enable stays low sees no clock edge (its flip-flops' clock pins never toggle), and the
    clock part costs less."""
    from flow.harness.drivers.cartesian import PeDriver

    cfg = preset("scnn_pe", "small")
    x = np.where(rng.random((4, cfg.tile_h, cfg.tile_w)) < 0.5, rng.integers(1, 128, (4, cfg.tile_h, cfg.tile_w)), 0)
    args = PeDriver.validate(cfg, {"x": x.astype(np.int8), "bias": np.zeros(cfg.filters, np.int32),
                                   "w": rng.integers(-128, 128, (cfg.filters, 4, cfg.r, cfg.s)).astype(np.int8)})
    gated_driver, gated = gate_driver(PeDriver, cfg)
    with_gates = measure_energy(gated_driver, gated, args)
    with tempfile.TemporaryDirectory() as tmp:   # (before the flops build: one build of a harness is kept)
        vcd = Path(tmp) / "run.vcd"
        gated_driver.target.run(gated_driver.layer_jobs(args), toggles=vcd)
        toggles, cycles, _ = vcd_toggles(vcd, top=gated_driver.target.toplevel)
    flops_driver, flops = gate_driver(PeDriver, cfg, style="flops")
    assert not flops.macros and gated.macros and any(name.startswith("icg_") for name in gated.cells)
    without = measure_energy(flops_driver, flops, args)
    assert with_gates["rtl_cycles"] == without["rtl_cycles"] and with_gates["clock_pj"] < 0.8 * without["clock_pj"]
    assert without["sram_pj"] == 0 and with_gates["sram_pj"] > 0
    gclk = {gated.pins[name]["Y"][1]: toggles.get(name, {}).get("Y", 0)
            for name in gated.cells if name.startswith("icg_") and name.endswith("_gate")}
    held = {bit for bit, n in gclk.items() if n == 0}
    assert held and any(0 < n < 2 * cycles for n in gclk.values()), gclk   # banks held all run, banks held a while
    for name, pins in gated.pins.items():
        if gated.cells[name].startswith("DFF") and pins["CLK"][1] in held:
            assert toggles.get(name, {}).get("CLK", 0) == 0, name


def test_sram_ports_are_counted_at_each_clock_edge_from_their_value_before_it(tmp_path):
    """A hand-written VCD: reads and writes are the edges inside a job's window at which ren / we were 1."""
    vcd = tmp_path / "t.vcd"
    vcd.write_text("$scope module top $end\n$var wire 1 ! clk $end\n$var wire 1 \" start $end\n"
                   "$var wire 1 # done $end\n$scope module dut $end\n$scope module ram $end\n"
                   "$var wire 1 $ ren $end\n$var wire 1 % we $end\n$upscope $end\n$upscope $end\n$upscope $end\n"
                   "$enddefinitions $end\n#0\n0!\n0\"\n0#\n0$\n0%\n"
                   "#5\n1!\n1\"\n#10\n0!\n1$\n#15\n1!\n1%\n#20\n0!\n0$\n#25\n1!\n0%\n"
                   "#30\n0!\n1$\n#35\n1!\n1#\n#40\n0!\n#45\n1!\n")
    _, cycles, high = vcd_toggles(vcd, top="top", sample=[("ram", "ren"), ("ram", "we")])
    # the window opens as start rises at 5 (after that edge) and closes as done rises at 35 (after that edge)
    assert cycles == 3 and high == {("ram", "ren"): 2, ("ram", "we"): 1}
    with pytest.raises(ValueError, match="no 1-bit signal 'wen' in top.dut.ram"):
        vcd_toggles(vcd, top="top", sample=[("ram", "wen")])


@pytest.mark.xdist_group("sa_gates")   # one worker maps the sa/sa_zvcg small netlists at a time (one work folder)
def test_the_per_action_model_predicts_the_gate_level_energy_of_unseen_operands(sa_small_gates, rng):
    """Random post-ReLU activations and weights (the calibration saw real digits data only) at three densities, on
    both sa and sa_zvcg: the model, from counts alone, within 15% of the gate-level energy."""
    for block in ("sa", "sa_zvcg"):
        cfg = preset(block, "small")
        driver, netlist = sa_small_gates[2:] if block == "sa" else gate_driver(ArrayDriver, cfg)
        w = rng.integers(-64, 64, (60, cfg.cols)).astype(np.int8)
        a = rng.integers(1, 100, (5, 60))
        keep = rng.random(a.shape)
        for density in (0.9, 0.5, 0.15):
            args = ArrayDriver.validate(cfg, {"a": np.where(keep < density, a, 0).astype(np.int8), "w": w})
            e = measure_energy(driver, netlist, args)
            model = _model_pj(cfg, args, e["cycles"])
            assert abs(model - e["energy_pj"]) < 0.15 * e["energy_pj"], (block, density, model, e["energy_pj"])


def test_cacti_costs_sram_macros_that_grow_with_size_and_ports(tmp_path, monkeypatch):
    """The shipped CACTI binary run on fresh configurations (cache emptied), brought to 0.18 µm by the stated rule."""
    monkeypatch.setattr(sram, "CACTI_DIR", tmp_path)
    sram.sram_macro.cache_clear()
    small, large = sram.sram_macro(256, 16), sram.sram_macro(4096, 16)
    ported = sram.sram_macro(256, 16, read_ports=2, write_ports=2)
    assert len(list(tmp_path.glob("*.json"))) == 3                      # one CACTI run per configuration, cached
    assert 0 < small["read_pj"] < large["read_pj"] and 0 < small["write_pj"] < large["write_pj"]
    assert small["area_um2"] < large["area_um2"] and small["leakage_uw"] < large["leakage_uw"]
    assert small["read_pj"] < ported["read_pj"] and small["area_um2"] < ported["area_um2"]
    assert sram.TARGET_VDD == osu018().voltage and sram.ENERGY_SCALE == pytest.approx(2 * (1.8 / 1.3) ** 2)
    tiny = sram.sram_macro(3, 19)                                        # held by the smallest macro CACTI organises
    assert tiny["macro_bits"] == 24 and tiny["macro_words"] * 3 >= 64 and tiny["read_pj"] > 0
    sram.sram_macro.cache_clear()
    assert sram.sram_macro(256, 16) == small                             # read back from the cache, same figures
    for bad, message in (({"words": 0, "bits": 8}, "words must be an integer between 1 and"),
                         ({"words": 8, "bits": 8, "read_ports": 5}, "read_ports must be an integer between 0 and 4"),
                         ({"words": 8, "bits": 8, "read_ports": 0, "write_ports": 0}, "needs at least one port")):
        with pytest.raises(ValueError, match=message):
            sram.sram_macro(**bad)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_a_compressed_stream_moves_fewer_buffer_bits_and_the_rtl_counts_what_the_plan_says(sim, rng):
    """S2TA-AW on one GEMM of W-DBB weights: streamed compressed (values and masks, one pass) they move fewer bits
    from the global buffer than in the dense-weight fallback (two passes of dense blocks); the RTL's counters equal
    the job plan (a check row whose traffic differs is a mismatch), and the buffer's energy grows with the bits."""
    cfg = preset("s2ta_aw", "small")
    w = wdbb_prune(rng.integers(-128, 128, (8 * cfg.bz, cfg.cols)).astype(np.int8), cfg.b, cfg.bz, axis=0)
    a = rng.integers(-128, 128, (5, 8 * cfg.bz)).astype(np.int8)
    layers = {f"dense_w={dense_w}": [ArrayDriver.validate(cfg, {"a": a, "w": w, "nnz_a": np.int64(cfg.nnz_max),
                                                                "dense_w": np.bool_(dense_w)})]
              for dense_w in (False, True)}
    rows = check_layers(ArrayDriver, cfg, sim, layers, log=lambda *_: None)
    assert rows_bit_exact(rows) and all(r["traffic_rtl"] == r["traffic"] for r in rows)
    compressed, fallback = (r["traffic"] for r in rows)
    assert compressed["buffer_read_bits"] < fallback["buffer_read_bits"]
    assert compressed["buffer_write_bits"] == fallback["buffer_write_bits"] > 0   # the same results either way
    pj = [buffer_pj(cfg.macs, r["traffic"], r["golden_cycles"]) for r in rows]
    assert 0 < pj[0] < pj[1]
    assert not rows_bit_exact([{**rows[0], "traffic_rtl": {**compressed, "buffer_read_bits": 0}}])


def test_the_global_buffer_grows_with_the_macs_and_dram_weights_stay_when_they_fit():
    """Equal MACs, equal buffers: a larger design's buffer costs more per bit and leaks more; a layer's weights
    are read from DRAM once per batch when its working set fits the buffer, once per image when not."""
    small, large = buffer_macro(16), buffer_macro(64)
    assert buffer_macro(0) is None and buffer_pj(0, {"buffer_read_bits": 64, "buffer_write_bits": 0}, 10) == 0
    assert 4 * small["macro_words"] == large["macro_words"] and small["read_pj"] < large["read_pj"]
    assert small["leakage_uw"] < large["leakage_uw"]
    traffic = {"buffer_read_bits": 64 * 100, "buffer_write_bits": 64 * 10}
    assert buffer_pj(16, traffic, 1000) == pytest.approx(100 * small["read_pj"] + 10 * small["write_pj"]
                                                         + small["leakage_uw"] * 1e-6 * 1000 * 10e-9 * 1e12)
    fc = QLayer(name="fc", kind="fc", w=np.zeros((100, 400), np.int8), bias=np.zeros(100, np.int32))
    weights = 8 * 40_000 + 32 * 100
    fits, spills = (layer_dram_bits(fc, (400,), 3, macs) for macs in (64, 16))   # 64 KiB holds 40 kB, 16 KiB not
    assert fits == {"read": weights + 3 * 8 * 400, "write": 3 * 8 * 100}
    assert spills == {"read": 3 * weights + 3 * 8 * 400, "write": 3 * 8 * 100}
    conv = QLayer(name="conv", kind="conv", w=np.zeros((6, 1, 5, 5), np.int8), pad=2, stride=1, relu=False)
    assert layer_dram_bits(conv, (1, 28, 28), 1, 16)["write"] == 32 * 6 * 28 * 28   # the classifier's int32 sums
