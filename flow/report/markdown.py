"""The evaluation's report: report.md with the summary and per-layer tables, each technique's section, and the
matplotlib plots."""

import numpy as np

from ..harness.check import per_image
from ..techniques import BASELINE, TECHNIQUES, Bars, Plot, Table

__all__ = ["write_report", "render", "summary_table", "table", "grouped", "save", "ENERGY_LABEL"]

ENERGY_LABEL = "relative energy, OSU 0.18 µm"


def table(rows, columns):
    """A markdown table of ``rows``, ``columns`` being (title, row -> text) pairs."""
    head = "| " + " | ".join(title for title, _ in columns) + " |"
    rule = "|" + "---|" * len(columns)
    return "\n".join([head, rule, *("| " + " | ".join(fmt(r) for _, fmt in columns) + " |" for r in rows)])


def _techniques(summary):
    return [(key, summary[key]) for key in TECHNIQUES if key in summary]


def _other_baselines(summary):
    """{module: (technique key, its entry)} of the dense baselines at MAC counts other than dense's own."""
    own = summary[BASELINE.name]["dense_baseline"]["module"] if BASELINE.name in summary else None
    found = {}
    for key, t in _techniques(summary):
        found.setdefault(t["dense_baseline"]["module"], (key, t))
    return {module: kt for module, kt in found.items() if module != own}


def _area(t):
    area = t["area"]
    if area is None:
        return "not run (--no-synth)"
    return f"{area['logic_cells']}" + (f" + {area['ram_bits']} RAM bits" if area["ram_bits"] else "")


def _energy(kt):
    t = kt[1]
    text = f"{t['energy_pj'] / 1e6:.3f} µJ / image ({t['energy_vs_dense']:.2f}x dense)"
    calibrated = t["energy_calibration"]
    return text if calibrated == t["preset"]["module"] else f"{text}, extrapolated from {calibrated}"


def summary_table(summary):
    """The one-row-per-technique table of the demo (markdown)."""
    return table(_techniques(summary), [
        ("technique", lambda kt: TECHNIQUES[kt[0]].title),
        ("preset", lambda kt: f"{kt[1]['preset']['module']} ({kt[1]['preset']['macs']} MACs)"),
        ("test accuracy", lambda kt: f"{kt[1]['accuracy']:.2%}"),
        ("RTL bit-exact", lambda kt: f"{'yes' if kt[1]['rtl_bit_exact'] else 'NO'} "
                                     f"({kt[1]['rtl_layers_checked']} layer runs)"),
        ("cycles / image", lambda kt: f"{kt[1]['cycles']:.0f}"),
        ("dense at equal MACs",
         lambda kt: f"{kt[1]['dense_baseline']['cycles']:.0f} ({kt[1]['dense_baseline']['module']})"),
        ("speedup vs dense", lambda kt: f"{kt[1]['speedup_vs_dense']:.2f}x"),
        (ENERGY_LABEL, _energy),
        ("multiplications", lambda kt: str(kt[1]["multiplications"])),
        ("logic cells (Yosys generic)", lambda kt: _area(kt[1])),
    ])


def _dram(r):
    bits = r["dram_bits"]
    return f"{r['energy_parts']['dram'] / 1e6:.3f} ({bits['read'] / 8e3:.1f}/{bits['write'] / 8e3:.1f})"


def _layer_table(summary):
    rows = [{"t": key, **layer} for key, t in _techniques(summary) for layer in t["layers"]]
    return table(rows, [
        ("technique", lambda r: TECHNIQUES[r["t"]].title), ("layer", lambda r: r["layer"]),
        ("kind", lambda r: r.get("role", "")), ("images", lambda r: str(r["images"])),
        ("RTL cycles", lambda r: str(r["cycles"])),
        ("golden cycles", lambda r: str(r["golden_cycles"])),
        ("dense cycles (equal MACs)", lambda r: str(r["dense_cycles"])),
        ("speedup vs dense", lambda r: f"{r['speedup_vs_dense']:.2f}x"),
        ("energy vs dense", lambda r: f"{r['energy_vs_dense']:.2f}x"),
        ("on chip µJ", lambda r: f"{(r['energy_pj'] - r['energy_parts']['dram']) / 1e6:.3f}"),
        ("DRAM µJ (kB read/written)", _dram),
        ("multiplications", lambda r: str(r["multiplications"])),
        ("bit-exact", lambda r: "yes" if r["bit_exact"] else f"NO: {r['first_mismatch']} ({r['waveform']})"),
    ])


def _reasons(fallbacks):
    """{layer: why} as "layers: why" per distinct reason, or a dash."""
    layers = {}
    for layer, why in fallbacks.items():
        layers.setdefault(why, []).append(layer)
    return "; ".join(f"{', '.join(names)}: {why}" for why, names in layers.items()) or "—"


def _role_section(summary):
    """Per kind of layer (conv, depthwise, pointwise, residual conv, fc) and technique: speedup and energy vs dense
    at equal MACs, which technique wins, and where a mechanism was off."""
    rows = [{"t": key, "role": role, **figures} for key, t in _techniques(summary) if key != "dense"
            for role, figures in t.get("by_role", {}).items()]
    if not rows:
        return []
    rows.sort(key=lambda r: r["role"])
    wins = summary.get("winners_by_role", {})
    return ["## By kind of layer", "", table(rows, [
        ("kind", lambda r: r["role"]), ("technique", lambda r: TECHNIQUES[r["t"]].title),
        ("layers", lambda r: ", ".join(r["layers"])),
        ("speedup vs dense", lambda r: f"{r['speedup_vs_dense']:.2f}x"),
        ("energy vs dense", lambda r: f"{r['energy_vs_dense']:.2f}x"),
        ("mechanism off", lambda r: _reasons(r["fallbacks"]))]), "",
        *[f"- *{role}*: fastest {TECHNIQUES[w['fastest']].title}, least energy {TECHNIQUES[w['least_energy']].title}"
          for role, w in sorted(wins.items())], ""]


def _plot_cycles(plt, summary, path):
    series, styles = {}, {}
    for key, t in _techniques(summary):
        label = f"{TECHNIQUES[key].title} ({t['preset']['module']})"
        series[label] = [per_image(r, "cycles") for r in t["layers"]]
        styles[label] = {"color": TECHNIQUES[key].color}
    for module, (_, t) in _other_baselines(summary).items():
        label = f"dense at {t['dense_baseline']['macs']} MACs ({module})"
        series[label] = [per_image(r, "dense_cycles") for r in t["layers"]]
        styles[label] = {"color": BASELINE.color, "hatch": "//", "edgecolor": "white"}
    first = _techniques(summary)[0][1]
    grouped(plt, path, [r["layer"] for r in first["layers"]], series, styles=styles, log=True,
             ylabel="RTL cycles per image",
             title=f"Per-layer cycles by technique ({summary['sim']}, "
                   f"{'all bit-exact' if summary['bit_exact'] else 'MISMATCHES: see the report'})")


def _plot_energy(plt, summary, path):
    series = {f"{TECHNIQUES[key].title} ({t['preset']['module']})": [r["energy_vs_dense"] for r in t["layers"]]
              for key, t in _techniques(summary)}
    styles = {label: {"color": TECHNIQUES[key].color} for label, (key, _) in zip(series, _techniques(summary))}
    first = _techniques(summary)[0][1]
    grouped(plt, path, [r["layer"] for r in first["layers"]], series, styles=styles,
            ylabel=f"{ENERGY_LABEL} vs dense at equal MACs", title="Per-layer energy by technique (dense = 1)")


def _papers_section(summary):
    rows = summary.get("papers", [])
    if not rows:
        return []

    def ratio(x):
        return "—" if x is None else f"{x:.2f}x"

    return ["## Energy against the papers' claims", "",
            f"Our RTL's on-chip energy ({ENERGY_LABEL}; DRAM, the same for both at equal MACs, left out as the "
            "papers do) over each paper's baseline on this network, next to the paper's own ratio (below 1: the "
            "technique saves). Where ours is not below 1, *cause* names the part (logic, clock, sram, buffer) whose "
            "excess over the baseline is largest; `papers.json` has every layer and part.", "",
            table(rows, [("comparison", lambda r: r["comparison"]), ("ours, network", lambda r: ratio(r["measured"])),
                         ("ours, conv layers", lambda r: ratio(r["measured_conv"])),
                         ("paper", lambda r: ratio(r["paper"])), ("cause, network", lambda r: r["cause"] or ""),
                         ("cause, conv layers", lambda r: r.get("cause_conv") or ""),
                         ("paper's figure", lambda r: r["source"])]), ""]


def _plot_energy_parts(plt, summary, path):
    techniques = _techniques(summary)
    fig, axes = plt.subplots(1, len(techniques), figsize=(3.2 * len(techniques), 3.8), sharey=True, squeeze=False)
    for ax, (key, t) in zip(axes[0], techniques):
        layers = [r["layer"] for r in t["layers"]]
        bottom = np.zeros(len(layers))
        for i, part in enumerate(t["energy_parts"]):
            values = np.array([r["energy_parts"][part] / 1e6 for r in t["layers"]])
            ax.bar(range(len(layers)), values, bottom=bottom, label=part, color=f"C{i}")
            bottom += values
        ax.set_xticks(range(len(layers)), layers, rotation=30, fontsize=8)
        ax.set_title(f"{TECHNIQUES[key].title} ({t['preset']['module']})", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel(f"µJ ({ENERGY_LABEL})")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle("Energy by part, per technique and layer")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save(plt, fig, ax, path, *, legend=True, **placement):
    if legend:
        ax.legend(fontsize=8, **placement)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_accuracy(plt, summary, path):
    fig, ax = plt.subplots(figsize=(7, 4.4))
    for i, (key, t) in enumerate(_techniques(summary)):
        ax.scatter(t["cycles"], 100 * t["accuracy"], s=60, color=TECHNIQUES[key].color)
        ax.annotate(f"{TECHNIQUES[key].title}, {t['preset']['macs']} MACs: {t['speedup_vs_dense']:.2f}x vs dense",
                    (t["cycles"], 100 * t["accuracy"]), textcoords="offset points", xytext=(6, 10 - 14 * (i % 2)),
                    fontsize=8)
    if BASELINE.name in summary:
        for module, (_, t) in _other_baselines(summary).items():
            base, accuracy = t["dense_baseline"], 100 * summary[BASELINE.name]["accuracy"]
            ax.scatter(base["cycles"], accuracy, s=60, facecolors="none", edgecolors=BASELINE.color)
            ax.annotate(f"dense, {base['macs']} MACs ({module})", (base["cycles"], accuracy),
                        textcoords="offset points", xytext=(6, -12), fontsize=8)
    ax.margins(x=0.3, y=0.15)
    ax.set_xlabel("RTL cycles per image, all layers")
    ax.set_ylabel(f"test accuracy (%), {summary['dataset']['test']} images")
    ax.set_title("Accuracy vs cycles")
    save(plt, fig, ax, path, legend=False)


def grouped(plt, path, layers, series, *, ylabel, title, log=False, styles=None):
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
    save(plt, fig, ax, path)


def render(items, out_dir, plt):
    """The lines of a technique's report section (``Technique.section``), its plots written to ``out_dir``."""
    lines = []
    for item in items:
        if isinstance(item, Table):
            lines.append(table(item.rows, item.columns))
        elif isinstance(item, Bars):
            grouped(plt, out_dir / item.name, item.layers, item.series, ylabel=item.ylabel, title=item.title,
                    log=item.log)
        elif isinstance(item, Plot):
            save(plt, *item.draw(plt), out_dir / item.name, **item.legend)
        else:
            lines.append(item)
    return lines


def write_report(summary, out_dir, *, title="zeroskip demo report"):
    """Write ``out_dir``/report.md and its PNGs from an evaluation's ``summary``; return the summary table."""
    import matplotlib  # loads when a report is written

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _plot_cycles(plt, summary, out_dir / "cycles_by_layer.png")
    _plot_accuracy(plt, summary, out_dir / "accuracy_vs_cycles.png")
    _plot_energy(plt, summary, out_dir / "energy_by_layer.png")
    _plot_energy_parts(plt, summary, out_dir / "energy_parts.png")
    sections = []
    for key, t in _techniques(summary):
        lines = render(TECHNIQUES[key].section(t, summary), out_dir, plt)
        if lines:
            sections += [f"## {TECHNIQUES[key].title}", "", *lines, ""]
    overview = summary_table(summary)
    data = summary["dataset"]
    lines = [
        f"# {title}", "",
        f"{data['name']}: "
        + ("no training images (post-training: techniques prune and constrain without retraining)"
           if data.get("post_training") else f"{data['train']} training") + f" and {data['test']} test images. "
        f"RTL: every layer (conv and fc) of "
        f"{data['rtl_images']} on {summary['sim']}"
        + (f", fc layers in batches of {data['fc_batch']} images ({data['fc_images']} test images)"
           if "fc_batch" in data else "") + ", checked bit- and cycle-exact against the golden models. "
        "Accuracy: golden models on the whole test set. Seeds: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["seeds"].items()) + ".", "",
        "**" + ("Every technique's RTL matched golden." if summary["bit_exact"] else "RTL MISMATCHES: see below.")
        + "**", "",
        *[f"**Accuracy warning:** {line}." for line in summary.get("accuracy_warnings", [])],
        *([""] if summary.get("accuracy_warnings") else []),
        overview, "",
        "- *cycles / image*: RTL cycles of all layers, conv and fc (first input word accepted to last result word, "
        "per docs/cosim.md), each layer's over the images it ran (the per-layer table's *images*: fc layers run "
        "whole batches).",
        "- *speedup vs dense*: cycles of the dense `sa` array with the same MAC count on the dense INT8 network, "
        "over the technique's. A dense array's cycles depend only on layer shapes.",
        f"- *{ENERGY_LABEL}*: the system's energy (docs/flow.md, Energy): the block's logic, clock and SRAM macros "
        "from its per-action energies (calibrated on its gate-level netlist) × the golden models' counts, the "
        "global buffer (1 KiB per MAC, CACTI) per bit its streams move, and DRAM per bit each layer moves off chip "
        "(its own column); × dense: over the dense array's at equal MACs; *extrapolated from* a smaller calibrated "
        "preset of the block: an estimate (see reports/energy/calibration.json for the extrapolation errors "
        "measured).",
        "- *multiplications*: products the technique's hardware forms (RTL counters for the PEs and the MoR "
        "engine; one per output per PE step for the arrays).",
        "- *logic cells*: Yosys generic cells with hierarchy; RAM leaves are black boxes counted in bits.", "",
        "![cycles by layer](cycles_by_layer.png) ![accuracy vs cycles](accuracy_vs_cycles.png) "
        "![energy by layer](energy_by_layer.png)", "",
        "![energy by part](energy_parts.png)", "",
        "## Per layer", "", _layer_table(summary), "",
        *_role_section(summary),
        *_papers_section(summary),
        *sections,
        "## Wall time", "",
        table(list(summary["stages_seconds"].items()),
              [("stage", lambda kv: kv[0]), ("seconds", lambda kv: f"{kv[1]:.1f}")]),
        "", f"Whole run: {summary['wall_seconds']:.1f} s.", "",
    ]
    (out_dir / "report.md").write_text("\n".join(lines))
    return overview
