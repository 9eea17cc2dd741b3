"""The digits CNN: three 3x3 conv + ReLU layers and a linear classifier, trained on CPU in seconds."""

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import load_or_make

__all__ = ["CnnConfig", "DigitsCNN", "train", "fit", "load_or_train", "accuracy", "float_images"]


@dataclass(frozen=True)
class CnnConfig:
    channels: tuple = (16, 32, 32)
    epochs: int = 40
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0

    def key(self):
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


class DigitsCNN(nn.Module):
    """conv(1->c1) -> conv(c1->c2) -> conv(c2->c3), 3x3, pad 1, ReLU each; flatten; linear(c3*64 -> 10)."""

    def __init__(self, cfg):
        super().__init__()
        chans = (1, *cfg.channels)
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 3, padding=1) for i in range(len(chans) - 1))
        self.fc = nn.Linear(chans[-1] * 64, 10)

    def forward(self, x, *, capture=None):
        """``x`` float [N, 1, 8, 8] in 0..1; ``capture`` list gets each conv layer's post-ReLU output."""
        for conv in self.convs:
            x = torch.relu(conv(x))
            if capture is not None:
                capture.append(x)
        return self.fc(x.flatten(1))


def float_images(x_q):
    """int8 images (0..127) as the float 0..1 tensors the model takes."""
    return torch.from_numpy(x_q.astype(np.float32) / 127)


def fit(model, data, *, epochs, lr, batch, seed, after_step=None, progress=None):
    """Adam on the training split, deterministic for ``seed``; ``after_step(model)`` runs after each update."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x = float_images(data.x_train)
    y = torch.from_numpy(data.y_train)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs) if progress is None else progress(range(epochs)):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            if after_step is not None:
                with torch.no_grad():
                    after_step(model)
    model.eval()
    return model


def train(cfg, data, *, progress=None):
    """A fresh DigitsCNN trained for ``cfg.epochs``; deterministic for a given cfg.seed."""
    torch.manual_seed(cfg.seed)
    return fit(DigitsCNN(cfg), data, epochs=cfg.epochs, lr=cfg.lr, batch=cfg.batch, seed=cfg.seed, progress=progress)


def accuracy(model, x_q, y):
    with torch.no_grad():
        return float((model(float_images(x_q)).argmax(1).numpy() == y).mean())


def load_or_train(cfg, data, cache_dir, *, progress=None):
    """The model for ``cfg``, from ``cache_dir`` when a checkpoint keyed by cfg exists, else trained and saved."""
    return load_or_make(Path(cache_dir) / f"digits_cnn-{cfg.key()}.pt", DigitsCNN(cfg),
                        lambda: train(cfg, data, progress=progress))
