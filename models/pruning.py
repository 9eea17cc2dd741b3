"""Global magnitude pruning of the conv layers (the seed report's setting), fine-tuned with the mask held."""

import copy
import hashlib
import json
from pathlib import Path

import torch

from .checkpoint import load_or_make
from .cnn import fit

__all__ = ["SPARSITIES", "global_magnitude_masks", "fine_tune_pruned", "load_or_fine_tune_pruned"]

SPARSITIES = (0.0, 0.25, 0.5, 0.75)  # the report's global sparsity levels


def global_magnitude_masks(model, sparsity):
    """Per conv layer, a 0/1 mask removing the ``sparsity`` fraction of smallest-magnitude conv weights
    counted over all conv layers together (so layers end up with different sparsities)."""
    magnitudes = torch.cat([conv.weight.detach().abs().flatten() for conv in model.convs])
    k = int(round(sparsity * magnitudes.numel()))
    if k == 0:
        return [torch.ones_like(conv.weight) for conv in model.convs]
    threshold = magnitudes.kthvalue(k).values
    masks = [(conv.weight.detach().abs() > threshold).to(conv.weight.dtype) for conv in model.convs]
    # Ties at the threshold: drop only as many as needed, in flat order, for exactly k pruned weights.
    excess = k - sum(int((m == 0).sum()) for m in masks)
    for mask, conv in zip(masks, model.convs):
        ties = ((conv.weight.detach().abs() == threshold) & (mask == 1)).flatten().nonzero().flatten()
        drop = ties[:max(0, excess)]
        mask.view(-1)[drop] = 0
        excess -= len(drop)
    return masks


def fine_tune_pruned(model, data, sparsity, *, epochs=15, lr=5e-4, batch=64, seed=0, progress=None):
    """A copy of ``model`` with ``sparsity`` of its conv weights pruned globally, fine-tuned with them held at 0."""
    model = copy.deepcopy(model)
    masks = global_magnitude_masks(model, sparsity)

    def keep_pruned(m):
        for conv, mask in zip(m.convs, masks):
            conv.weight.mul_(mask)

    with torch.no_grad():
        keep_pruned(model)
    return fit(model, data, epochs=epochs, lr=lr, batch=batch, seed=seed, after_step=keep_pruned, progress=progress)


def load_or_fine_tune_pruned(model, base_key, data, cache_dir, sparsity, *, epochs=15, progress=None):
    """``fine_tune_pruned``'s result cached in ``cache_dir`` by the base model's key and the settings."""
    settings = json.dumps({"base": base_key, "global_sparsity": sparsity, "epochs": epochs}, sort_keys=True)
    path = Path(cache_dir) / f"pruned-{hashlib.sha256(settings.encode()).hexdigest()[:12]}.pt"
    return load_or_make(path, copy.deepcopy(model),
                        lambda: fine_tune_pruned(model, data, sparsity, epochs=epochs, progress=progress))
