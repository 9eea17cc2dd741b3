"""Checkpoints cached on disk by a key of what produced them: an interrupted flow loses nothing already trained."""

from pathlib import Path

import torch

__all__ = ["load_or_make"]


def load_or_make(path, template, make):
    """``(model, reused)``: ``template`` loaded from ``path`` if it exists, else ``make()`` saved there atomically."""
    path = Path(path)
    if path.exists():
        template.load_state_dict(torch.load(path, weights_only=True))
        template.eval()
        return template, True
    model = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model, False
