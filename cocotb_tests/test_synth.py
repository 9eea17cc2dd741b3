"""Real Yosys and nextpnr-ecp5 on the default DAP preset (what `make synth` runs)."""

from flow.synth import synthesize
from generators.config import CATALOG


def test_synthesis_reports_cells_luts_and_fmax():
    cfg = CATALOG["dap"]["default"]
    result = synthesize(cfg, force=True)
    assert result["module"] == cfg.module and result["generic_cells"] > 0
    assert result["ecp5_ff"] > 0 and result["ecp5_lut4"] > 0
    assert result["fmax_mhz"] is not None and result["fmax_mhz"] > 10


def test_zvcg_tpe_has_the_gating_logic_the_plain_one_lacks():
    """sa_zvcg computes what sa does (the RTL tests), so its gating is only visible in the netlist."""
    plain, gated = (CATALOG[v]["default"] for v in ("sa", "sa_zvcg"))
    cells = {cfg.variant: synthesize(cfg, ecp5=False, pnr=False, top=f"{cfg.module}_tpe") for cfg in (plain, gated)}
    assert cells["sa_zvcg"]["generic_cells"] > cells["sa"]["generic_cells"]
