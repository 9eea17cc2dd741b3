"""Cost-aware activation-sparsity training (the holistic paper's Eqs. 5-8; docs/flow.md): L1, Hoyer and their hybrid on
the post-ReLU activations entering conv layers, per-layer weights from a cost model, one global strength searched
to an accuracy budget. torch loads when a model is regularised or trained.

A layer's term is normalised by its size, so strengths compare across layers and networks: ``l1`` is the mean
|x| and ``hoyer`` is (Σ|x|)²/Σx² divided by the element count (a smooth density, 1/n .. 1).
"""

import copy
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from .checkpoint import load_or_make

__all__ = ["METHODS", "Regulariser", "l1", "hoyer", "conv_relus", "fine_tune_regularised",
           "load_or_fine_tune_regularised", "search_strength"]

METHODS = ("none", "l1", "targeting", "holistic")
FINE_TUNE_LR = 5e-4


def l1(x):
    """‖x‖₁ / n per sample, averaged over the batch."""
    return x.abs().flatten(1).mean(1).mean()


def hoyer(x):
    """‖x‖_Hoyer / n = (Σ|x|)² / (n·Σx²) per sample, averaged over the batch (0 for an all-zero sample)."""
    a = x.abs().flatten(1)
    return (a.sum(1) ** 2 / (a.shape[1] * a.pow(2).sum(1)).clamp_min(1e-12)).mean()


TERMS = {"l1": l1, "targeting": hoyer, "holistic": lambda x: l1(x) + hoyer(x)}


def conv_relus(model):
    """{conv index (``Net.convs`` order): index of its input's ReLU (or ReLU6) among the model's captured ReLU
    outputs (execution order: a residual block's body, then its shortcut)} for each conv layer whose input is a
    ReLU's output (through pooling); the first conv sees the image and is not regularised."""
    from torch import nn

    from .cnn import Residual

    out, count = {}, {"relus": 0, "convs": 0}

    def walk(layers, last):
        for layer in layers:
            if isinstance(layer, Residual):   # both branches take the block's input; the Add is no ReLU
                walk(layer.body, last)
                walk(layer.shortcut, last)
                last = None
            elif isinstance(layer, (nn.ReLU, nn.ReLU6)):
                last, count["relus"] = count["relus"], count["relus"] + 1
            elif isinstance(layer, nn.Conv2d):
                if last is not None:
                    out[count["convs"]] = last
                count["convs"] += 1
            elif isinstance(layer, nn.Linear):
                last = None

    walk(model.layers, None)
    return out


@dataclass(frozen=True)
class Regulariser:
    """``method`` (METHODS) at global ``strength``, with per-conv-layer ``weights`` ((conv index, weight) pairs:
    uniform 1 for ``l1`` and ``targeting``, the cost model's for ``holistic``); ``none`` has strength 0."""

    method: str
    strength: float = 0.0
    weights: tuple = ()

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; methods are {', '.join(METHODS)}")
        if not (math.isfinite(self.strength) and self.strength >= 0):
            raise ValueError(f"strength must be finite and non-negative, not {self.strength}")

    def penalty(self, model):
        """The loss term for ``cnn.fit``, or None when nothing is regularised."""
        if self.method == "none" or self.strength == 0:
            return None
        relus, term, weights = conv_relus(model), TERMS[self.method], dict(self.weights)
        layers = [(relus[c], self.strength * w) for c, w in weights.items() if c in relus and w > 0]
        return lambda captured: sum(w * term(captured[r]) for r, w in layers)


def fine_tune_regularised(model, data, reg, *, epochs, centrosymmetric=False, seed=0, progress=None):
    """A copy of ``model`` fine-tuned with ``reg`` (Adam at FINE_TUNE_LR), keeping its filters centrosymmetric when
    asked (tied duals, models.centrosymmetric)."""
    from .centrosymmetric import centrosymmetrise
    from .cnn import fit

    model = copy.deepcopy(model)
    if centrosymmetric:
        centrosymmetrise(model)
    return fit(model, data, epochs=epochs, lr=FINE_TUNE_LR, batch=64, seed=seed, penalty=reg.penalty(model),
               progress=progress)


def load_or_fine_tune_regularised(model, base_key, data, cache_dir, reg, *, epochs, centrosymmetric=False,
                                  progress=None):
    """``(model, reused, path)``: ``fine_tune_regularised`` cached at ``path`` in ``cache_dir``, keyed by the base
    model's key, the data's training split and the settings."""
    settings = json.dumps({"base": base_key, "reg": asdict(reg), "epochs": epochs, "lr": FINE_TUNE_LR,
                           "centrosymmetric": centrosymmetric,
                           "data": hashlib.sha256(data.x_train.tobytes() + data.y_train.tobytes()).hexdigest()},
                          sort_keys=True)
    path = Path(cache_dir) / f"holistic-{hashlib.sha256(settings.encode()).hexdigest()[:16]}.pt"
    model, reused = load_or_make(path, copy.deepcopy(model), lambda: fine_tune_regularised(
        model, data, reg, epochs=epochs, centrosymmetric=centrosymmetric, progress=progress))
    return model, reused, path


def search_strength(score, floor, *, lo=0.01, hi=100.0, steps=4, limit=1e4):
    """The largest strength found whose ``score(strength)`` (a trained network's accuracy) is at least ``floor``:
    ``hi`` is raised tenfold while it stays within (up to ``limit``), then bisection on a log scale between the
    last strength within and the first beyond, over ``steps`` trainings; 0.0 when even ``lo`` falls below.
    Returns ``(strength, {strength: score})``."""
    tried = {}

    def ok(s):
        tried[s] = score(s)
        return tried[s] >= floor

    if ok(hi):
        while ok(hi * 10):
            hi *= 10
            if hi >= limit:
                return hi, tried
        lo, hi = hi, hi * 10
    elif not ok(lo):
        return 0.0, tried
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo, tried
