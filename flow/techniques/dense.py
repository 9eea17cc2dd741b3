"""Dense: the INT8 network on the ``sa`` systolic array, and the dense baselines at every MAC count (``dense_at``).

``check_array_layers`` runs any array variant (the s2ta technique uses it too).
"""

import dataclasses
from math import isqrt

import numpy as np

from generators.config import CATALOG, default_preset
from golden.dbb import dbb_bound_ok, filter_blocks
from golden.systolic import fold_steps, weight_blocks

from ..harness.activations import layer_inputs, layer_jobs
from ..harness.drivers.array import ArrayDriver
from . import Result, Technique, check_costed

__all__ = ["check_array_layers", "a_dbb_off", "needs_dense_w", "dense_at", "TECHNIQUE"]

ORDER = 0


def dense_at(macs):
    """The dense ``sa`` array with ``macs`` multipliers, the baseline of a technique with as many: the catalog's
    ``sa`` preset of that size when there is one (``default`` 16, ``mac64``), else the default with rows × cols =
    ``macs``, rows the largest divisor of ``macs`` not above its square root (a variant preset ``mac<macs>``)."""
    if isinstance(macs, bool) or not isinstance(macs, int) or macs < 1:
        raise ValueError(f"a dense baseline needs a positive whole number of MACs, not {macs!r}")
    for cfg in CATALOG["sa"].values():
        if cfg.macs == macs:
            return cfg
    rows = max(d for d in range(1, isqrt(macs) + 1) if macs % d == 0)
    return dataclasses.replace(default_preset("sa"), name=f"mac{macs}", rows=rows, cols=macs // rows)


def check_array_layers(cfg, sim, qnet, images, *, batch=None, nnz_a=None, layers=None, log=print):
    """One row per compute layer (conv image by image; fc as a GEMM of one row per image, an ``FcBatch`` ``batch``'s
    size of rows a job): images checked, RTL and golden cycles (summed over images), mismatches, and ``mults``:
    products the array forms for the layer's outputs (one per output per PE step; idle PEs of partial folds not
    counted).

    On the s2ta variants a layer runs in dense-weight mode (``fallback`` says so) only if its weights break the b/BZ
    bound as the array blocks them (``needs_dense_w``): a network not W-DBB trained, not the C = 1 layer, whose
    blocks hold C ≤ b non-zeros once padded per tap. ``nnz_a`` (conv layer name -> nnz) is applied by golden to
    earlier layers and by the RTL to each s2ta_aw conv layer's input. ``layers``: the names of the layers to run
    (default all).
    """
    acts = layer_inputs(qnet, images, batch=batch, nnz_a=nnz_a, bz=cfg.bz)
    batches, fallback, counts = {}, {}, {}
    for layer in qnet.computes:
        if layers is not None and layer.name not in layers:
            continue
        jobs = []
        dense_w = needs_dense_w(cfg, layer)
        for x, w, _ in layer_jobs(layer, acts[layer.name], batch.size if batch else 1):  # a group's or batch's GEMM
            if layer.kind == "conv":
                args = {"x": x, "w": w, "pad": np.int64(layer.pad), "stride": np.int64(layer.stride)}
            else:  # a GEMM of the batch's input rows
                args = {"a": np.ascontiguousarray(x[:, 0, :].T), "w": np.ascontiguousarray(layer.w.T)}
            if not cfg.scalar:
                args["dense_w"] = np.bool_(dense_w)
            if cfg.variant == "s2ta_aw":  # DAP in front of the conv layers; fc inputs stay dense (nnz_a = bz)
                args["nnz_a"] = np.int64(nnz_a.get(layer.name, cfg.bz) if nnz_a else cfg.bz)
            jobs.append(ArrayDriver.validate(cfg, args))
        batches[layer.name], counts[layer.name] = jobs, len(acts[layer.name])
        why = [f"dense-weight mode (weights over {cfg.b}/{cfg.bz})"] if dense_w else []
        if layer.kind == "fc" and dense_w:
            why.append("dense activations")
        elif cfg.variant == "s2ta_aw" and layer.kind == "conv" and a_dbb_off(cfg, layer):
            why.append(f"dense activations ({a_dbb_off(cfg, layer)})")
        fallback[layer.name] = ", ".join(why) or None

    def fields(name, batch, results, goldens):
        return {"images": counts[name], "fallback": fallback[name],
                "nnz_a": None if nnz_a is None else nnz_a.get(name),
                "dense_w": bool(batch[0]["dense_w"]),
                "macs_dense": int(sum(a["a"].size * a["w"].shape[1] for a in batch)),
                "mults": int(sum(a["a"].shape[0] * a["w"].shape[1] *
                                 fold_steps(cfg, a["a"].shape[1], nnz_a=a["nnz_a"], dense_w=a["dense_w"])
                                 for a in batch))}

    return check_costed(ArrayDriver, cfg, sim, batches, fields=fields, log=log)


def a_dbb_off(cfg, layer):
    """Why S2TA's activation DBB does not apply to conv ``layer`` on ``cfg`` (None: it does): a grouped conv whose
    groups hold fewer input channels than a block (a depthwise conv: one), so no channel block lies within one
    group's job."""
    per_group = layer.w.shape[1]
    if layer.groups > 1 and per_group < cfg.bz:
        return (f"{'depthwise' if per_group == 1 else 'grouped'}: {per_group} input channel(s) per group, no "
                f"{cfg.bz}-channel block")
    return None


def needs_dense_w(cfg, layer):
    """Whether compute ``layer`` needs the s2ta variants' dense-weight mode: a W-DBB block of its weights, as the
    array lowers them (conv: input channels padded to BZ per tap; fc: its inputs in blocks of BZ), holds more than b
    non-zeros. Never for the scalar variants."""
    if cfg.scalar:
        return False
    blocks = filter_blocks(layer.w, cfg.bz) if layer.kind == "conv" else weight_blocks(layer.w.T, cfg.bz)
    return not dbb_bound_ok(blocks, cfg.b).all()


class Dense(Technique):
    name, title, color = "dense", "dense", "tab:gray"
    baseline = True
    block = ("sa", "default")
    blocks = ("sa", "sa_zvcg")
    stage = "dense: the INT8 network on the dense systolic arrays at every MAC count"

    def at(self, macs):
        return dense_at(macs)

    def run(self, run):
        for macs in sorted({self.cfg.macs, *run.macs}):
            role = "technique" if macs == self.cfg.macs else "dense baseline"
            run.baselines[macs] = run.check(self.name, role, check_array_layers, dense_at(macs), run.net.qnet,
                                            run.images, batch=run.batch)
        return Result(f"INT8 {run.net.name} CNN", run.net.int8_accuracy, run.baselines[self.cfg.macs],
                      {"float_accuracy": run.net.float_accuracy})

    def rows(self, net, cfg, sim, images, *, batch=None, layers=None, options=None, log=print):
        return check_array_layers(cfg, sim, net.qnet, images, batch=batch, layers=layers, log=log)

    def areas(self, comparisons=True):
        return [self.cfg, dense_at(64)]   # the baseline at 64 MACs is no comparison: always

    def area(self, results):
        return {"area": results[self.cfg.module], "area_mac64": results[dense_at(64).module]}


TECHNIQUE = Dense()
