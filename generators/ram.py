"""A simple dual-port RAM leaf (an SRAM macro in a real flow), emitted once per distinct use."""

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Ram", "address_bits", "ram_instance"]


def address_bits(depth):
    """Address width of a Ram of ``depth`` words (at least 2 words are built)."""
    return (max(2, depth) - 1).bit_length()


def ram_instance(m, module, shape, depth, name, *, ren=1):
    """An instance ``name`` of the ``Ram`` leaf emitted as ``module`` (``shape``, ``depth``), reading when ``ren``;
    returns its other ports' signals {raddr, rdata, waddr, wdata, we}."""
    width = address_bits(depth)
    ports = {
        "raddr": Signal(width, name=f"{name}_raddr"),
        "rdata": Signal(shape, name=f"{name}_rdata"),
        "waddr": Signal(width, name=f"{name}_waddr"),
        "wdata": Signal(shape, name=f"{name}_wdata"),
        "we": Signal(name=f"{name}_we"),
    }
    m.submodules[name] = Instance(
        module, i_clk=ClockSignal(), i_rst=ResetSignal(), i_ren=ren, i_raddr=ports["raddr"], o_rdata=ports["rdata"],
        i_waddr=ports["waddr"], i_wdata=ports["wdata"], i_we=ports["we"])
    return ports


class Ram(wiring.Component):
    """``depth`` words of ``shape``: one write port and one synchronous read port that sees a write
    to the same word in the same cycle.

    Latency: ``rdata`` holds word ``raddr`` one cycle after a cycle with ``ren``.
    """

    def __init__(self, shape, depth):
        self.shape, self.depth = shape, max(2, depth)
        width = address_bits(depth)
        super().__init__({
            "raddr": In(width), "ren": In(1), "rdata": Out(shape),
            "waddr": In(width), "wdata": In(shape), "we": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=self.shape, depth=self.depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port(transparent_for=(wr,))
        m.d.comb += [
            rd.addr.eq(self.raddr), rd.en.eq(self.ren), self.rdata.eq(rd.data),
            wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.we),
        ]
        return m
