"""Real Yosys and nextpnr-ecp5 on the default DAP preset (what `make synth` runs)."""

import pytest

from flow.harness.runner import REPO
from flow.synth.yosys import synthesize
from generators.config import CATALOG

# One worker's, scheduled early (conftest.GROUP_ORDER)
pytestmark = pytest.mark.xdist_group("yosys")


def test_synthesis_reports_cells_luts_and_fmax():
    cfg = CATALOG["dap"]["default"]
    result = synthesize(cfg, force=True)
    assert result["module"] == cfg.module and result["generic_cells"] > 0
    assert result["ecp5_ff"] > 0 and result["ecp5_lut4"] > 0
    assert result["fmax_mhz"] is not None and result["fmax_mhz"] > 10
    assert result["device"] == "LFE5U-25F" and result["pnr_skipped"] is None   # the smallest part it fits
    path = result["critical_path"]       # where to pipeline: registers of the design, the path that sets Fmax
    verilog = (REPO / "hdl" / f"{cfg.module}.v").read_text()
    assert path["from"] in verilog + "inputs" and path["to"] in verilog + "outputs" and path["hops"] > 2
    assert (path["from"], path["to"]) != ("inputs", "outputs")  # a register of the design at one end at least
    assert 1000 / path["delay_ns"] == pytest.approx(result["fmax_mhz"], rel=0.05)


def test_zvcg_tpe_has_the_gating_logic_the_plain_one_lacks():
    """sa_zvcg computes what sa does (the RTL tests), so its gating is only visible in the netlist."""
    plain, gated = (CATALOG[v]["default"] for v in ("sa", "sa_zvcg"))
    cells = {cfg.variant: synthesize(cfg, ecp5=False, pnr=False, top=f"{cfg.module}_tpe") for cfg in (plain, gated)}
    assert cells["sa_zvcg"]["generic_cells"] > cells["sa"]["generic_cells"]


def test_pe_area_splits_into_logic_and_accumulator_banks():
    """The benchmark's logic figure is the design minus its bank instances; CSCNN has twice the banks."""
    cells = {}
    for block in ("scnn_pe", "cscnn_pe"):
        cfg = CATALOG[block]["small"]
        result = synthesize(cfg, ecp5=False, pnr=False)
        per_module = result["cells_per_module"]
        bank = per_module[f"{cfg.module}_bank"]
        assert bank > 0
        logic = sum(n for name, n in per_module.items() if name != f"{cfg.module}_bank")  # the PE and its op buffer
        assert result["generic_cells"] == logic + cfg.banks * cfg.buffers * bank
        cells[block] = logic
    assert cells["cscnn_pe"] > cells["scnn_pe"], "the dual crossbar, CCU and PPU adder are extra logic"


def test_mor_area_keeps_rams_as_black_boxes_and_counts_the_bincus():
    """Each RAM replica is one black-box cell; logic is the rest; the binCU leaf is counted per instance."""
    from flow.techniques.mor import engine_area
    from generators.mor_engine import ram_specs

    cfg = CATALOG["mor"]["small"]
    area = engine_area(cfg)
    per_module = area["cells_per_module"]
    rams = sum(n for _, _, n in ram_specs(cfg).values())
    assert area["logic_cells"] == sum(per_module.values()) + (cfg.n_bincu - 1) * per_module["mor_small_bincu"] - rams
    assert area["bincu_cells"] == cfg.n_bincu * per_module["mor_small_bincu"] > 0
    assert 0 < area["bincu_logic_fraction"] < 0.5 and 0 < area["binary_ram_fraction"] < 0.5
    assert area["ram_bits"]["bin_weights"] == cfg.n_bincu * cfg.max_out * cfg.bin_chunks * cfg.bits_per_cycle


def test_ecp5_counts_map_ram_leaves_to_memory_blocks_not_flip_flops():
    """The ECP5 LUT/FF figures come from the design as read: its RAM leaves become block/distributed RAM, so the
    flip-flops are far fewer than the bits those memories hold (generic synthesis builds them from flip-flops)."""
    cfg = CATALOG["snapea"]["small"]
    result = synthesize(cfg, pnr=False)
    x_bits = cfg.n_pe * cfg.window * cfg.max_x * 8  # the copies of x alone: one per PE and slot, 8-bit values
    assert result["generic_by_type"].get("$_DFFE_PP_", 0) > x_bits // 2
    assert 0 < result["ecp5_ff"] < x_bits // 4
