"""A pin-light shell for place-and-route of wide designs: serial-in inputs, XOR-reduced registered outputs."""

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SynthShell"]


class SynthShell(wiring.Component):
    """Wraps ``module`` so its ports need 2 pins: every input bit comes from one shift register
    loaded through ``sin``; every output bit is registered and folded by a tree of 4-input XORs
    with a register per level into ``sout``. Nothing is optimised away, and every timing path
    starts and ends at a register, so nextpnr's Fmax is the wrapped design's.

    Parameters
    ----------
    module : str
        Name of the wrapped module (its ``clk``/``rst`` are driven by the shell's domain).
    ports : dict
        Port name -> (``"in"`` or ``"out"``, width), as in the emit sidecar.
    """

    def __init__(self, module, ports):
        self.module = module
        self.ports = {name: tuple(spec) for name, spec in ports.items() if name not in ("clk", "rst")}
        super().__init__({"sin": In(1), "sout": Out(1)})

    def elaborate(self, platform):
        m = Module()
        inputs = {n: w for n, (d, w) in self.ports.items() if d == "in"}
        outputs = {n: w for n, (d, w) in self.ports.items() if d == "out"}
        chain = Signal(max(1, sum(inputs.values())))
        m.d.sync += chain.eq(chain.shift_left(1) | self.sin)
        connections, offset = {}, 0
        for name, width in inputs.items():
            connections[f"i_{name}"] = chain[offset:offset + width]
            offset += width
        bits = []
        for name, width in outputs.items():
            wire = Signal(width, name=f"out_{name}")
            reg = Signal(width, name=f"reg_{name}")
            connections[f"o_{name}"] = wire
            m.d.sync += reg.eq(wire)
            bits += [reg[i] for i in range(width)]
        m.submodules.dut = Instance(self.module, i_clk=ClockSignal(), i_rst=ResetSignal(), **connections)
        level = 0
        while len(bits) > 1:
            folded = []
            for i in range(0, len(bits), 4):
                reg = Signal(name=f"xor_{level}_{i // 4}")
                group = bits[i:i + 4]
                value = group[0]
                for bit in group[1:]:
                    value = value ^ bit
                m.d.sync += reg.eq(value)
                folded.append(reg)
            bits = folded
            level += 1
        m.d.comb += self.sout.eq(bits[0] if bits else 0)
        return m
