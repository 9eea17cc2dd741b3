"""Real Yosys and nextpnr-ecp5 on the default DAP preset (what `make synth` runs)."""

from flow.synth import synthesize
from generators.config import CATALOG


def test_synthesis_reports_cells_luts_and_fmax():
    cfg = CATALOG["dap"]["default"]
    result = synthesize(cfg, force=True)
    assert result["module"] == cfg.module and result["generic_cells"] > 0
    assert result["ecp5_ff"] > 0 and result["ecp5_lut4"] > 0
    assert result["fmax_mhz"] is not None and result["fmax_mhz"] > 10
