"""The demo's report: reports/demo/report.md with the summary and per-layer tables, and its matplotlib plots."""

import matplotlib

__all__ = ["write_report", "summary_table"]

NAMES = {"dense": "dense", "s2ta": "S2TA", "cscnn": "CSCNN", "mor": "MoR", "snapea": "SnaPEA"}
COLORS = {"dense": "tab:gray", "s2ta": "tab:blue", "cscnn": "tab:green", "mor": "tab:orange", "snapea": "tab:red"}


def _table(rows, columns):
    head = "| " + " | ".join(title for title, _ in columns) + " |"
    rule = "|" + "---|" * len(columns)
    return "\n".join([head, rule, *("| " + " | ".join(fmt(r) for _, fmt in columns) + " |" for r in rows)])


def _techniques(summary):
    return [(key, summary[key]) for key in NAMES]


def _area(t):
    area = t["area"]
    if area is None:
        return "not run (--no-synth)"
    if area.get("not_synthesized"):
        return f"not synthesized; one PE: {area['one_pe']['logic_cells']}"
    return f"{area['logic_cells']}" + (f" + {area['ram_bits']} RAM bits" if area["ram_bits"] else "")


def summary_table(summary):
    """The one-row-per-technique table of the demo (markdown)."""
    return _table(_techniques(summary), [
        ("technique", lambda kt: NAMES[kt[0]]),
        ("preset", lambda kt: f"{kt[1]['preset']['module']} ({kt[1]['preset']['macs']} MACs)"),
        ("test accuracy", lambda kt: f"{kt[1]['accuracy']:.2%}"),
        ("RTL bit-exact", lambda kt: f"{'yes' if kt[1]['rtl_bit_exact'] else 'NO'} "
                                     f"({kt[1]['rtl_layers_checked']} layer runs)"),
        ("cycles", lambda kt: str(kt[1]["cycles"])),
        ("dense at equal MACs",
         lambda kt: f"{kt[1]['dense_baseline']['cycles']} ({kt[1]['dense_baseline']['module']})"),
        ("speedup vs dense", lambda kt: f"{kt[1]['speedup_vs_dense']:.2f}x"),
        ("multiplications", lambda kt: str(kt[1]["multiplications"])),
        ("logic cells (Yosys generic)", lambda kt: _area(kt[1])),
    ])


def _layer_table(summary):
    rows = [{"t": key, **layer} for key, t in _techniques(summary) for layer in t["layers"]]
    return _table(rows, [
        ("technique", lambda r: NAMES[r["t"]]), ("layer", lambda r: r["layer"]),
        ("RTL cycles", lambda r: str(r["cycles"])), ("golden cycles", lambda r: str(r["golden_cycles"])),
        ("dense cycles (equal MACs)", lambda r: str(r["dense_cycles"])),
        ("speedup vs dense", lambda r: f"{r['speedup_vs_dense']:.2f}x"),
        ("multiplications", lambda r: str(r["multiplications"])),
        ("bit-exact", lambda r: "yes" if r["bit_exact"] else f"NO: {r['first_mismatch']} ({r['waveform']})"),
    ])


def _plot_cycles(plt, summary, path):
    series, styles = {}, {}
    for key, t in _techniques(summary):
        label = f"{NAMES[key]} ({t['preset']['module']})"
        series[label], styles[label] = [r["cycles"] for r in t["layers"]], {"color": COLORS[key]}
    label = f"dense at 64 MACs ({summary['mor']['dense_baseline']['module']})"
    series[label] = [r["dense_cycles"] for r in summary["mor"]["layers"]]
    styles[label] = {"color": COLORS["dense"], "hatch": "//", "edgecolor": "white"}
    _grouped(plt, path, [r["layer"] for r in summary["dense"]["layers"]], series, styles=styles, log=True,
             ylabel=f"RTL cycles, {summary['dataset']['images']} test images",
             title=f"Per-layer cycles by technique ({summary['sim']}, "
                   f"{'all bit-exact' if summary['bit_exact'] else 'MISMATCHES: see the report'})")


def _save(plt, fig, ax, path, *, legend=True, **placement):
    if legend:
        ax.legend(fontsize=8, **placement)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_accuracy(plt, summary, path):
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for i, (key, t) in enumerate(_techniques(summary)):
        ax.scatter(t["cycles"], 100 * t["accuracy"], s=60, color=COLORS[key])
        ax.annotate(f"{NAMES[key]}, {t['preset']['macs']} MACs: {t['speedup_vs_dense']:.2f}x vs dense",
                    (t["cycles"], 100 * t["accuracy"]), textcoords="offset points", xytext=(6, 10 - 14 * (i % 2)),
                    fontsize=8)
    mac64 = summary["mor"]["dense_baseline"]
    ax.scatter(mac64["cycles"], 100 * summary["dense"]["accuracy"], s=60, facecolors="none", edgecolors="tab:gray")
    ax.annotate(f"dense, 64 MACs ({mac64['module']})", (mac64["cycles"], 100 * summary["dense"]["accuracy"]),
                textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.margins(x=0.3, y=0.15)
    ax.set_xlabel(f"RTL cycles, all conv layers, {summary['dataset']['images']} test images")
    ax.set_ylabel(f"test accuracy (%), {summary['dataset']['test']} images")
    ax.set_title("Accuracy vs cycles")
    _save(plt, fig, ax, path, legend=False)


def _plot_s2ta(plt, s2ta, path):
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for style, layer in zip(("o-", "s--", "^:", "v-."), dict.fromkeys(r["layer"] for r in s2ta["density_sweep"])):
        sel = [r for r in s2ta["density_sweep"] if r["layer"] == layer]
        dense_w = " (dense-weight mode)" if sel[0]["dense_w"] else ""
        line, = ax.plot([r["density"] for r in sel], [r["speedup"] for r in sel], style, markersize=5,
                        label=f"{layer}{dense_w}, cycle model")
        measured = next(r for r in s2ta["layers"] if r["layer"] == layer)
        ax.scatter([s2ta["nnz_a"][layer] / s2ta["preset"]["bz"]], [measured["speedup_vs_dense"]], s=140,
                   facecolors="none", edgecolors=line.get_color(), linewidths=2)
    ax.scatter([], [], s=140, facecolors="none", edgecolors="k", label="RTL, the demo's nnz_a")
    ax.set_xlabel(f"activation density bound (nnz_a / {s2ta['preset']['bz']})")
    ax.set_ylabel("speedup of s2ta_aw over sa (16 MACs each)")
    ax.set_title("S2TA: speedup vs activation density")
    _save(plt, fig, ax, path)


def _grouped(plt, path, layers, series, *, ylabel, title, log=False, styles=None):
    """Bars per layer, one per series ({label: values}); ``styles`` maps a label to extra bar arguments."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        ax.bar([j + i * width for j in range(len(layers))], values, width, label=label, **(styles or {}).get(label, {}))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(layers))], layers)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    _save(plt, fig, ax, path)


def _plot_mor(plt, mor, path):
    layers = list(mor["categories"])
    parts = {"skipped, truly zero": lambda c: c["skipped"] - c["mispredicted"],
             "skipped, truly positive (mispredicted)": lambda c: c["mispredicted"],
             "computed, zero (missed)": lambda c: c["zero_missed"],
             "computed, positive": lambda c: c["nonzero_computed"]}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    bottom = [0.0] * len(layers)
    for label, part in parts.items():
        values = [100 * part(mor["categories"][layer]) / mor["categories"][layer]["neurons"] for layer in layers]
        ax.bar(layers, values, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("% of conv neurons, whole test set")
    ax.set_title(f"MoR zero-prediction categories (T = {mor['threshold']})")
    _save(plt, fig, ax, path, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2)


def write_report(summary, out_dir):
    """Write ``out_dir``/report.md and its PNGs from the demo's ``summary``; return the summary table."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s2ta, cscnn, mor, snapea = (summary[k] for k in ("s2ta", "cscnn", "mor", "snapea"))
    layers = [r["layer"] for r in summary["dense"]["layers"]]
    _plot_cycles(plt, summary, out_dir / "cycles_by_layer.png")
    _plot_accuracy(plt, summary, out_dir / "accuracy_vs_cycles.png")
    _plot_s2ta(plt, s2ta, out_dir / "s2ta_speedup_vs_density.png")
    _grouped(plt, out_dir / "cscnn_products.png", layers,
             {"scnn_pe (RTL)": [r["multiplications"] for r in cscnn["scnn_pe"]],
              "cscnn_pe (RTL)": [r["multiplications"] for r in cscnn["layers"]]},
             ylabel="products formed", title="CSCNN: products vs SCNN on the same network")
    _plot_mor(plt, mor, out_dir / "mor_categories.png")
    algorithms = ("conv2d", "compressed", "snapea", "proposal1", "proposal2")
    _grouped(plt, out_dir / "snapea_mults.png", layers,
             {**{name: [r[name] for r in snapea["algorithms"]] for name in algorithms},
              "two-sided PE array (RTL)": [r["multiplications"] for r in snapea["layers"]]},
             ylabel="multiplications", title="SnaPEA: multiplications by algorithm (the pruned network)", log=True)

    table = summary_table(summary)
    data = summary["dataset"]
    lines = [
        "# zeroskip demo report", "",
        f"{data['name']}: {data['train']} training and {data['test']} test images. RTL: every conv layer of "
        f"{data['rtl_images']} on {summary['sim']}, checked bit- and cycle-exact against the golden models. "
        f"Accuracy: golden models on the whole test set. Seeds: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["seeds"].items()) + ".", "",
        "**" + ("Every technique's RTL matched golden." if summary["bit_exact"] else "RTL MISMATCHES: see below.")
        + "**", "",
        table, "",
        "- *cycles*: RTL cycles of all conv layers (first input word accepted to last result word, per docs/cosim.md).",
        "- *speedup vs dense*: cycles of the dense `sa` array with the same MAC count on the dense INT8 network, "
        "over the technique's. A dense array's cycles depend only on layer shapes.",
        "- *multiplications*: products the technique's hardware forms (RTL counters for the PEs and the MoR "
        "engine; one per output per PE step for the arrays).",
        "- *logic cells*: Yosys generic cells with hierarchy; RAM leaves are black boxes counted in bits.", "",
        "![cycles by layer](cycles_by_layer.png) ![accuracy vs cycles](accuracy_vs_cycles.png)", "",
        "## Per layer", "", _layer_table(summary), "",
        "## S2TA", "",
        f"{s2ta['model']}. INT8 test accuracy of each fine-tuned model: "
        + ", ".join(f"{k} {v:.2%}" for k, v in s2ta["model_accuracy"].items()) + ".", "",
        "![S2TA speedup vs density](s2ta_speedup_vs_density.png)", "",
        "## CSCNN", "",
        _table(cscnn["table_ii"], [
            ("Table II model", lambda r: r["model"]), ("INT8 accuracy", lambda r: f"{r['accuracy']:.2%}"),
            ("conv weights stored", lambda r: str(r["conv_weights"])),
            ("weight reduction", lambda r: f"{r['weight_reduction']:.2f}x"),
            ("products / image (golden)",
             lambda r: f"{r['cscnn_products_per_image'] or r['scnn_products_per_image']:.0f}"),
            ("product reduction", lambda r: f"{r['product_reduction']:.2f}x")]), "",
        _table(list(zip(cscnn["layers"], cscnn["scnn_pe"])), [
            ("layer", lambda p: p[0]["layer"]), ("cscnn_pe products", lambda p: str(p[0]["multiplications"])),
            ("scnn_pe products", lambda p: str(p[1]["multiplications"])),
            ("cscnn_pe cycles", lambda p: str(p[0]["cycles"])), ("scnn_pe cycles", lambda p: str(p[1]["cycles"])),
            ("speedup over SCNN", lambda p: f"{p[1]['cycles'] / p[0]['cycles']:.2f}x")]), "",
        "![CSCNN products](cscnn_products.png)", "",
        "## Mixture-of-Rookies", "",
        _table(list(mor["categories"].items()), [
            ("layer (test set)", lambda kv: kv[0]),
            ("skipped", lambda kv: f"{kv[1]['skipped'] / kv[1]['neurons']:.1%}"),
            ("mispredicted", lambda kv: f"{kv[1]['mispredicted'] / kv[1]['neurons']:.2%}"),
            ("computed but zero", lambda kv: f"{kv[1]['zero_missed'] / kv[1]['neurons']:.1%}"),
            ("MACs saved", lambda kv: f"{1 - kv[1]['macs'] / kv[1]['dense_macs']:.1%}")]), "",
        _table(list(zip(mor["layers"], mor["no_predictor"])), [
            ("layer (RTL)", lambda p: p[0]["layer"]), ("MACs", lambda p: str(p[0]["multiplications"])),
            ("MACs, no predictor", lambda p: str(p[1]["multiplications"])),
            ("cycles", lambda p: str(p[0]["cycles"])), ("cycles, no predictor", lambda p: str(p[1]["cycles"])),
            ("speedup from the predictor", lambda p: f"{p[1]['cycles'] / p[0]['cycles']:.2f}x")]), "",
        "![MoR categories](mor_categories.png)", "",
        "## SnaPEA", "",
        "INT8 test accuracy by global sparsity: "
        + ", ".join(f"{float(s):.0%} {a:.2%}" for s, a in snapea["model_accuracy"].items()) + ".", "",
        _table(snapea["algorithms"], [("layer", lambda r: r["layer"]),
                                      *((f"{n} mults", lambda r, n=n: str(r[n])) for n in algorithms)]), "",
        _table(list(zip(snapea["layers"], snapea["one_sided"])), [
            ("layer (RTL)", lambda p: p[0]["layer"]), ("two-sided products", lambda p: str(p[0]["multiplications"])),
            ("one-sided products", lambda p: str(p[1]["multiplications"])),
            ("two-sided cycles", lambda p: str(p[0]["cycles"])), ("one-sided cycles", lambda p: str(p[1]["cycles"])),
            ("speedup", lambda p: f"{p[1]['cycles'] / p[0]['cycles']:.2f}x")]), "",
        "![SnaPEA multiplications](snapea_mults.png)", "",
        "## Wall time", "",
        _table(list(summary["stages_seconds"].items()),
               [("stage", lambda kv: kv[0]), ("seconds", lambda kv: f"{kv[1]:.1f}")]),
        "", f"Whole demo: {summary['wall_seconds']:.1f} s.", "",
    ]
    (out_dir / "report.md").write_text("\n".join(lines))
    return table
