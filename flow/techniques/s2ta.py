"""S2TA: the network fine-tuned with A/W-DBB sparsity (Table 3 style: dense, W-DBB, A-DBB and A/W-DBB, INT8) on
the ``s2ta_aw`` array, the DAP cascade on the real activations, and the speedup-vs-density sweep."""

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from generators.config import default_preset
from golden.dbb import dap
from models.quantize import QuantizedNet, quantize

from ..harness.activations import conv_inputs, dap_layer_blocks, group_convs
from ..harness.cosim import first_mismatch, keep_waveform
from ..harness.drivers.array import ArrayDriver
from ..harness.drivers.dap import DapDriver
from ..harness.network import CACHE
from . import Claim, Plot, Result, Technique
from .dense import a_dbb_off, check_array_layers, dense_at, needs_dense_w

__all__ = ["S2taModel", "s2ta_models", "layer_nnz_a", "check_dap_layers", "TECHNIQUE"]

ORDER = 1

CALIBRATION_IMAGES = 200  # training images whose activations set each layer's nnz_a


@dataclass(frozen=True)
class S2taModel:
    name: str
    qnet: QuantizedNet
    nnz_a: dict | None  # conv layer name -> nnz_a (DAP in front of it), None for dense activations
    nnz_w: int | None
    accuracy: float
    reused: bool


def s2ta_models(net, cfg=None, *, only=None, log=print):
    """{"dense", "w_dbb", "a_dbb", "aw_dbb"} (``only``: those names): each fine-tuned from ``net``'s model (cached)
    for the bound of the array ``cfg`` (default the s2ta_aw default preset), quantized, evaluated.

    nnz_w is cfg's b (of bz); nnz_a per layer: ``layer_nnz_a`` on training images.
    """
    from models.dbb_training import DbbConfig, load_or_fine_tune  # torch loads with the models

    cfg = cfg or default_preset("s2ta_aw")
    base = net.model
    nnz_a = layer_nnz_a(cfg, net.qnet, net.data.x_train[:CALIBRATION_IMAGES])
    log(f"S2TA models: nnz_a from measured activation density {nnz_a}, nnz_w {cfg.b}/{cfg.bz}")
    models = {"dense": S2taModel("dense", net.qnet, None, None, net.int8_accuracy, True)}
    epochs = net.fine_tune_epochs(DbbConfig().epochs)
    recipes = [("w_dbb", DbbConfig(nnz_w=cfg.b, bz=cfg.bz, epochs=epochs)),
               ("a_dbb", DbbConfig(nnz_w=None, nnz_a=tuple(nnz_a.values()), bz=cfg.bz, epochs=epochs)),
               ("aw_dbb", DbbConfig(nnz_w=cfg.b, nnz_a=tuple(nnz_a.values()), bz=cfg.bz, epochs=epochs))]
    for name, dbb in [(n, d) for n, d in recipes if only is None or n in only]:
        start = time.perf_counter()
        model, reused = load_or_fine_tune(base, net.key, net.data, dbb, CACHE,
                                          progress=lambda it, n=name: tqdm(it, desc=f"fine-tune {n}", leave=False))
        qnet = quantize(model, net.data.x_train)
        layer_nnz = nnz_a if dbb.nnz_a is not None else None
        if dbb.nnz_w is not None:   # every layer but the first conv (fc layers too) runs in W-DBB mode
            for layer in qnet.computes:
                assert layer is qnet.convs[0] or not needs_dense_w(cfg, layer), f"{layer.name} breaks W-DBB"
        accuracy = qnet.accuracy(net.data.x_test, net.data.y_test, nnz_a=layer_nnz, bz=cfg.bz)
        models[name] = S2taModel(name, qnet, layer_nnz, dbb.nnz_w, accuracy, reused)
        log(f"  {name}: {'reused' if reused else net.trained('fine-tuned')} in {time.perf_counter() - start:.1f} s, "
            f"INT8 test accuracy {accuracy:.2%}")
    return models


def layer_nnz_a(cfg, qnet, images):
    """{conv layer name: nnz_a} of ``qnet`` on ``cfg``: the mean non-zeros per block of the layer's real INT8 inputs
    on ``images``, rounded up, within cfg's nnz_max (``models.dbb_training.choose_nnz_a``); bz (no DAP) where A-DBB
    does not apply (``dense.a_dbb_off``)."""
    from models.dbb_training import choose_nnz_a

    chosen = choose_nnz_a(conv_inputs(qnet, images), cfg.bz, cfg.nnz_max)
    return {layer.name: cfg.bz if a_dbb_off(cfg, layer) else chosen[layer.name] for layer in qnet.convs}


def check_dap_layers(cfg, sim, qnet, images, nnz_values, *, nnz_a=None, log=print):
    """DAP cascade, golden vs RTL: one row per conv layer, its real activation blocks checked at every nnz of
    ``nnz_values``: mismatches, cycles, and the share of non-zeros the last nnz removes.

    Raises nothing on a mismatch: the row carries the count and the first differing coordinates.
    """
    driver = DapDriver(cfg, sim)
    rows = []
    for layer, acts in conv_inputs(qnet, images, nnz_a=nnz_a, bz=cfg.bz).items():
        base = dap_layer_blocks(acts, cfg.bz)
        blocks = np.concatenate([base] * len(nnz_values))
        nnz = np.repeat(np.asarray(nnz_values, dtype=np.int64), len(base))
        args = {"blocks": blocks, "nnz": nnz}
        (golden, golden_cycles) = DapDriver.golden(cfg, args)
        rtl, cycles = driver.run(args)
        bad = (rtl["values"] != golden["values"]).any(axis=1) | (rtl["mask"] != golden["mask"])
        kept = np.count_nonzero(dap(cfg, base, nnz_values[-1])[1][:, None] >> np.arange(cfg.bz) & 1)
        nonzero = int(np.count_nonzero(base))
        mismatch = first_mismatch(rtl, golden)
        rows.append({
            "layer": layer, "blocks": int(len(blocks)), "mismatches": int(bad.sum()),
            "first_mismatch": None if mismatch is None else str(mismatch),
            "waveform": None if mismatch is None else str(keep_waveform(DapDriver, cfg, sim, args, mismatch)),
            "nonzero_in": nonzero, "kept": int(kept), "nnz": int(nnz_values[-1]),
            "removed": 0.0 if nonzero == 0 else 1 - kept / nonzero,
            "cycles": int(cycles), "golden_cycles": int(golden_cycles), "sim_seconds": driver.target.sim_seconds,
        })
        log(f"  {layer}: {len(blocks)} blocks on {sim}, {int(bad.sum())} mismatches, {cycles} cycles")
    return rows


def density_sweep(cfg, qnet, image, nnz_a):
    """Golden cycle-model speedup of ``cfg`` over the dense ``sa`` at equal MACs on each conv layer of one image where
    A-DBB applies (``dense.a_dbb_off``), for every nnz_a the preset runs (the model equals the RTL's cycles, tested):
    S2TA's speedup vs density. A grouped conv's cycles are its groups' summed."""
    sa = dense_at(cfg.macs)
    rows = []
    for layer in qnet.convs:
        if a_dbb_off(cfg, layer):
            continue
        image_in = conv_inputs(qnet, image[None], nnz_a=nnz_a, bz=cfg.bz)[layer.name][0]
        convs = [{"x": x, "w": w, "pad": np.int64(layer.pad), "stride": np.int64(layer.stride)}
                 for x, w, _ in group_convs(layer, image_in)]
        base = sum(ArrayDriver.golden(sa, ArrayDriver.validate(sa, conv))[1] for conv in convs)
        dense_w = np.bool_(image_in.shape[0] == 1)
        for nnz in [*range(1, cfg.nnz_max + 1), cfg.bz]:
            cycles = sum(ArrayDriver.golden(cfg, ArrayDriver.validate(cfg, {**conv, "nnz_a": np.int64(nnz),
                                                                            "dense_w": dense_w}))[1]
                         for conv in convs)
            rows.append({"layer": layer.name, "nnz_a": nnz, "density": nnz / cfg.bz, "dense_w": bool(dense_w),
                         "speedup": base / cycles})
    return rows


def _plot_density(plt, s2ta):
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
    return fig, ax


def zvcg_at(macs):
    """SA-ZVCG (the dense array with zero-value clock gating, S2TA's baseline) with ``macs`` multipliers: the
    dense baseline's shape."""
    return dataclasses.replace(dense_at(macs), variant="sa_zvcg")


class S2ta(Technique):
    name, title, color = "s2ta", "S2TA", "tab:blue"
    claims = (Claim("S2TA-AW vs SA-ZVCG at equal MACs", "sa_zvcg", 1 / 2.08,
                    "S2TA Fig. 11: S2TA-AW 2.08x as energy efficient as SA-ZVCG (16 nm, four CNNs)"),
              Claim("S2TA-AW vs dense at equal MACs", "dense", None, "no figure against an ungated dense array"))
    block = ("s2ta_aw", "default")
    blocks = ("s2ta_aw", "s2ta_w")
    blocks_compared = ("sa", "sa_zvcg", "s2ta_w", "s2ta_aw")  # every array variant on the A/W-DBB network
    stage = "s2ta: A/W-DBB fine-tuning, s2ta_aw RTL"

    def derive(self, net, *, log=print):
        s2ta_models(net, self.cfg, log=log)

    def comparisons(self, net, sim, *, images, array_images, log=print):
        cfg = default_preset("dap")
        aw_dbb = s2ta_models(net, log=log)["aw_dbb"]
        out = [(f"dap/{cfg.name}", r, f"{r['blocks']} blocks (nnz 1..{cfg.nnz_max})")
               for r in check_dap_layers(cfg, sim, net.qnet, net.data.x_test[:images],
                                         list(range(1, cfg.nnz_max + 1)), log=log)]
        for variant in self.blocks_compared:
            array = default_preset(variant)
            rows = check_array_layers(array, sim, aw_dbb.qnet, net.data.x_test[:array_images], nnz_a=aw_dbb.nnz_a,
                                      log=log)
            out += [(f"{variant}/{array.name}", r,
                     f"{r['images']} image(s)" + (f", nnz_a {r['nnz_a']}" if variant == "s2ta_aw" else ""))
                    for r in rows]
        return out

    def rows(self, net, cfg, sim, images, *, batch=None, layers=None, options=None, log=print):
        aw = s2ta_models(net, cfg, only=("aw_dbb",), log=log)["aw_dbb"]
        return check_array_layers(cfg, sim, aw.qnet, images, batch=batch,
                                  nnz_a=aw.nnz_a if cfg.variant == "s2ta_aw" else None, layers=layers, log=log)

    def run(self, run):
        cfg = self.cfg
        models = s2ta_models(run.net, cfg, log=run.log)
        aw = models["aw_dbb"]
        rows = run.check(self.name, "technique", check_array_layers, cfg, aw.qnet, run.images, batch=run.batch,
                         nnz_a=aw.nnz_a)
        zvcg = run.check(self.name, "SA-ZVCG at equal MACs, INT8 network", check_array_layers, zvcg_at(cfg.macs),
                         run.net.qnet, run.images, batch=run.batch)
        return Result(f"A/W-DBB {run.net.trained('fine-tuned')}: W-DBB {cfg.b}/{cfg.bz} (first layer dense), "
                      f"DAP nnz_a {aw.nnz_a}", aw.accuracy, rows,
                      {"nnz_a": aw.nnz_a, "model_accuracy": {n: m.accuracy for n, m in models.items()},
                       "density_sweep": density_sweep(cfg, aw.qnet, run.images[0], aw.nnz_a),
                       "sa_zvcg": [{"layer": r["layer"], "cycles": r["cycles"], "energy_pj": r["energy_pj"],
                                    "energy_parts": r["energy_parts"]} for r in zvcg]})

    def section(self, entry, summary):
        return [Plot("s2ta_speedup_vs_density.png", lambda plt: _plot_density(plt, entry)),
                f"{entry['model']}. INT8 test accuracy of each fine-tuned model: "
                + ", ".join(f"{k} {v:.2%}" for k, v in entry["model_accuracy"].items()) + ".", "",
                "![S2TA speedup vs density](s2ta_speedup_vs_density.png)"]


TECHNIQUE = S2ta()
