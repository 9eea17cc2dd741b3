"""SnaPEA and the predictive-sparse algorithms on the digits CNN (seed report Ch. 5) -> reports/bench/snapea.json.

Global magnitude pruning at 0/25/50/75% (fine-tuned, INT8); every conv layer's real inputs on the
test set through the five golden algorithms (every output equal to ReLU(conv + bias), checked);
multiplications per layer and in total, and Proposal 2's ratios against each baseline -> snapea_mults.png.
The PE array: cycles of the two-sided (`default`) and one-sided (`one_sided`) presets on the same layers
(golden schedule, the RTL checked bit- and cycle-exact on the first image), and Yosys area of `small`,
area and Fmax of `pe` (one PE of the default's datapath), and the default's logic cells and RAM bits.
"""

import argparse
import json

import matplotlib
import numpy as np
from tqdm import tqdm

from generators.config import preset
from golden.snapea import ALGORITHMS

from ..harness.activations import conv_inputs
from ..harness.cosim import first_mismatch
from ..harness.drivers.snapea import SnapeaDriver
from ..harness.network import load_network
from ..synth.area import preset_area
from ..synth.yosys import synthesize
from ..techniques.snapea import multiplications, pruned_models
from . import BENCH_DIR

__all__ = ["pe_cycles"]

PE_PRESETS = ("default", "one_sided")
PE_IMAGES = 10  # test images whose layers the PE schedules run on (the first also on the RTL)


def pe_cycles(qnet, images, *, sim="verilator"):
    """Per conv layer and PE preset: golden cycles and products over ``images``, the first image's layer
    also run on the RTL (``rtl_bit_exact``: outputs, products and cycles equal golden)."""
    acts = conv_inputs(qnet, images)
    rows = []
    for layer in qnet.convs:
        row = {"layer": layer.name}
        for name in PE_PRESETS:
            cfg = preset("snapea", name)
            batch = [SnapeaDriver.validate(cfg, {"x": x, "w": layer.w, "bias": layer.bias, "pad": layer.pad,
                                                 "stride": layer.stride}) for x in acts[layer.name]]
            goldens = [SnapeaDriver.golden(cfg, args) for args in batch]
            rtl, rtl_cycles = SnapeaDriver(cfg, sim).run(batch[0])
            row[name] = {"cycles": sum(c for _, c in goldens), "mults": int(sum(g["mults"] for g, _ in goldens)),
                         "rtl_cycles": rtl_cycles, "golden_cycles": goldens[0][1],
                         "rtl_bit_exact": first_mismatch(rtl, goldens[0][0]) is None and rtl_cycles == goldens[0][1]}
        row["speedup"] = row["one_sided"]["cycles"] / row["default"]["cycles"]
        rows.append(row)
    return rows


def _plot(report, path):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = report["sparsities"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    xs = np.arange(len(sweep))
    width = 0.8 / len(ALGORITHMS)
    for i, name in enumerate(ALGORITHMS):
        left.bar(xs + (i - 2) * width, [s["total"][name] / report["images"] for s in sweep], width, label=name)
    left.set_xticks(xs, [f"{s['sparsity']:.0%}" for s in sweep])
    left.set_xlabel("global weight sparsity (pruned, fine-tuned)")
    left.set_ylabel("multiplications per image (all conv layers)")
    left.set_title("Multiplications by algorithm (golden, digits test set)")
    left.legend(fontsize=8)
    chosen = next(s for s in sweep if s["sparsity"] == 0.5)
    layers = chosen["layers"]
    xl = np.arange(len(layers))
    for i, name in enumerate(ALGORITHMS):
        right.bar(xl + (i - 2) * width, [r[name] / report["images"] for r in layers], width, label=name)
    right.set_xticks(xl, [r["layer"] for r in layers])
    right.set_ylabel("multiplications per image")
    right.set_title("Per layer at 50% sparsity")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=None, help="test images (default: the whole test set)")
    args = p.parse_args(argv)
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    net = load_network()
    images = net.data.x_test[:args.images]
    models = pruned_models(net)
    sweep = []
    for sparsity, model in tqdm(models.items(), desc="sparsities"):
        layers = multiplications(model.qnet, images)
        total = {name: sum(r[name] for r in layers) for name in ALGORITHMS}
        sweep.append({"sparsity": sparsity, "accuracy": model.accuracy, "zero_weights": model.zero_weights,
                      "layers": layers, "total": total,
                      "proposal2_fewer_than": {name: total[name] / total["proposal2"]
                                               for name in ("conv2d", "compressed", "snapea", "proposal1")}})
    for entry in tqdm(sweep, desc="PE schedules"):
        entry["pe"] = pe_cycles(models[entry["sparsity"]].qnet, net.data.x_test[:PE_IMAGES])
        one, two = (sum(r[name]["cycles"] for r in entry["pe"]) for name in ("one_sided", "default"))
        print(f"{entry['sparsity']:.0%} sparsity, PE array on {PE_IMAGES} images: two-sided {two} cycles, "
              f"one-sided {one} ({one / two:.2f}x); RTL bit-exact on the first: "
              f"{all(r[n]['rtl_bit_exact'] for r in entry['pe'] for n in PE_PRESETS)}")
    overall = {name: sum(s["total"][name] for s in sweep) for name in ALGORITHMS}
    report = {"images": len(images), "sparsities": sweep, "overall": overall,
              "proposal2_fewer_than": {name: overall[name] / overall["proposal2"]
                                       for name in ("conv2d", "compressed", "snapea", "proposal1")},
              "report_figures": {"conv2d": 5.26, "compressed": 1.23, "snapea": 2.52},
              "pe_images": PE_IMAGES,
              # default: generic logic cells and RAM bits (its RAM leaves as SRAM macros), as the hardware table
              "area": {"small": synthesize(preset("snapea", "small")), "pe": synthesize(preset("snapea", "pe")),
                       "default": preset_area(preset("snapea", "default"))}}
    for s in sweep:
        ratios = ", ".join(f"{name} {v:.2f}x" for name, v in s["proposal2_fewer_than"].items())
        print(f"{s['sparsity']:.0%} sparsity (INT8 accuracy {s['accuracy']:.2%}): Proposal 2 needs fewer "
              f"multiplications than {ratios}")
    ratios = ", ".join(f"{name} {v:.2f}x" for name, v in report["proposal2_fewer_than"].items())
    print(f"all four sparsities together: Proposal 2 vs {ratios} (report: conv2d 5.26x, compressed 1.23x, "
          f"SnaPEA 2.52x)")
    path = BENCH_DIR / "snapea.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    _plot(report, BENCH_DIR / "snapea_mults.png")
    print(f"written {path} and snapea_mults.png")


if __name__ == "__main__":
    main()
