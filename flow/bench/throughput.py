"""Simulation throughput: cocotb + Verilator, and the flow end to end, against a plain Verilator binary of the same
harness and stimulus; and what each Verilator optimisation level costs to build against what it saves in runs
(``python -m flow.bench.throughput`` -> reports/bench/throughput.json; in `make bench`).

Both load the same job (a real conv layer on the default s2ta_aw) into the harness memories, run
it to ``done`` and read the results back; the plain binary uses $readmemh/$writememh and a
clock in SystemVerilog. Results of both are checked against golden. Rate = RTL cycles / seconds.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from generators.config import default_preset
from golden.cscnn import mirror_canonical
from golden.systolic import array_gemm

from ..harness import runner, toolchain
from ..harness.activations import conv_inputs
from ..harness.cosim import first_mismatch, rows_bit_exact
from ..harness.drivers import DRIVERS
from ..harness.drivers.array import ArrayDriver
from ..harness.network import load_network
from ..harness.words import from_hex, memh_words, to_hex
from ..techniques.dense import check_array_layers
from . import BENCH_DIR

__all__ = ["plain_verilator", "throughput_ratio", "flow_ratio", "build_options", "build_row"]

BUILD_BLOCKS = ("sa", "scnn", "cscnn")  # the demo's largest default harnesses
BUILD_OPTS = ("-O0", "-O1", "-Os")

TESTBENCH = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1, start = 0;
  wire done;
  wire [31:0] n_in, n_out, cycle, first_in, last_out;
  {top} dut(.clk(clk), .rst(rst), .dut_rst(1'b0), .start(start), .n_items(32'd{n_items}),
    .n_expect(32'd{n_expect}), .in_pattern(32'hffffffff), .out_pattern(32'hffffffff), .load(1'b0), .dump(1'b0),
    .done(done),
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


def plain_verilator(driver, args, tiles):
    """A plain Verilator binary of ``driver``'s harness (no cocotb, no Python) running the harness job of the
    array folds ``tiles`` of validated ``args``: {"plain_build_seconds", "plain_seconds", "plain_cycles",
    "plain_cycles_per_second", "plain_bit_exact"} (its results decoded and checked against the golden GEMM)."""
    cfg = driver.cfg
    job = driver.job(args, tiles)
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
    seconds = time.perf_counter() - start
    cycles = int(done.stdout.split("CYCLES")[1].split()[0])
    words = from_hex(memh_words((work / "resp.hex").read_text()))
    m, n = args["a"].shape[0], args["w"].shape[1]
    expected = array_gemm(cfg, args["a"], args["w"], nnz_a=args["nnz_a"], dense_w=args["dense_w"])
    y = driver.decode(words, tiles, m, n)
    inside = np.zeros((m, n), bool)
    for m0, n0 in tiles:
        inside[m0:m0 + cfg.pixels, n0:n0 + cfg.channels] = True
    return {"plain_build_seconds": round(build_seconds, 1), "plain_seconds": round(seconds, 3), "plain_cycles": cycles,
            "plain_cycles_per_second": round(cycles / seconds), "plain_bit_exact": bool((y == expected)[inside].all())}


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
    plain = plain_verilator(driver, args, plan[0][0])
    result = {
        "design": cfg.module, "layer": layer.name, "nnz_a": nnz_a[layer.name], "rtl_cycles": cycles,
        "cocotb_seconds": round(driver.target.sim_seconds, 3), "cocotb_cycles_per_second": round(cocotb_rate),
        **plain, "ratio": round(cocotb_rate / plain["plain_cycles_per_second"], 3),
    }
    log(json.dumps(result))
    return result


def flow_ratio(network="digits", images=4, *, log=print):
    """The demo's dense stage end to end against plain Verilator on the same design (``sa_default``): every layer of
    ``images`` test images through ``check_array_layers`` (job packing, one simulator process, reading back, golden
    and the comparison; its build done beforehand), RTL cycles over wall seconds; and a plain Verilator binary on
    the longest single harness job of those layers. The figure is the ratio."""
    cfg = default_preset("sa")
    net = load_network(network, log=log)
    x = net.data.x_test[:images]
    check_array_layers(cfg, "verilator", net.qnet, x[:1], log=lambda *a: None)   # the build, outside the timing
    start = time.perf_counter()
    rows = check_array_layers(cfg, "verilator", net.qnet, x, log=lambda *a: None)
    seconds = time.perf_counter() - start
    cycles = sum(r["cycles"] for r in rows)
    driver, longest = ArrayDriver(cfg, "verilator"), None
    for layer in net.qnet.convs:
        xi = conv_inputs(net.qnet, x[:1])[layer.name][0]
        args = ArrayDriver.validate(cfg, {"x": xi, "w": layer.w, "pad": np.int64(layer.pad),
                                          "stride": np.int64(layer.stride)})
        for tiles, steps in ArrayDriver.jobs(cfg, args):
            if longest is None or len(tiles) * steps > longest[0]:
                longest = (len(tiles) * steps, args, tiles)
    plain = plain_verilator(driver, longest[1], longest[2])
    result = {"design": cfg.module, "network": network, "images": images, "layers": len(rows),
              "flow_bit_exact": rows_bit_exact(rows), "rtl_cycles": cycles,
              "flow_seconds": round(seconds, 2), "flow_cycles_per_second": round(cycles / seconds), **plain,
              "ratio": round(cycles / seconds / plain["plain_cycles_per_second"], 3)}
    log(json.dumps(result))
    return result


def _layer_inputs(block, cfg, network="digits", layer="conv2", images=4):
    """Validated driver inputs of ``block``: ``layer`` of the first ``images`` test images (for cscnn its weights
    made centrosymmetric from their canonical half)."""
    net = load_network(network, log=lambda *a: None)
    qlayer = next(q for q in net.qnet.convs if q.name == layer)
    xs = conv_inputs(net.qnet, net.data.x_test[:images])[layer]
    w = mirror_canonical(qlayer.w) if block == "cscnn" else qlayer.w
    driver = DRIVERS[block]
    if driver is ArrayDriver:
        extra = {"pad": np.int64(qlayer.pad), "stride": np.int64(qlayer.stride)}
    else:
        extra = {"bias": qlayer.bias}
    return [driver.validate(cfg, {"x": x, "w": w, **extra}) for x in xs]


def build_row(block):
    """In this process (its ZS_SIM_BUILD empty, ccache off): the seconds to build ``block``'s default preset in its
    harness at ZS_VERILATOR_OPT, and to run digits conv2 of 4 images on it in one process; checked against golden."""
    cfg = default_preset(block)
    runner.verilog(cfg)  # the Verilog emission (cached per machine), outside the timing
    batch = _layer_inputs(block, cfg)
    driver = DRIVERS[block](cfg, "verilator")
    start = time.perf_counter()
    driver.target  # noqa: B018 -- the build
    build_seconds = time.perf_counter() - start
    start = time.perf_counter()
    results = driver.run_batch(batch)
    run_seconds = time.perf_counter() - start
    goldens = [DRIVERS[block].golden(cfg, args) for args in batch]
    exact = all(first_mismatch(out, gold) is None and cycles == gold_cycles
                for (out, cycles), (gold, gold_cycles) in zip(results, goldens))
    return {"design": cfg.module, "opt": runner.cxx_opt(), "build_seconds": round(build_seconds, 1),
            "run_seconds": round(run_seconds, 2), "sim_seconds": round(driver.target.sim_seconds, 2),
            "rtl_cycles": sum(cycles for _, cycles in results),
            "sim_cycles_per_second": round(sum(cycles for _, cycles in results) / driver.target.sim_seconds),
            "bit_exact": exact}


def build_options(blocks=BUILD_BLOCKS, opts=BUILD_OPTS, *, log=print):
    """``build_row`` of each block at each optimisation level, each in a fresh process with an empty build folder
    and ccache off (what a first build costs), as rows."""
    rows = []
    for block in blocks:
        for opt in opts:
            with tempfile.TemporaryDirectory() as builds:
                env = {**os.environ, "ZS_VERILATOR_OPT": opt, "ZS_SIM_BUILD": builds, "CCACHE_DISABLE": "1"}
                done = subprocess.run([sys.executable, "-m", "flow.bench.throughput", "--build-row", block], env=env,
                                      check=True, capture_output=True, text=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            log(json.dumps(rows[-1]))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=flow_ratio.__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--build-row", metavar="BLOCK", help=argparse.SUPPRESS)  # build_options' child process
    args = p.parse_args(argv)
    if args.build_row:
        print(json.dumps(build_row(args.build_row)))
        return 0
    result = flow_ratio(images=args.images)
    result["build_options"] = build_options()
    out = BENCH_DIR / "throughput.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"flow / plain Verilator on {result['design']}: {result['ratio']} -> {out}")
    print("| design | opt | build s | run s (4 images, one process) | simulated cycles/s | bit-exact |\n"
          "|---|---|---|---|---|---|")
    for r in result["build_options"]:
        print(f"| {r['design']} | {r['opt']} | {r['build_seconds']} | {r['run_seconds']} | "
              f"{r['sim_cycles_per_second']:,} | {r['bit_exact']} |")
    exact = result["plain_bit_exact"] and result["flow_bit_exact"] and all(r["bit_exact"] for r in
                                                                            result["build_options"])
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
