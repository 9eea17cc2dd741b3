"""Benchmark of the Mixture-of-Rookies predictor on the digits CNN (MoR Fig. 6, Fig. 12) -> reports/bench/mor.json.

Golden skip rule on every conv layer of the INT8 network, tables profiled on training images and
T chosen on training data; accuracy, skipped neurons and MACs, and prediction categories on the test set.
The engine (`mor` default preset): run cycles with vs without the predictor over the test set (golden
schedule), the same on the RTL for a few images (checked bit- and cycle-exact), and the Yosys area
of the binCUs against the engine's -> mor_engine.png.

The engine on any layer shape (``--shapes`` runs only this part) -> reports/bench/mor_shapes.json, mor_shapes.png:
random INT8 layers of n_in ∈ SHAPE_INPUTS, n_out ∈ SHAPE_OUTPUTS and SHAPE_VECTORS input vectors (half the
activations zero), without the predictor (every neuron a proxy) and with it (clusters of four, every other proxy's
bias forcing it zero, every member predicted zero: a measured skip rate), engine cycles against the dense `sa_mac64`
array at equal MACs, each split into where the cycles went (``golden.mor_engine.breakdown``): golden on every
shape, RTL (Verilator, bit- and cycle-exact, both designs) on SHAPE_RTL; and the same split for LeNet-5's conv2.
"""

import argparse
import json

import matplotlib
import numpy as np
from tqdm import tqdm

from generators.config import preset
from golden.mor_engine import breakdown, engine_layer
from models.mor import THRESHOLDS, mor_evaluate

from ..harness.cosim import first_mismatch
from ..harness.drivers.array import ArrayDriver
from ..harness.drivers.mor import MorDriver
from ..harness.mor_inputs import engine_inputs, layer_notes, mor_tables
from ..harness.network import load_network
from ..techniques.mor import check_mor_layers, engine_area
from . import BENCH_DIR

__all__ = ["threshold_sweep", "engine_cycles", "shape_layer", "shape_cycles", "shape_sweep"]

RTL_IMAGES = 4          # test images whose conv layers run on the engine's RTL
SHAPE_INPUTS, SHAPE_OUTPUTS, SHAPE_VECTORS = (9, 25, 72, 144, 400), (10, 48, 120), (16, 64)
SHAPE_RTL = ((144, 48, 64), (9, 10, 16), (25, 48, 16))  # (n_in, n_out, vectors) also run on the RTL
SHAPE_SEED = 2026


def shape_layer(n_in, n_out, vectors, *, predictor, seed=SHAPE_SEED):
    """A random layer of the shape sweep: int8 weights, activations 1..127 with half of them zero. Without the
    predictor every neuron is a proxy; with it, clusters of a proxy and three members, half the proxies' biases
    so low they decide zero, and every member enabled and predicted zero (m_q = 0, b_q = -1), so exactly the
    members of zero proxies are skipped."""
    rng = np.random.default_rng([seed, n_in, n_out, vectors])
    x = (rng.integers(1, 128, (vectors, n_in)) * (rng.random((vectors, n_in)) < 0.5)).astype(np.int8)
    w = rng.integers(-127, 128, (n_out, n_in)).astype(np.int8)
    bias = rng.integers(-1000, 1000, n_out).astype(np.int32)
    proxy = np.full(n_out, -1, np.int64)
    if predictor:
        proxy = np.where(np.arange(n_out) % 4 == 0, -1, np.arange(n_out) // 4 * 4)
        zero = (np.arange(n_out) % 8 == 0)  # every other proxy
        bias = np.where(zero, -128 * 127 * n_in, bias).astype(np.int32)
    return {"x": x, "w": w, "bias": bias, "proxy": proxy, "m_q": np.zeros(n_out, np.int32),
            "b_q": np.full(n_out, -1, np.int32), "enable": np.full(n_out, predictor)}


def shape_cycles(cfg, dense, args, *, sim=None):
    """One layer on the engine and on the dense array (golden; ``sim``: also on both RTLs, checked bit- and
    cycle-exact): {"cycles", "dense_cycles", "speedup", "skipped_macs", "breakdown", "rtl"}."""
    args = MorDriver.validate(cfg, args)
    cycles, parts, macs = 0, {}, 0
    for _, piece in MorDriver.parts(cfg, args):
        out, piece_cycles, phases = MorDriver.schedule(cfg, piece)
        cycles += piece_cycles
        macs += int(out["macs"])
        split = breakdown(cfg, piece["w"].shape[1], out, phases, piece_cycles)
        parts = {k: parts.get(k, 0) + v * (piece_cycles if k == "mac_utilisation" else 1) for k, v in split.items()}
    parts["mac_utilisation"] /= cycles
    gemm = ArrayDriver.validate(dense, {"a": args["x"].reshape(-1, args["w"].shape[1]), "w": args["w"].T.copy()})
    dense_golden, dense_cycles = ArrayDriver.golden(dense, gemm)
    row = {"cycles": int(cycles), "dense_cycles": int(dense_cycles), "speedup": dense_cycles / cycles,
           "skipped_macs": 1 - macs / args["x"].reshape(-1, args["w"].shape[1]).size / len(args["w"]),
           "breakdown": parts, "rtl": None}
    if sim:
        golden, _ = MorDriver.golden(cfg, args)
        rtl, rtl_cycles = MorDriver(cfg, sim).run(args)
        dense_rtl, dense_rtl_cycles = ArrayDriver(dense, sim).run(gemm)
        exact = first_mismatch(rtl, golden) is None and rtl_cycles == cycles and \
            first_mismatch(dense_rtl, dense_golden) is None and dense_rtl_cycles == dense_cycles
        row["rtl"] = {"sim": sim, "cycles": int(rtl_cycles), "dense_cycles": int(dense_rtl_cycles), "exact": exact}
    return row


def shape_sweep(cfg, *, sim="verilator"):
    """Every swept shape without and with the predictor (golden; SHAPE_RTL also on ``sim``'s RTL)."""
    dense = preset("sa", "mac64")
    assert dense.macs == cfg.macs, "the dense baseline has the engine's MAC count"
    rows = []
    shapes = [(n_in, n_out, v) for v in SHAPE_VECTORS for n_in in SHAPE_INPUTS for n_out in SHAPE_OUTPUTS]
    for n_in, n_out, vectors in tqdm(shapes, desc="MoR engine shapes", leave=False):
        row = {"n_in": n_in, "n_out": n_out, "vectors": vectors}
        for mode in ("no_predictor", "predictor"):
            row[mode] = shape_cycles(cfg, dense, shape_layer(n_in, n_out, vectors, predictor=mode == "predictor"),
                                     sim=sim if (n_in, n_out, vectors) in SHAPE_RTL else None)
        base, pred = row["no_predictor"], row["predictor"]
        row["cycle_gain"] = 1 - pred["cycles"] / base["cycles"]  # what the predictor's skips bought
        rows.append(row)
    return rows


def threshold_sweep(net, layer_tables, images, labels):
    """Per T: test accuracy, fractions of neurons skipped / mispredicted / zero but computed, MACs saved."""
    rows = []
    for threshold in tqdm(THRESHOLDS, desc="thresholds", leave=False):
        accuracy, counts = mor_evaluate(net.qnet, layer_tables, threshold, images, labels)
        totals = {key: sum(layer[key] for layer in counts.values()) for key in next(iter(counts.values()))}
        neurons = totals["neurons"]
        rows.append({"threshold": threshold, "accuracy": accuracy, "accuracy_loss": net.int8_accuracy - accuracy,
                     "skipped": totals["skipped"] / neurons, "mispredicted": totals["mispredicted"] / neurons,
                     "correct_zero": (totals["skipped"] - totals["mispredicted"]) / neurons,
                     "zero_missed": totals["zero_missed"] / neurons,
                     "nonzero_computed": totals["nonzero_computed"] / neurons,
                     "macs_saved": 1 - totals["macs"] / totals["dense_macs"]})
    return rows


def engine_cycles(cfg, qnet, layer_tables, threshold, images):
    """Per conv layer, golden engine schedule over ``images``: run cycles and MACs with the predictor
    (the skipping network at ``threshold``) and without it (same engine, every neuron a proxy)."""
    modes = {mode: engine_inputs(qnet, layer_tables, threshold, images, predictor=mode == "predictor")
             for mode in ("predictor", "no_predictor")}
    rows = []
    for name in (layer.name for layer in qnet.convs):
        row = {"layer": name}
        for mode, layers in modes.items():
            outs = [engine_layer(cfg, **args) for args in tqdm(layers[name], desc=f"{name} {mode}", leave=False)]
            row[f"{mode}_run_cycles"] = int(sum(out["run_cycles"].sum() for out in outs))
            row[f"{mode}_macs"] = int(sum(out["macs"] for out in outs))
            row[f"{mode}_skipped"] = float(np.mean([out["skipped"].mean() for out in outs]))
        row["speedup"] = row["no_predictor_run_cycles"] / row["predictor_run_cycles"]
        rows.append(row)
    return rows


def network_breakdown(cfg, network="lenet5", layer="conv2", images=2):
    """The engine's cycles on ``network``'s ``layer`` over ``images`` test images, without and with its predictor
    (golden, against the dense array): {mode: ``shape_cycles`` row}."""
    net = load_network(network)
    layer_tables, threshold, _ = mor_tables(net)
    dense = preset("sa", "mac64")
    return {mode: shape_cycles(cfg, dense, engine_inputs(net.qnet, layer_tables, threshold, net.data.x_test[:images],
                                                          predictor=mode == "predictor")[layer][0])
            for mode in ("no_predictor", "predictor")}


def _plot_shapes(shapes, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = shapes["sweep"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6))
    labels = [f"{r['n_in']}×{r['n_out']}, {r['vectors']}" for r in rows]
    xs = np.arange(len(rows))
    for offset, mode, label in ((-0.2, "no_predictor", "no predictor"), (0.2, "predictor", "predictor")):
        left.bar(xs + offset, [r[mode]["speedup"] for r in rows], 0.4, label=label)
    left.axhline(1.0, color="k", lw=0.8)
    left.axhline(0.9, color="k", lw=0.8, ls="--")
    left.set_xticks(xs, labels, fontsize=6, rotation=90)
    left.set_ylabel("speedup vs dense sa_mac64 (equal MACs)")
    left.set_title("MoR engine on n_in×n_out, vectors (golden; RTL-checked sample)", fontsize=10)
    left.legend(fontsize=8)
    parts = [k for k in rows[0]["no_predictor"]["breakdown"] if k != "mac_utilisation"]
    bottom = np.zeros(len(rows))
    for part in parts:
        values = np.array([r["no_predictor"]["breakdown"][part] / r["no_predictor"]["cycles"] for r in rows])
        right.bar(xs, values, 0.7, bottom=bottom, label=part)
        bottom += values
    right.set_xticks(xs, labels, fontsize=6, rotation=90)
    right.set_ylabel("share of the engine's cycles (no predictor)")
    right.set_title("Where the cycles go")
    right.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def shapes_report(cfg):
    """The shape sweep and LeNet-5 conv2's split -> reports/bench/mor_shapes.json and mor_shapes.png."""
    report = {"preset": cfg.to_dict(), "dense": "sa_mac64", "sweep": shape_sweep(cfg),
              "lenet5_conv2": network_breakdown(cfg)}
    swept = [r for r in report["sweep"] if r["vectors"] >= 16]
    worst = {f"n_in {'9' if n_in_9 else '>= 25'}": min(r["no_predictor"]["speedup"] for r in swept
                                                        if (r["n_in"] == 9) == n_in_9) for n_in_9 in (True, False)}
    report["worst_speedup_no_predictor"] = worst
    report["predictor_gain_over_skipped"] = min(r["cycle_gain"] / r["predictor"]["skipped_macs"]
                                                for r in report["sweep"])
    report["rtl_exact"] = all(r[m]["rtl"]["exact"] for r in report["sweep"] for m in ("no_predictor", "predictor")
                              if r[m]["rtl"])
    path = BENCH_DIR / "mor_shapes.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    _plot_shapes(report, BENCH_DIR / "mor_shapes.png")
    print(f"MoR engine shapes: worst speedup vs dense without predictor {worst}; predictor's cycle gain ≥ "
          f"{report['predictor_gain_over_skipped']:.2f} × the MACs it skips; RTL sample exact: {report['rtl_exact']}")
    print(f"written {path} and mor_shapes.png")
    return report


def _plot(report, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["sweep"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot([100 * r["macs_saved"] for r in rows], [100 * r["accuracy_loss"] for r in rows], "o-")
    for r in rows:
        left.annotate(f"T={r['threshold']}", (100 * r["macs_saved"], 100 * r["accuracy_loss"]), fontsize=7)
    left.set_xlabel("MACs saved (%)")
    left.set_ylabel("test accuracy loss (points)")
    left.set_title("MoR Fig. 6 style: threshold sweep (golden)")
    left.grid(alpha=0.3)
    xs = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for key, label in [("correct_zero", "predicted zero, truly zero"),
                       ("mispredicted", "predicted zero, truly positive"),
                       ("zero_missed", "computed, truly zero"), ("nonzero_computed", "computed, positive")]:
        values = np.array([r[key] for r in rows])
        right.bar(xs, values, 0.7, bottom=bottom, label=label)
        bottom += values
    right.set_xticks(xs, [str(r["threshold"]) for r in rows])
    right.set_xlabel("threshold T")
    right.set_ylabel("fraction of conv neurons")
    right.set_title("MoR Fig. 12 style: prediction categories")
    right.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_engine(engine, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = engine["layers"]
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for offset, mode, label in ((-0.2, "no_predictor", "no predictor (every neuron a proxy)"),
                                (0.2, "predictor", f"MoR predictor, T = {engine['threshold']}")):
        ax.bar(xs + offset, [r[f"{mode}_run_cycles"] / engine["images"] for r in rows], 0.4, label=label)
    for x, r in zip(xs, rows):
        ax.annotate(f"{r['speedup']:.2f}x", (x, r["no_predictor_run_cycles"] / engine["images"]), ha="center",
                    va="bottom", fontsize=8)
    ax.set_xticks(xs, [r["layer"] for r in rows])
    ax.set_ylabel("engine run cycles per image")
    ax.set_title(f"{engine['preset']['block']}_{engine['preset']['name']}: cycles with vs without the predictor")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", action="store_true", help="only the engine on swept layer shapes")
    args = p.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    cfg = preset("mor")
    shapes_report(cfg)
    if args.shapes:
        return
    net = load_network()
    layer_tables, threshold, train_sweep = mor_tables(net)
    report = {"threshold": threshold, "train_sweep": [{"threshold": t, "accuracy": a} for t, a in train_sweep],
              "sweep": threshold_sweep(net, layer_tables, net.data.x_test, net.data.y_test),
              "exact_accuracy": net.int8_accuracy}
    chosen = next(r for r in report["sweep"] if r["threshold"] == threshold)
    print(f"T = {threshold}: test accuracy {chosen['accuracy']:.2%} (exact {net.int8_accuracy:.2%}), "
          f"{chosen['skipped']:.1%} of neurons skipped ({chosen['mispredicted']:.2%} mispredicted), "
          f"{chosen['macs_saved']:.1%} of MACs saved")
    report["engine"] = {"preset": cfg.to_dict(), "threshold": threshold, "images": len(net.data.x_test),
                        "layers": engine_cycles(cfg, net.qnet, layer_tables, threshold, net.data.x_test)}
    rtl = {mode: check_mor_layers(cfg, "verilator", engine_inputs(net.qnet, layer_tables, threshold,
                                                                  net.data.x_test[:RTL_IMAGES],
                                                                  predictor=mode == "predictor"),
                                  images=RTL_IMAGES, notes=layer_notes(net.qnet))
           for mode in ("predictor", "no_predictor")}
    report["engine"]["rtl"] = {"images": RTL_IMAGES, **rtl}
    total = {mode: sum(r[f"{mode}_run_cycles"] for r in report["engine"]["layers"])
             for mode in ("predictor", "no_predictor")}
    report["engine"]["speedup"] = total["no_predictor"] / total["predictor"]
    report["engine"]["rtl_bit_exact"] = all(r["bit_exact"] for rows in rtl.values() for r in rows)
    report["engine"]["area"] = engine_area(cfg)
    area = report["engine"]["area"]
    print(f"engine {cfg.module}: {report['engine']['speedup']:.3f}x fewer run cycles with the predictor "
          f"({total['no_predictor']} -> {total['predictor']}, test set, golden schedule); RTL on "
          f"{RTL_IMAGES} images bit-exact: {report['engine']['rtl_bit_exact']}; binCUs "
          f"{area['bincu_logic_fraction']:.1%} of logic cells, binary RAMs {area['binary_ram_fraction']:.1%} "
          "of RAM bits")
    path = BENCH_DIR / "mor.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    _plot(report, BENCH_DIR / "mor_threshold.png")
    _plot_engine(report["engine"], BENCH_DIR / "mor_engine.png")
    print(f"written {path}, mor_threshold.png and mor_engine.png")


if __name__ == "__main__":
    main()
