"""The CSCNN accelerator's PE array (docs/cscnn_array.md): Cartesian PEs behind one masked op stream and one output."""

from amaranth.hdl import Cat, ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .cartesian_pe import CartesianPE
from .cartesian_ports import array_op_layout, array_result_layout, result_layout
from .config import PE_ARRAY_BLOCKS

__all__ = ["CartesianArray"]


class CartesianArray(wiring.Component):
    """``groups × pes_per_group`` CartesianPEs (docs/cscnn_array.md, golden.cartesian_array).

    Input ``op`` (stream of ``array_op_layout``): a PE op and a mask; the word is handed to every masked PE at
    once, in the cycle all of them have room in their input buffers (``op_buffer`` entries each; weights
    broadcast to a group, activations to the PEs of a planar tile, biases and ``end`` as the tiling needs: the
    tiling is the stream's data). Output ``y`` (stream of ``array_result_layout``): the PEs drain in lock
    step, one word holding row k of every PE, sent when every PE has its row k ready (each PE is ended once
    per run).

    Throughput: each PE as CartesianPE; the op stream moves one word per cycle while the masked PEs have
    room. Latency: none added (the PEs' own), the output word a combinational join of the PEs' registered rows.

    Parameters
    ----------
    cfg : PeArrayConfig
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "op": In(stream.Signature(array_op_layout(cfg))),
            "y": Out(stream.Signature(array_result_layout(cfg))),
        })

    def leaves(self):
        """(module name, component) of each black box, emitted once: the PE and its accumulator banks."""
        pe = CartesianPE(self.cfg.pe)
        return [*pe.leaves(), (self.cfg.pe.module, pe)]

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        mask = self.op.payload.mask
        op_ready = [Signal(name=f"op_ready_{k}") for k in range(cfg.n_pe)]
        row_valid = [Signal(name=f"row_valid_{k}") for k in range(cfg.n_pe)]
        rows = [Signal(result_layout(cfg.pe).size, name=f"row_{k}") for k in range(cfg.n_pe)]
        room = Signal()   # every masked PE has room for the word
        ready = Signal()  # every PE shows its next row
        m.d.comb += [room.eq(Cat(*(~mask[k] | op_ready[k] for k in range(cfg.n_pe))).all()),
                     ready.eq(Cat(*row_valid).all()), self.op.ready.eq(room), self.y.valid.eq(ready)]
        for k in range(cfg.n_pe):
            m.submodules[f"pe{k}"] = Instance(
                cfg.pe.module, i_clk=ClockSignal(), i_rst=ResetSignal(),
                i_op__valid=self.op.valid & mask[k] & room, i_op__payload=self.op.payload.op.as_value(),
                o_op__ready=op_ready[k], o_y__valid=row_valid[k], o_y__payload=rows[k],
                i_y__ready=self.y.ready & ready)
            m.d.comb += self.y.payload[f"pe{k}"].eq(rows[k])
        return m


# the blocks (CATALOG keys) this module's component builds
COMPONENTS = {block: CartesianArray for block in PE_ARRAY_BLOCKS}
