"""The built-in networks by name: their data set, layers and default training settings (``CnnConfig``), as data
without torch, so that a command checks a network's name, its layers' names or its test images before it loads
anything; ``models.cnn`` builds and trains them."""

import hashlib
import json
from dataclasses import asdict, dataclass

from golden.checks import InputError

__all__ = ["NETWORKS", "CnnConfig", "check_network"]


def _digits(cfg):
    chans = (1, *cfg.channels)
    convs = [layer for i in range(len(chans) - 1) for layer in (("Conv2d", chans[i], chans[i + 1], 3, 1, 1), ("ReLU",))]
    return [*convs, ("Flatten",), ("Linear", chans[-1] * 64, 10)]


def _lenet5(cfg):
    c1, c2, f1, f2 = cfg.channels
    return [("Conv2d", 1, c1, 5), ("ReLU",), ("MaxPool2d", 2), ("Conv2d", c1, c2, 5), ("ReLU",), ("MaxPool2d", 2),
            ("Flatten",), ("Linear", c2 * 16, f1), ("ReLU",), ("Linear", f1, f2), ("ReLU",), ("Linear", f2, 10)]


NETWORKS = {  # name: (data set, layers of a CnnConfig as (torch.nn class name, *its arguments), training settings)
    "digits": ("digits", _digits, {"channels": (16, 32, 32), "epochs": 40}),
    # chosen on a validation split held out of the training images (mean INT8 accuracy of seeds 0-2, 3,200
    # training images): Adam, 20 epochs 97.6%; + ±2-pixel shifts, AdamW, one-cycle, batch 32, 30 epochs 98.3%
    "lenet5": ("mnist", _lenet5, {"channels": (6, 16, 120, 84), "epochs": 30, "shift": 2, "batch": 32, "lr": 3e-3,
                                  "weight_decay": 1e-2, "schedule": "onecycle"}),
    # LeNet-5's recipe without shifts: INT8 accuracy on a held-out tenth of the training images (seed 0,
    # python -m flow.bench.recipes lenet5_fashion) 90.88%; with ±2-pixel shifts 90.75%, ±1 and 15 epochs 90.65%
    "lenet5_fashion": ("fashion", _lenet5, {"channels": (6, 16, 120, 84), "epochs": 30, "batch": 32, "lr": 3e-3,
                                            "weight_decay": 1e-2, "schedule": "onecycle"}),
}


def check_network(network):
    """``network`` if it names a built-in network, else a one-line ``InputError`` naming them."""
    if not isinstance(network, str) or network not in NETWORKS:
        raise InputError(f"unknown network {network!r}; networks are {', '.join(NETWORKS)}")
    return network


@dataclass(frozen=True)
class CnnConfig:
    network: str = "digits"
    channels: tuple = (16, 32, 32)
    epochs: int = 40
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    shift: int = 0  # training augmentation: random shifts of each batch by up to this many pixels
    weight_decay: float = 0.0  # > 0: AdamW with this decoupled weight decay, else Adam
    schedule: str = "constant"  # learning rate: "constant" or "onecycle" (peak lr, torch's OneCycleLR)

    @classmethod
    def of(cls, network):
        """The built-in network's training settings."""
        return cls(network=check_network(network), **NETWORKS[network][2])

    def layers(self):
        """The network's layers as (torch.nn class name, *arguments), in order (``models.cnn.build`` makes them)."""
        return NETWORKS[self.network][1](self)

    def compute_layers(self):
        """The names of its conv and fc layers, as the INT8 network names them (conv1, ..., fc1, ...)."""
        kinds = [{"Conv2d": "conv", "Linear": "fc"}.get(layer[0]) for layer in self.layers()]
        return [f"{kind}{kinds[:i + 1].count(kind)}" for i, kind in enumerate(kinds) if kind]

    def key(self):
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]
