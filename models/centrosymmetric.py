"""CSCNN training (CSCNN §II): centrosymmetric conv filters with tied duals, and pruning that keeps duals together.

Duals start at their mean and stay tied: after each backward pass a weight's gradient and its
dual's are averaged (the paper's flip trick), so every Adam update is symmetric too. Applied to
stride-1 convolutions only, never to the classifier. Pruning ranks the canonical half by
magnitude (duals are equal) and removes each weight with its dual.
"""

import copy
import hashlib
import json
from pathlib import Path

import torch

from golden.cscnn import canonical_mask

from .checkpoint import load_or_make
from .cnn import fit

__all__ = ["symmetric_convs", "centrosymmetrise", "dual_prune_masks", "fine_tune_centrosymmetric",
           "load_or_fine_tune_centrosymmetric"]


def _flip(t):
    return torch.flip(t, dims=(-2, -1))


def symmetric_convs(model):
    """The conv layers CSCNN applies to: unit stride (all of them in the digits CNN)."""
    return [conv for conv in model.convs if conv.stride == (1, 1)]


def centrosymmetrise(model):
    """Set every eligible filter to the mean of itself and its dual; tie the duals' gradients from now on."""
    for conv in symmetric_convs(model):
        with torch.no_grad():
            conv.weight.copy_((conv.weight + _flip(conv.weight)) / 2)
        conv.weight.register_hook(lambda grad: (grad + _flip(grad)) / 2)
    return model


def dual_prune_masks(model, sparsity):
    """Per eligible conv: a mask zeroing the ``sparsity`` fraction of smallest-magnitude dual pairs."""
    masks = {}
    for i, conv in enumerate(model.convs):
        if conv not in symmetric_convs(model):
            continue
        w = conv.weight.detach()
        canonical = torch.from_numpy(canonical_mask(*w.shape[2:]))
        magnitudes = w.abs()[..., canonical].flatten()
        k = int(sparsity * magnitudes.numel())
        threshold = magnitudes.kthvalue(k).values if k else magnitudes.min() - 1
        keep = w.abs() > threshold
        masks[i] = (keep & _flip(keep)).to(w.dtype)  # duals are equal, so keep is already symmetric
    return masks


def fine_tune_centrosymmetric(model, data, *, sparsity=0.0, epochs=15, lr=5e-4, batch=64, seed=0, progress=None):
    """A centrosymmetric copy of ``model`` retrained with tied duals, optionally dual-pruned to ``sparsity``."""
    model = centrosymmetrise(copy.deepcopy(model))
    masks = dual_prune_masks(model, sparsity) if sparsity else {}

    def keep_pruned(m):
        for i, mask in masks.items():
            m.convs[i].weight.mul_(mask)

    with torch.no_grad():
        keep_pruned(model)
    return fit(model, data, epochs=epochs, lr=lr, batch=batch, seed=seed, after_step=keep_pruned,
               progress=progress)


def load_or_fine_tune_centrosymmetric(model, base_key, data, cache_dir, *, sparsity=0.0, epochs=15, progress=None):
    """``fine_tune_centrosymmetric``'s result cached in ``cache_dir`` by the base model's key and the settings."""
    settings = json.dumps({"base": base_key, "sparsity": sparsity, "epochs": epochs}, sort_keys=True)
    path = Path(cache_dir) / f"centrosymmetric-{hashlib.sha256(settings.encode()).hexdigest()[:12]}.pt"
    return load_or_make(path, copy.deepcopy(model),
                        lambda: fine_tune_centrosymmetric(model, data, sparsity=sparsity, epochs=epochs,
                                                          progress=progress))
