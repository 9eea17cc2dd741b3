"""Bulk-stimulus test harness around an emitted streaming block (used by co-simulation)."""

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamHarness"]


class StreamHarness(wiring.Component):
    """Feeds a memory of input words to a block's input stream and logs its output stream.

    The testbench writes ``stim`` memory words and ``n_items``, then raises ``start``;
    the harness runs without Python until ``done``. Input bubbles and output
    back-pressure follow two 32-bit patterns that rotate by one bit every cycle
    (``in_pattern[0]`` gates ``valid``, ``out_pattern[0]`` drives ``ready``).
    ``cycle`` counts cycles since ``start``; ``first_in`` and ``last_out`` record
    the cycles of the first input transfer and the last output transfer.
    ``dut_rst`` resets the block alone, e.g. in mid-stream; no transfer happens while it is
    high. ``done`` rises once ``n_items`` were sent and ``n_expect`` received (fewer than
    ``n_items`` when a reset dropped blocks in flight).

    Parameters
    ----------
    module : str
        Name of the emitted Verilog module to instantiate.
    in_port, out_port : str
        Stream names in that module (``<name>__valid/ready/payload``).
    in_width, out_width : int
        Payload widths.
    depth : int
        Words in the stimulus memory.
    out_depth : int
        Words in the response memory (``depth`` when None).
    """

    def __init__(self, *, module, in_port, out_port, in_width, out_width, depth, out_depth=None):
        self.module = module
        self.in_port = in_port
        self.out_port = out_port
        self.in_width = in_width
        self.out_width = out_width
        self.depth = depth
        self.out_depth = out_depth or depth
        super().__init__({
            "start": In(1),
            "dut_rst": In(1),
            "n_items": In(32),
            "n_expect": In(32),
            "in_pattern": In(32),
            "out_pattern": In(32),
            "done": Out(1),
            "n_in": Out(32),
            "n_out": Out(32),
            "cycle": Out(32),
            "first_in": Out(32),
            "last_out": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.stim = stim = memory.Memory(shape=self.in_width, depth=self.depth, init=[])
        m.submodules.resp = resp = memory.Memory(shape=self.out_width, depth=self.out_depth, init=[])
        rd = stim.read_port(domain="comb")
        wr = resp.write_port()

        in_valid = Signal()
        in_ready = Signal()
        in_payload = Signal(self.in_width)
        out_valid = Signal()
        out_ready = Signal()
        out_payload = Signal(self.out_width)
        m.submodules.dut = Instance(
            self.module,
            i_clk=ClockSignal(),
            i_rst=ResetSignal() | self.dut_rst,
            **{
                f"i_{self.in_port}__valid": in_valid,
                f"o_{self.in_port}__ready": in_ready,
                f"i_{self.in_port}__payload": in_payload,
                f"o_{self.out_port}__valid": out_valid,
                f"i_{self.out_port}__ready": out_ready,
                f"o_{self.out_port}__payload": out_payload,
            },
        )

        in_pattern = Signal(32)
        out_pattern = Signal(32)
        running = Signal()
        feeding = Signal()
        in_fire = Signal()
        out_fire = Signal()
        m.d.comb += [
            feeding.eq(running & (self.n_in < self.n_items)),
            in_valid.eq(feeding & in_pattern[0] & ~self.dut_rst),
            rd.addr.eq(self.n_in),
            in_payload.eq(rd.data),
            out_ready.eq(running & out_pattern[0] & ~self.dut_rst),
            in_fire.eq(in_valid & in_ready),
            out_fire.eq(out_valid & out_ready),
            wr.addr.eq(self.n_out),
            wr.data.eq(out_payload),
            wr.en.eq(out_fire),
            self.done.eq(running & (self.n_in == self.n_items) & (self.n_out == self.n_expect)),
        ]
        with m.If(~running):
            m.d.sync += [
                running.eq(self.start),
                in_pattern.eq(self.in_pattern),
                out_pattern.eq(self.out_pattern),
            ]
        with m.Else():
            m.d.sync += [
                self.cycle.eq(self.cycle + 1),
                in_pattern.eq(in_pattern.rotate_right(1)),
                out_pattern.eq(out_pattern.rotate_right(1)),
            ]
            with m.If(in_fire):
                m.d.sync += self.n_in.eq(self.n_in + 1)
                with m.If(self.n_in == 0):
                    m.d.sync += self.first_in.eq(self.cycle)
            with m.If(out_fire):
                m.d.sync += [
                    self.n_out.eq(self.n_out + 1),
                    self.last_out.eq(self.cycle),
                ]
        return m
