"""`zeroskip demo`: the digits CNN through training, INT8 export and every block's RTL, one report."""

import json
import sys
import time

from generators.config import default_preset, preset
from models.mor import mor_forward

from .cscnn_check import check_pe_layers
from .cscnn_network import PRUNING, cscnn_models, table_ii
from .dap_check import check_layers
from .mor_area import engine_area
from .mor_check import check_mor_layers, engine_inputs
from .mor_network import mor_tables
from .network import load_network
from .runner import REPO
from .s2ta_check import check_array_layers
from .s2ta_network import s2ta_models
from .snapea_check import check_snapea_layers
from .snapea_network import RTL_SPARSITY, multiplications, pruned_models
from .synth import synthesize

__all__ = ["demo", "DEMO_DIR", "DEMO_NNZ"]

DEMO_DIR = REPO / "reports" / "demo"
DEMO_NNZ = 4  # DAP density bound for every conv layer: 4/8 (S2TA's A-DBB operating point)


def _table(rows, columns):
    head = "| " + " | ".join(title for title, _ in columns) + " |"
    rule = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(fmt(row) for _, fmt in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def _s2ta_section(net, sim, images, *, log):
    """S2TA: the A/W-DBB fine-tuned network (C = 1 layer dense) on s2ta_aw vs sa at equal MACs."""
    aw, sa = default_preset("s2ta_aw"), default_preset("sa")
    models = s2ta_models(net, log=log)
    chosen = models["aw_dbb"]
    nnz_a = chosen.nnz_a
    log(f"S2TA RTL: {aw.module} vs {sa.module} ({aw.macs} MACs each) on {sim}, nnz_a {nnz_a}")
    section = {"accuracy": {name: m.accuracy for name, m in models.items()}, "nnz_a": nnz_a,
               "weights": f"W-DBB {aw.b}/{aw.bz} fine-tuned, first layer dense"}
    for cfg in (aw, sa):
        t = time.perf_counter()
        layers = check_array_layers(cfg, sim, chosen.qnet, net.data.x_test[:images], nnz_a=nnz_a, log=log)
        section[cfg.variant] = {"preset": cfg.to_dict(), "layers": layers, "rtl_seconds": time.perf_counter() - t,
                                "cycles": sum(r["cycles"] for r in layers)}
    section["speedup"] = section["sa"]["cycles"] / section["s2ta_aw"]["cycles"]
    return section


def _cscnn_section(net, sim, images, *, log):
    """CSCNN: centrosymmetric retraining (+ dual pruning) and the pruned network on cscnn_pe vs scnn_pe."""
    log("CSCNN models: centrosymmetric conv filters, retrained with tied duals")
    models = cscnn_models(net, log=log)
    section = {"table_ii": table_ii(models, net.data.x_test[:images]), "rtl_model": "cs_pruned",
               "pruning": PRUNING}
    for block in ("cscnn_pe", "scnn_pe"):
        cfg = default_preset(block)
        log(f"CSCNN RTL: {cfg.module} ({cfg.macs} multipliers) on {sim}, the cs_pruned network")
        t = time.perf_counter()
        layers = check_pe_layers(cfg, sim, models["cs_pruned"].qnet, net.data.x_test[:images], log=log)
        section[block] = {"preset": cfg.to_dict(), "layers": layers, "rtl_seconds": time.perf_counter() - t,
                          "cycles": sum(r["cycles"] for r in layers), "mults": sum(r["mults"] for r in layers)}
    section["mults_ratio"] = section["cscnn_pe"]["mults"] / section["scnn_pe"]["mults"]
    section["speedup"] = section["scnn_pe"]["cycles"] / section["cscnn_pe"]["cycles"]
    return section


def _mor_section(net, sim, images, *, synth, log):
    """Mixture-of-Rookies: profiled tables, the skipping network's accuracy and prediction categories
    (golden, test set), and its conv layers on the `mor` engine with vs without the predictor."""
    log("MoR tables: per-filter fits and angle clusters profiled on training images")
    layer_tables, threshold, _ = mor_tables(net, log=log)
    data = net.data
    correct, counts = 0, {}
    for image, label in zip(data.x_test, data.y_test):
        logits, stats = mor_forward(net.qnet, layer_tables, threshold, image)
        correct += int(logits.argmax()) == label
        for layer in stats.values():
            for key, value in layer.items():
                counts[key] = counts.get(key, 0) + value
    cfg = default_preset("mor")
    section = {"threshold": threshold, "accuracy": correct / len(data.y_test), "counts": counts,
               "preset": cfg.to_dict()}
    for mode in ("predictor", "no_predictor"):
        log(f"MoR RTL: {cfg.module} ({cfg.macs} MACs) on {sim}, {mode.replace('_', ' ')}")
        t = time.perf_counter()
        layers = check_mor_layers(cfg, sim, engine_inputs(net.qnet, layer_tables, threshold, data.x_test[:images],
                                                          predictor=mode == "predictor"), log=log)
        section[mode] = {"layers": layers, "rtl_seconds": time.perf_counter() - t,
                         "run_cycles": sum(r["run_cycles"] for r in layers), "cycles": sum(r["cycles"] for r in layers),
                         "macs": sum(r["macs"] for r in layers)}
    section["speedup"] = section["no_predictor"]["run_cycles"] / section["predictor"]["run_cycles"]
    section["area"] = engine_area(cfg) if synth else None
    return section


def _snapea_section(net, sim, images, *, log):
    """SnaPEA: the globally pruned networks' accuracy, the five algorithms' multiplications (golden) and the
    RTL_SPARSITY network's conv layers on the two-sided and one-sided PE arrays."""
    log("SnaPEA models: global magnitude pruning, fine-tuned")
    models = pruned_models(net, log=log)
    chosen = models[RTL_SPARSITY]
    layers = multiplications(chosen.qnet, net.data.x_test[:images])
    section = {"sparsity": RTL_SPARSITY, "accuracy": {f"{s:.2f}": m.accuracy for s, m in models.items()},
               "algorithms": layers}
    for name in ("default", "one_sided"):
        cfg = preset("snapea", name)
        log(f"SnaPEA RTL: {cfg.module} ({'two' if cfg.two_sided else 'one'}-sided, {cfg.macs} MACs) on {sim}")
        t = time.perf_counter()
        rows = check_snapea_layers(cfg, sim, chosen.qnet, net.data.x_test[:images], log=log)
        section[name] = {"preset": cfg.to_dict(), "layers": rows, "rtl_seconds": time.perf_counter() - t,
                         "cycles": sum(r["cycles"] for r in rows), "mults": sum(r["mults"] for r in rows)}
    section["speedup_two_sided"] = section["one_sided"]["cycles"] / section["default"]["cycles"]
    return section


def demo(*, sim="verilator", images=8, synth=True, log=print):
    """Run the demo; return 0 when every RTL output matched golden, 1 otherwise."""
    start = time.perf_counter()
    net = load_network(log=log)
    data, qnet = net.data, net.qnet
    nnz_a = {layer.name: DEMO_NNZ for layer in qnet.convs}
    dap_accuracy = qnet.accuracy(data.x_test, data.y_test, nnz_a=nnz_a)
    log(f"INT8 with DAP {DEMO_NNZ}/8 on every conv input: test accuracy {dap_accuracy:.2%}")

    cfg = default_preset("dap")
    log(f"DAP RTL ({cfg.module}) on {sim}: real activations of {images} test images")
    t = time.perf_counter()
    rows = check_layers(cfg, sim, qnet, data.x_test[:images], [DEMO_NNZ], nnz_a=nnz_a, log=log)
    rtl_seconds = time.perf_counter() - t
    area = None
    if synth:
        t = time.perf_counter()
        area = synthesize(cfg)
        log(f"synthesis of {cfg.module}: {area['generic_cells']} cells, {area['ecp5_lut4']} LUT4, "
            f"Fmax {area['fmax_mhz']} MHz ({time.perf_counter() - t:.1f} s)")

    s2ta = _s2ta_section(net, sim, images, log=log)
    cscnn = _cscnn_section(net, sim, images, log=log)
    mor = _mor_section(net, sim, images, synth=synth, log=log)
    snapea = _snapea_section(net, sim, images, log=log)
    checked = [("dap", rows), ("s2ta_aw", s2ta["s2ta_aw"]["layers"]), ("sa", s2ta["sa"]["layers"]),
               ("cscnn_pe", cscnn["cscnn_pe"]["layers"]), ("scnn_pe", cscnn["scnn_pe"]["layers"]),
               ("mor", mor["predictor"]["layers"]), ("mor (no predictor)", mor["no_predictor"]["layers"]),
               ("snapea", snapea["default"]["layers"]), ("snapea one-sided", snapea["one_sided"]["layers"])]
    bit_exact = all(r["mismatches"] == 0 and r["cycles"] == r["golden_cycles"] for _, layer_rows in checked
                    for r in layer_rows)
    print()
    print(_table([
        {"k": "float", "v": f"{net.float_accuracy:.2%}"},
        {"k": "INT8", "v": f"{net.int8_accuracy:.2%}"},
        {"k": f"INT8 + DAP {DEMO_NNZ}/8", "v": f"{dap_accuracy:.2%}"},
        *({"k": f"S2TA {name} (fine-tuned, INT8)", "v": f"{acc:.2%}"}
          for name, acc in s2ta["accuracy"].items() if name != "dense"),
        *({"k": f"CSCNN {r['model']} (retrained, INT8)", "v": f"{r['accuracy']:.2%}"}
          for r in cscnn["table_ii"] if r["model"] != "dense"),
        {"k": f"MoR predictor, T = {mor['threshold']} (INT8)", "v": f"{mor['accuracy']:.2%}"},
        *({"k": f"SnaPEA: {float(s):.0%} global pruning (fine-tuned, INT8; exact prediction)", "v": f"{acc:.2%}"}
          for s, acc in snapea["accuracy"].items() if float(s) > 0),
    ], [("model", lambda r: r["k"]), ("test accuracy", lambda r: r["v"])]))
    print()
    print(_table(rows, [
        ("layer", lambda r: r["layer"]),
        ("blocks checked", lambda r: str(r["blocks"])),
        ("mismatches", lambda r: str(r["mismatches"])),
        ("non-zero activations", lambda r: str(r["nonzero_in"])),
        (f"removed by DAP {DEMO_NNZ}/8", lambda r: f"{r['removed']:.1%}"),
        ("RTL cycles", lambda r: str(r["cycles"])),
        ("golden cycles", lambda r: str(r["golden_cycles"])),
    ]))
    print()
    print(_table([{**aw, "sa": sa} for aw, sa in zip(s2ta["s2ta_aw"]["layers"], s2ta["sa"]["layers"])], [
        ("layer", lambda r: r["layer"]),
        ("nnz_a", lambda r: f"{r['nnz_a']}/8" + (" (dense_w)" if r["dense_w"] else "")),
        ("s2ta_aw RTL cycles", lambda r: str(r["cycles"])),
        ("sa RTL cycles", lambda r: str(r["sa"]["cycles"])),
        ("speedup", lambda r: f"{r['sa']['cycles'] / r['cycles']:.2f}x"),
        ("bit-exact", lambda r: "yes" if not r["mismatches"] and not r["sa"]["mismatches"] else "NO"),
    ]))
    print()
    print(_table(cscnn["table_ii"], [
        ("CSCNN Table II", lambda r: r["model"]),
        ("INT8 accuracy", lambda r: f"{r['accuracy']:.2%}"),
        ("conv weights stored", lambda r: str(r["conv_weights"])),
        ("weight reduction", lambda r: f"{r['weight_reduction']:.2f}x"),
        ("products / image", lambda r: f"{r['cscnn_products_per_image'] or r['scnn_products_per_image']:.0f}"),
        ("product reduction", lambda r: f"{r['product_reduction']:.2f}x"),
    ]))
    print()
    print(_table([{**cs, "scnn": sc} for cs, sc in zip(cscnn["cscnn_pe"]["layers"], cscnn["scnn_pe"]["layers"])], [
        ("layer (cs_pruned)", lambda r: r["layer"]),
        ("cscnn_pe products", lambda r: str(r["mults"])),
        ("scnn_pe products", lambda r: str(r["scnn"]["mults"])),
        ("cscnn_pe RTL cycles", lambda r: str(r["cycles"])),
        ("scnn_pe RTL cycles", lambda r: str(r["scnn"]["cycles"])),
        ("speedup", lambda r: f"{r['scnn']['cycles'] / r['cycles']:.2f}x"),
        ("bit-exact", lambda r: "yes" if not r["mismatches"] and not r["scnn"]["mismatches"] else "NO"),
    ]))
    print()
    neurons = mor["counts"]["neurons"]
    print(f"MoR on the test set (T = {mor['threshold']}): {mor['counts']['skipped'] / neurons:.1%} of conv neurons "
          f"skipped ({mor['counts']['mispredicted'] / neurons:.2%} mispredicted, truly positive), "
          f"{1 - mor['counts']['macs'] / mor['counts']['dense_macs']:.1%} of conv MACs saved")
    print(_table([{**p, "base": b} for p, b in zip(mor["predictor"]["layers"], mor["no_predictor"]["layers"])], [
        ("layer (MoR)", lambda r: r["layer"]),
        ("skipped", lambda r: f"{r['skipped']}/{r['neurons']}"),
        ("MACs", lambda r: str(r["macs"])),
        ("MACs, no predictor", lambda r: str(r["base"]["macs"])),
        ("run cycles", lambda r: str(r["run_cycles"])),
        ("run cycles, no predictor", lambda r: str(r["base"]["run_cycles"])),
        ("speedup", lambda r: f"{r['base']['run_cycles'] / r['run_cycles']:.2f}x"),
        ("bit-exact", lambda r: "yes" if r["bit_exact"] and r["base"]["bit_exact"] else "NO"),
    ]))
    print()
    print(_table(snapea["algorithms"], [
        (f"layer ({RTL_SPARSITY:.0%} pruned)", lambda r: r["layer"]),
        *((f"{name} mults", lambda r, n=name: str(r[n])) for name in ("conv2d", "compressed", "snapea", "proposal1",
                                                                      "proposal2")),
    ]))
    print()
    pe_rows = [{**two, "one": one} for two, one in zip(snapea["default"]["layers"], snapea["one_sided"]["layers"])]
    print(_table(pe_rows, [
        ("layer (SnaPEA PE)", lambda r: r["layer"]),
        ("two-sided products", lambda r: str(r["mults"])),
        ("one-sided products", lambda r: str(r["one"]["mults"])),
        ("two-sided RTL cycles", lambda r: str(r["cycles"])),
        ("one-sided RTL cycles", lambda r: str(r["one"]["cycles"])),
        ("speedup", lambda r: f"{r['one']['cycles'] / r['cycles']:.2f}x"),
        ("bit-exact", lambda r: "yes" if not r["mismatches"] and not r["one"]["mismatches"] else "NO"),
    ]))
    print()
    summary = {
        "dataset": {"name": "sklearn load_digits", "train": len(data.y_train), "test": len(data.y_test)},
        "cnn": {"channels": list(net.cnn.channels), "seed": net.cnn.seed, "epochs": net.cnn.epochs},
        "accuracy": {"float": net.float_accuracy, "int8": net.int8_accuracy, "int8_dap": dap_accuracy},
        "dap": {"preset": cfg.to_dict(), "sim": sim, "images": images, "nnz": DEMO_NNZ,
                "rtl_bit_exact": bit_exact, "layers": rows, "area": area, "rtl_seconds": rtl_seconds},
        "s2ta": s2ta,
        "cscnn": cscnn,
        "mor": mor,
        "snapea": snapea,
        "wall_seconds": time.perf_counter() - start,
    }
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    (DEMO_DIR / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for block, layer_rows in checked:
        for r in layer_rows:
            if r["first_mismatch"]:
                print(f"demo: {block} mismatch in {r['layer']}: first at {r['first_mismatch']}; "
                      f"waveform kept at {r['waveform']}", file=sys.stderr)
    log(f"{'bit-exact' if bit_exact else 'MISMATCH'}; summary in {DEMO_DIR / 'summary.json'}; "
        f"{summary['wall_seconds']:.1f} s")
    return 0 if bit_exact else 1
