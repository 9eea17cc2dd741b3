"""Simulation throughput: cocotb + Verilator against a plain Verilator binary of the same harness and stimulus.

Both load the same job (a real conv layer on the default s2ta_aw) into the harness memories, run
it to ``done`` and read the results back; the plain binary uses $readmemh/$writememh and a
clock in SystemVerilog. Results of both are checked against golden. Rate = RTL cycles / seconds.
"""

import json
import subprocess
import time

import numpy as np

from generators.config import default_preset

from ..harness import runner, toolchain
from ..harness.activations import conv_inputs
from ..harness.cosim import first_mismatch
from ..harness.drivers.array import ArrayDriver
from ..harness.words import from_hex, to_hex

__all__ = ["throughput_ratio"]

TESTBENCH = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1, start = 0;
  wire done;
  wire [31:0] n_in, n_out, cycle, first_in, last_out;
  {top} dut(.clk(clk), .rst(rst), .dut_rst(1'b0), .start(start), .n_items(32'd{n_items}),
    .n_expect(32'd{n_expect}), .in_pattern(32'hffffffff), .out_pattern(32'hffffffff), .done(done),
    .n_in(n_in), .n_out(n_out), .cycle(cycle), .first_in(first_in), .last_out(last_out));
  always #5 clk = ~clk;
  initial begin
    $readmemh("stim.hex", dut.stim, 0, {last_word});
    repeat (2) @(posedge clk);
    rst = 0;
    @(posedge clk);
    start = 1;
    wait (done);
    @(negedge clk);
    $writememh("resp.hex", dut.resp, 0, {last_out_word});
    $display("CYCLES %0d", last_out - first_in + 1);
    $finish;
  end
endmodule
"""


def throughput_ratio(qnet, images, nnz_a, *, layer_index=2, log=print):
    """cycles/s of cocotb+Verilator and of a plain Verilator binary on one real layer; both bit-exact."""
    cfg = default_preset("s2ta_aw")
    layer = qnet.convs[layer_index]
    x = conv_inputs(qnet, images[:1], nnz_a=nnz_a, bz=cfg.bz)[layer.name][0]
    args = ArrayDriver.validate(cfg, {"x": x, "w": layer.w, "pad": np.int64(layer.pad),
                                      "stride": np.int64(layer.stride), "nnz_a": np.int64(nnz_a[layer.name]),
                                      "dense_w": np.bool_(False)})
    golden, golden_cycles = ArrayDriver.golden(cfg, args)
    plan = ArrayDriver.jobs(cfg, args)
    if len(plan) != 1:
        raise ValueError(f"{layer.name} needs {len(plan)} harness jobs; pick a layer that fits one")
    driver = ArrayDriver(cfg, "verilator")
    rtl, cycles = driver.run(args)
    assert first_mismatch(rtl, golden) is None and cycles == golden_cycles
    cocotb_rate = cycles / driver.target.sim_seconds

    job = driver.job(args, plan[0][0])
    work = runner.SIM_BUILD / f"plain-{cfg.module}"
    work.mkdir(parents=True, exist_ok=True)
    top = driver.target.toplevel
    (work / "tb.sv").write_text(TESTBENCH.format(top=top, n_items=len(job.words), n_expect=sum(job.yields),
                                                 last_word=len(job.words) - 1, last_out_word=sum(job.yields) - 1))
    (work / "stim.hex").write_text("\n".join(to_hex(job.words)) + "\n")
    toolchain.prepare("verilator")
    hdl = runner.SIM_BUILD / "hdl"
    start = time.perf_counter()
    subprocess.run(["verilator", "--binary", "--timing", "-Wno-fatal", "-Wno-WIDTH", "-O2", "-CFLAGS", "-std=c++20",
                    "--top-module", "tb", "-Mdir", "obj", str(hdl / f"{cfg.module}.v"), str(hdl / f"{top}.v"),
                    "tb.sv"], cwd=work, check=True, capture_output=True)
    build_seconds = time.perf_counter() - start
    start = time.perf_counter()
    done = subprocess.run(["obj/Vtb"], cwd=work, check=True, capture_output=True, text=True)
    plain_seconds = time.perf_counter() - start
    plain_cycles = int(done.stdout.split("CYCLES")[1].split()[0])
    words = from_hex([line for line in (work / "resp.hex").read_text().split() if not line.startswith("//")])
    y = driver.decode(words, plan[0][0], args["a"].shape[0], args["w"].shape[1])
    plain_match = first_mismatch({"y": ArrayDriver._shape(cfg, y, args["out_shape"])}, golden) is None
    result = {
        "design": cfg.module, "layer": layer.name, "nnz_a": nnz_a[layer.name], "rtl_cycles": cycles,
        "cocotb_seconds": round(driver.target.sim_seconds, 3), "cocotb_cycles_per_second": round(cocotb_rate),
        "plain_build_seconds": round(build_seconds, 1), "plain_seconds": round(plain_seconds, 3),
        "plain_cycles_per_second": round(plain_cycles / plain_seconds), "plain_bit_exact": plain_match,
        "plain_cycles": plain_cycles, "ratio": round(cocotb_rate / (plain_cycles / plain_seconds), 3),
    }
    log(json.dumps(result))
    return result
