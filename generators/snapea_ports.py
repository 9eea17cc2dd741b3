"""Stream payloads of the SnaPEA PE array (generators.snapea_pe)."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["KINDS", "X_PER_WORD", "entry_layout", "op_layout", "result_layout"]

KINDS = {"header": 0, "x": 1, "filter": 2, "entry": 3, "go": 4}
X_PER_WORD = 8


def entry_layout(cfg):
    """One sorted weight: value, its activation's offset c·H·W + r·W + s from the pixel's window origin,
    and r, s (for the padding test)."""
    return data.StructLayout({"w": signed(8), "offset": unsigned(17), "r": unsigned(3), "s": unsigned(3)})


def op_layout(cfg):
    """One loaded word; ``kind`` selects the fields that count.

    - header: input ``h``, ``w``; output ``ho``, ``wo``; ``stride``; ``pad``; ``row_step`` = stride·w;
      ``row_origin`` = -pad·w (memory offset of the first output row's window row); ``n_filters`` (≤ n_pe);
      ``n_pixels`` = ho·wo.
    - x: ``x`` = the next 8 activations of x [C, H, W] in memory order (zero-padded at the end); a job
      without x words computes on the previous job's x.
    - filter (one per PE in order): ``n_entries``, ``n_first`` (its positive weights) and ``bias``.
    - entry (``n_entries`` after their filter, docs/snapea.md's order): ``entry``.
    - go: start computing.
    """
    return data.StructLayout({
        "kind": unsigned(3),
        "h": unsigned(8), "w": unsigned(8), "ho": unsigned(8), "wo": unsigned(8),
        "stride": unsigned(3), "pad": unsigned(3), "row_step": unsigned(16), "row_origin": signed(17),
        "n_filters": unsigned(cfg.n_pe.bit_length()), "n_pixels": unsigned(cfg.max_pixels.bit_length()),
        "x": data.ArrayLayout(signed(8), X_PER_WORD),
        "n_entries": unsigned(cfg.max_entries.bit_length()), "n_first": unsigned(cfg.max_entries.bit_length()),
        "bias": signed(32),
        "entry": entry_layout(cfg),
    })


def result_layout(cfg):
    """One output pixel (raster order) of every PE: per PE its filter's post-ReLU ``y``, the products it took and
    the PE's cycles from its previous pixel's result (the go cycle for the first) to this one's (zero for the PEs
    beyond the job's ``n_filters``)."""
    return data.StructLayout({"y": data.ArrayLayout(signed(32), cfg.n_pe),
                              "mults": data.ArrayLayout(unsigned(cfg.max_entries.bit_length()), cfg.n_pe),
                              "cycles": data.ArrayLayout(unsigned(cfg.max_pixel_cycles.bit_length()), cfg.n_pe)})
