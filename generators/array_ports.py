"""Payload layouts of the systolic arrays (docs/arrays.md): input steps, operand buses, result words."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["step_layout", "feed_layout", "act_operand_layout", "wgt_operand_layout", "result_layout"]


def _int8s(*shape):
    layout = signed(8)
    for n in reversed(shape):
        layout = data.ArrayLayout(layout, n)
    return layout


def step_layout(cfg):
    """One input step of the array (what the ``step`` stream carries per transfer).

    ``sa``/``sa_zvcg``: one reduction element, ``act[rows][a]`` and ``wgt[cols][c]``.
    ``s2ta_w``: one K-block, dense ``act[rows][a][bz]`` and W-DBB ``wgt_values[cols][c][b]`` with
    ``wgt_mask[cols][c]`` (docs/conventions.md format). ``s2ta_aw``: as ``s2ta_w`` plus the run-time ``nnz``
    (1..nnz_max, or bz for dense activations). ``last`` marks a fold's final step.
    """
    if cfg.scalar:
        fields = {"act": _int8s(cfg.rows, cfg.a), "wgt": _int8s(cfg.cols, cfg.c)}
    else:
        fields = {
            "act": _int8s(cfg.rows, cfg.a, cfg.bz),
            "wgt_values": _int8s(cfg.cols, cfg.c, cfg.b),
            "wgt_mask": data.ArrayLayout(data.ArrayLayout(unsigned(cfg.bz), cfg.c), cfg.cols),
        }
        if cfg.variant == "s2ta_aw":
            fields["nnz"] = unsigned(cfg.nnz_width)
    fields["last"] = unsigned(1)
    return data.StructLayout(fields)


def act_operand_layout(cfg):
    """What one TPE row's activation bus carries per PE step: dense values, or (value, position) pairs."""
    if cfg.scalar:
        return _int8s(cfg.a)
    if cfg.variant == "s2ta_w":
        return _int8s(cfg.a, cfg.bz)
    return data.ArrayLayout(data.StructLayout({"value": signed(8), "pos": unsigned(cfg.pos_width)}), cfg.a)


def wgt_operand_layout(cfg):
    """What one TPE column's weight bus carries per PE step: values, or b (value, position) slots."""
    if cfg.scalar:
        return _int8s(cfg.c)
    slots = data.StructLayout({
        "values": _int8s(cfg.b),
        "pos": data.ArrayLayout(unsigned(cfg.pos_width), cfg.b),
    })
    return data.ArrayLayout(slots, cfg.c)


def result_layout(cfg):
    """One drained TPE row: ``y[a][cols * c]`` accumulators (pixel, then output channel)."""
    return data.ArrayLayout(data.ArrayLayout(signed(cfg.acc_width), cfg.cols * cfg.c), cfg.a)


def feed_layout(cfg):
    """One PE step entering the array's edges: per TPE row an activation bus, weights as in ``step_layout``.

    For ``sa``, ``sa_zvcg`` and ``s2ta_w`` this is bit-for-bit ``step_layout``; ``s2ta_aw``'s
    time-unroller turns each K-block step into nnz_a of these.
    """
    fields = {"act": data.ArrayLayout(act_operand_layout(cfg), cfg.rows)}
    fields.update({name: field.shape for name, field in step_layout(cfg) if name not in ("act", "nnz", "last")})
    fields["last"] = unsigned(1)
    return data.StructLayout(fields)
