"""S2TA training (S2TA §3.2, §5): W-DBB magnitude pruning with fine-tuning, and DAP-aware fine-tuning.

Blocks run along input channels per pixel / filter tap (docs/conventions.md) and, in fc layers, along their inputs
in order (the array's GEMM blocking, ``golden.systolic.weight_blocks``); the first (C = 1) conv stays dense. The
top-k rule is ``topk_mask_torch``, tested equal to golden's ``topk_mask``.
"""

import copy
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from golden.dbb import channel_blocks

from .checkpoint import load_or_make
from .cnn import fit

__all__ = ["DbbConfig", "topk_mask_torch", "channel_mask", "dap_ste", "wdbb_masks", "choose_nnz_a",
           "fine_tune", "load_or_fine_tune"]


@dataclass(frozen=True)
class DbbConfig:
    """What to fine-tune: W-DBB at ``nnz_w``/``bz`` (or dense weights) on the convs after the first and, with
    ``fc_w_dbb``, on the fc layers; DAP at per-layer ``nnz_a`` (or none)."""

    nnz_w: int | None = 4
    nnz_a: tuple | None = None  # one entry per conv layer; None for no DAP
    bz: int = 8
    epochs: int = 15
    lr: float = 5e-4
    batch: int = 64
    seed: int = 0
    fc_w_dbb: bool = True   # the fc layers W-DBB too, so the array runs them in W-DBB mode (issue 37)

    def key(self, base_key):
        recipe = asdict(self)
        if self.nnz_w is None:   # without W-DBB the fc switch changes nothing: the same model
            del recipe["fc_w_dbb"]
        return hashlib.sha256(json.dumps([base_key, recipe], sort_keys=True).encode()).hexdigest()[:12]


def topk_mask_torch(blocks, nnz):
    """Golden's top-k rule on float blocks [n, bz]: the ``nnz`` largest magnitudes, ties to the lower position."""
    magnitude = blocks.abs()
    order = torch.argsort(-magnitude, dim=1, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(blocks.shape[1]).expand_as(order).contiguous())
    return (rank < nnz) & (magnitude > 0)


def channel_mask(x, nnz, bz):
    """Mask keeping the top-``nnz`` magnitudes of every ``bz``-channel block of ``x`` [N, C, ...] (C padded)."""
    n, c = x.shape[:2]
    padded = -(-c // bz) * bz
    xp = torch.nn.functional.pad(x.movedim(1, -1), (0, padded - c))  # [N, ..., C']
    blocks = xp.reshape(-1, bz)
    mask = topk_mask_torch(blocks, nnz).reshape(xp.shape)[..., :c]
    return mask.movedim(-1, 1).to(x.dtype)


def dap_ste(x, nnz, bz):
    """DAP in the forward pass, identity gradient (straight-through estimator for the mask)."""
    return x + (x * channel_mask(x.detach(), nnz, bz) - x).detach()


def wdbb_masks(model, nnz, bz, *, fc=True):
    """W-DBB masks {layer: mask} of every conv weight after the first (blocks along input channels per filter tap)
    and, with ``fc``, of every fc weight (blocks along its inputs in order)."""
    masks = {conv: channel_mask(conv.weight.detach(), nnz, bz) for conv in model.convs[1:]}
    if fc:
        masks |= {linear: channel_mask(linear.weight.detach(), nnz, bz)
                  for linear in model.modules() if isinstance(linear, torch.nn.Linear)}
    return masks


def choose_nnz_a(activations, bz, nnz_max):
    """Per conv layer: nnz_a = the mean non-zeros per activation block, rounded up, within 1..nnz_max.

    ``activations`` maps layer name -> int8 [n_images, C, H, W] (the layer's real INT8 inputs).
    """
    chosen = {}
    for name, acts in activations.items():
        counts = np.concatenate([np.count_nonzero(channel_blocks(x, bz), axis=1) for x in acts])
        chosen[name] = int(np.clip(np.ceil(counts.mean()), 1, nnz_max))
    return chosen


def fine_tune(model, data, cfg, *, progress=None):
    """A copy of ``model`` W-DBB-pruned (magnitude, then masks held) and/or trained with DAP in front of each conv."""
    model = copy.deepcopy(model)
    masks = wdbb_masks(model, cfg.nnz_w, cfg.bz, fc=cfg.fc_w_dbb) if cfg.nnz_w is not None else {}
    with torch.no_grad():
        for layer, mask in masks.items():
            layer.weight.mul_(mask)
    hooks = []
    if cfg.nnz_a is not None:
        for conv, nnz in zip(model.convs, cfg.nnz_a):
            hooks.append(conv.register_forward_pre_hook(lambda _m, args, nnz=nnz: (dap_ste(args[0], nnz, cfg.bz),)))

    def keep_pruned(_model):
        for layer, mask in masks.items():
            layer.weight.mul_(mask)

    fit(model, data, epochs=cfg.epochs, lr=cfg.lr, batch=cfg.batch, seed=cfg.seed, after_step=keep_pruned,
        progress=progress)
    for hook in hooks:
        hook.remove()
    return model


def load_or_fine_tune(model, base_key, data, cfg, cache_dir, *, progress=None):
    """``fine_tune``'s result, cached in ``cache_dir`` by the base model's key and ``cfg``; (model, reused)."""
    return load_or_make(Path(cache_dir) / f"dbb-{cfg.key(base_key)}.pt", copy.deepcopy(model),
                        lambda: fine_tune(model, data, cfg, progress=progress))
