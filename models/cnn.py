"""Networks as data: a CNN is a sequence of supported torch layers (``Net``) plus its data set. Built in
(``models.networks``): ``digits`` (three 3x3 conv + ReLU layers and a linear classifier on the 8x8 digits) and
``lenet5`` (LeNet-5 on MNIST).
Training is deterministic: fixed seeds, one thread, deterministic algorithms."""

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import load_or_make
from .networks import CnnConfig

__all__ = ["CnnConfig", "Net", "Residual", "SUPPORTED", "build", "train", "fit", "load_or_train", "accuracy",
           "float_images", "deterministic"]

class Residual(nn.Module):
    """A residual block: ``body(x) + shortcut(x)`` (``shortcut`` empty: the identity), each a sequence of
    ``SUPPORTED`` layers; the ReLU after the Add follows the block in its network."""

    def __init__(self, body, shortcut=()):
        super().__init__()
        self.body, self.shortcut = nn.ModuleList(_supported(body)), nn.ModuleList(_supported(shortcut))

    def forward(self, x, *, capture=None):
        return _run(self.body, x, capture) + _run(self.shortcut, x, capture)


SUPPORTED = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
             nn.Flatten, nn.Linear, nn.Dropout, nn.Identity, Residual)


def _supported(layers):
    layers = list(layers)
    for layer in layers:
        if not isinstance(layer, SUPPORTED):
            raise ValueError(f"unsupported layer {type(layer).__name__}; supported: "
                             f"{', '.join(t.__name__ for t in SUPPORTED)}")
    return layers


def _run(layers, x, capture):
    """``layers`` in order; ``capture`` (a list) gets every ReLU's and ReLU6's output, in order of execution."""
    for layer in layers:
        x = layer(x, capture=capture) if isinstance(layer, Residual) else layer(x)
        if capture is not None and isinstance(layer, (nn.ReLU, nn.ReLU6)):
            capture.append(x)
    return x


class Net(nn.Module):
    """A CNN as a sequence of ``SUPPORTED`` layers, taking float images (int8 0..127 / 127, ``float_images``)
    multiplied by ``input_scale`` (1 for the built-in networks; an imported model's input range otherwise).
    ``train_shift``: its training recipe shifts each batch by up to that many pixels (``fit``), 0 for none."""

    def __init__(self, layers, *, input_scale=1.0, train_shift=0):
        super().__init__()
        self.input_scale, self.train_shift = float(input_scale), int(train_shift)
        self.layers = nn.ModuleList(_supported(layers))

    @property
    def convs(self):
        """Every Conv2d, residual blocks' included (body, then shortcut): the order the INT8 network names them."""
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def forward(self, x, *, capture=None):
        """``capture`` list gets every ReLU's (and ReLU6's) output (the activations INT8 calibration scales)."""
        if self.input_scale != 1.0:
            x = x * self.input_scale
        return _run(self.layers, x, capture)


def _layer(spec):
    """A torch layer from its spec ``(class name, *arguments[, keyword arguments dict])``; ``("Residual", body
    specs, shortcut specs)`` a residual block."""
    name, *args = spec
    if name == "Residual":
        return Residual([_layer(s) for s in args[0]], [_layer(s) for s in args[1]])
    kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
    return getattr(nn, name)(*args, **kwargs)


def build(cfg):
    """A fresh ``Net`` of ``cfg``'s built-in network, initialised from ``cfg.seed``."""
    torch.manual_seed(cfg.seed)
    return Net([_layer(spec) for spec in cfg.layers()], train_shift=cfg.shift)


def float_images(x_q):
    """int8 images (0..127) as the float 0..1 tensors the model takes."""
    return torch.from_numpy(x_q.astype(np.float32) / 127)


@contextmanager
def deterministic():
    """One thread and deterministic algorithms while inside: the same figures on any machine."""
    threads, algorithms = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(algorithms)


SCHEDULES = ("constant", "onecycle")


def fit(model, data, *, epochs, lr, batch, seed, weight_decay=0.0, schedule="constant", penalty=None, after_step=None,
        progress=None):
    """Adam (AdamW when ``weight_decay``) on the training split, deterministic for ``seed``, at a constant ``lr`` or
    a one-cycle schedule peaking at it; ``penalty(relu_outputs)`` (a ``Net``'s captured ReLU outputs) is added to
    the loss, and ``after_step(model)`` runs after each update. A ``Net`` with ``train_shift`` has each batch
    rolled by a random shift of up to that many pixels."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; schedules are {', '.join(SCHEDULES)}")
    shift = getattr(model, "train_shift", 0)
    with deterministic():
        torch.manual_seed(seed)
        opt = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay) if weight_decay
               else torch.optim.Adam(model.parameters(), lr=lr))
        steps = epochs * -(-len(data.x_train) // batch)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps) if schedule == "onecycle" else None
        x = float_images(data.x_train)
        y = torch.from_numpy(data.y_train)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs) if progress is None else progress(range(epochs)):
            model.train()
            for idx in torch.randperm(len(x), generator=gen).split(batch):
                xb = x[idx]
                if shift:
                    xb = torch.roll(xb, torch.randint(-shift, shift + 1, (2,), generator=gen).tolist(), (2, 3))
                opt.zero_grad()
                if penalty is None:
                    loss = nn.functional.cross_entropy(model(xb), y[idx])
                else:
                    captured = []
                    loss = nn.functional.cross_entropy(model(xb, capture=captured), y[idx]) + penalty(captured)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                if after_step is not None:
                    with torch.no_grad():
                        after_step(model)
        model.eval()
    return model


def train(cfg, data, *, progress=None):
    """A fresh network trained for ``cfg.epochs``; deterministic for a given cfg.seed."""
    return fit(build(cfg), data, epochs=cfg.epochs, lr=cfg.lr, batch=cfg.batch, seed=cfg.seed,
               weight_decay=cfg.weight_decay, schedule=cfg.schedule, progress=progress)


def accuracy(model, x_q, y):
    with torch.no_grad(), deterministic():
        return float((model(float_images(x_q)).argmax(1).numpy() == y).mean())


def load_or_train(cfg, data, cache_dir, *, progress=None):
    """The model for ``cfg``, from ``cache_dir`` when a checkpoint keyed by cfg exists, else trained and saved."""
    return load_or_make(Path(cache_dir) / f"{cfg.network}_cnn-{cfg.key()}.pt", build(cfg),
                        lambda: train(cfg, data, progress=progress))
