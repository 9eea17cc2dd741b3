"""Checkpoints cached on disk by a key of what produced them: an interrupted flow loses nothing already trained."""

import fcntl
from pathlib import Path

import torch

__all__ = ["load_or_make"]


def load_or_make(path, template, make):
    """``(model, reused)``: ``template`` loaded from ``path`` if it exists, else ``make()`` saved there atomically.

    Processes asking for the same checkpoint at once (test workers, the demo's pool) take turns on a
    lock beside it: one trains, the others wait and load what it saved.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            template.load_state_dict(torch.load(path, weights_only=True))
            template.eval()
            return template, True
        model = make()
        tmp = path.with_suffix(".tmp")
        torch.save(model.state_dict(), tmp)
        tmp.replace(path)
        return model, False
