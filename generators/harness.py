"""Bulk-stimulus test harness around an emitted streaming block (used by co-simulation).

The harness is test-bench infrastructure, not a block: it is written as Verilog text because Amaranth converts
a memory's (all-zero) initial contents bit by bit — a 16,384-word harness memory took ~20 s to emit, most of
a clean clone's co-simulation time — while this text is instant and holds no initialiser at all.
"""

__all__ = ["stream_harness", "STIM_FILE", "RESP_FILE"]

STIM_FILE, RESP_FILE = "zs_stim.hex", "zs_resp.hex"

_TEMPLATE = """\
// The co-simulation harness of {module} (generators/harness.py): stim -> {in_port}, {out_port} -> resp.
module {toplevel}(clk, rst, start, dut_rst, n_items, n_expect, in_pattern, out_pattern, load, dump,
                  done, n_in, n_out, cycle, first_in, last_out);
  input clk, rst, start, dut_rst, load, dump;
  input [31:0] n_items, n_expect, in_pattern, out_pattern;
  output done;
  output reg [31:0] n_in = 32'd0, n_out = 32'd0, cycle = 32'd0, first_in = 32'd0, last_out = 32'd0;

  reg [{in_msb}:0] stim [0:{in_last}];
  reg [{out_msb}:0] resp [0:{out_last}];
  reg running = 1'b0;
  reg [31:0] in_rot = 32'd0, out_rot = 32'd0;
  wire [{in_msb}:0] in_payload = stim[n_in[{in_abits}:0]];
  wire [{out_msb}:0] out_payload;
  wire in_ready, out_valid;
  wire in_valid = running & (n_in < n_items) & in_rot[0] & ~dut_rst;
  wire out_ready = running & out_rot[0] & ~dut_rst;
  wire in_fire = in_valid & in_ready;
  wire out_fire = out_valid & out_ready;
  assign done = running & (n_in == n_items) & (n_out == n_expect);

  // Bulk transfer through files in the simulator's working folder: one system task a job, not a VPI write a word.
  always @(posedge load) $readmemh("{stim_file}", stim, 0, n_items - 32'd1);
  always @(posedge dump) if (n_out != 32'd0) $writememh("{resp_file}", resp, 0, n_out - 32'd1);

  always @(posedge clk) begin
    if (out_fire)
      resp[n_out[{out_abits}:0]] <= out_payload;
    if (rst) begin
      running <= 1'b0;
      in_rot <= 32'd0;
      out_rot <= 32'd0;
      cycle <= 32'd0;
      n_in <= 32'd0;
      n_out <= 32'd0;
      first_in <= 32'd0;
      last_out <= 32'd0;
    end else if (!running) begin
      running <= start;
      in_rot <= in_pattern;
      out_rot <= out_pattern;
    end else begin
      cycle <= cycle + 32'd1;
      in_rot <= {{in_rot[0], in_rot[31:1]}};
      out_rot <= {{out_rot[0], out_rot[31:1]}};
      if (in_fire) begin
        n_in <= n_in + 32'd1;
        if (n_in == 32'd0)
          first_in <= cycle;
      end
      if (out_fire) begin
        n_out <= n_out + 32'd1;
        last_out <= cycle;
      end
    end
  end

  {module} dut (
    .clk(clk),
    .rst(rst | dut_rst),
    .{in_port}__valid(in_valid),
    .{in_port}__ready(in_ready),
    .{in_port}__payload(in_payload),
    .{out_port}__valid(out_valid),
    .{out_port}__ready(out_ready),
    .{out_port}__payload(out_payload)
  );
endmodule
"""


def _address_msb(depth):
    return max(1, (depth - 1).bit_length()) - 1


def stream_harness(toplevel, *, module, in_port, out_port, in_width, out_width, depth, out_depth=None):
    """Verilog of module ``toplevel``: feeds a memory of input words to ``module``'s input stream and logs its
    output stream.

    The testbench writes ``stim`` words and ``n_items``/``n_expect``, then raises ``start``; the harness runs
    without Python until ``done`` (``n_items`` sent and ``n_expect`` received, fewer when a reset dropped blocks in
    flight). Input bubbles and output back-pressure follow two 32-bit patterns that rotate right by one bit every
    running cycle (bit 0 gates ``valid`` / drives ``ready``). ``cycle`` counts cycles since ``start``; ``first_in``
    and ``last_out`` record the cycles of the first input transfer and the last output transfer. ``dut_rst``
    resets the block alone, e.g. in mid-stream; no transfer happens while it is high. ``stim`` holds ``depth``
    words of ``in_width`` bits, ``resp`` ``out_depth`` (default ``depth``) of ``out_width``; neither has initial
    contents (the testbench writes every word it lets the harness read). A rising ``load`` reads words
    0..n_items-1 of ``stim`` from STIM_FILE and a rising ``dump`` writes the ``n_out`` words of ``resp`` to
    RESP_FILE (hex, one word a line, in the simulator's working folder): a job's words cross in one system task
    each way. Stream members are the emitted ``<port>__valid/ready/payload``.
    """
    out_depth = out_depth or depth
    for name, value in (("in_width", in_width), ("out_width", out_width), ("depth", depth),
                        ("out_depth", out_depth)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return _TEMPLATE.format(toplevel=toplevel, module=module, in_port=in_port, out_port=out_port,
                            in_msb=in_width - 1, out_msb=out_width - 1, in_last=depth - 1, out_last=out_depth - 1,
                            in_abits=_address_msb(depth), out_abits=_address_msb(out_depth), stim_file=STIM_FILE,
                            resp_file=RESP_FILE)
