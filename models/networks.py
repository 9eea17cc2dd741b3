"""The built-in networks by name: their data set, layers and default training settings (``CnnConfig``), as data
without torch, so that a command checks a network's name, its layers' names or its test images before it loads
anything; ``models.cnn`` builds and trains them."""

import hashlib
import json
from dataclasses import asdict, dataclass

from golden.checks import InputError

__all__ = ["NETWORKS", "FINE_TUNE_EPOCHS", "CnnConfig", "check_network"]


def _digits(cfg):
    chans = (1, *cfg.channels)
    convs = [layer for i in range(len(chans) - 1) for layer in (("Conv2d", chans[i], chans[i + 1], 3, 1, 1), ("ReLU",))]
    return [*convs, ("Flatten",), ("Linear", chans[-1] * 64, 10)]


def _lenet5(cfg):
    c1, c2, f1, f2 = cfg.channels
    return [("Conv2d", 1, c1, 5), ("ReLU",), ("MaxPool2d", 2), ("Conv2d", c1, c2, 5), ("ReLU",), ("MaxPool2d", 2),
            ("Flatten",), ("Linear", c2 * 16, f1), ("ReLU",), ("Linear", f1, f2), ("ReLU",), ("Linear", f2, 10)]


def _basic_block(c_in, c_out, stride):
    """ResNet's basic block: two 3x3 conv + BatchNorm, the identity shortcut or a 1x1 projection (stride, width)."""
    body = [("Conv2d", c_in, c_out, 3, stride, 1, {"bias": False}), ("BatchNorm2d", c_out), ("ReLU",),
            ("Conv2d", c_out, c_out, 3, 1, 1, {"bias": False}), ("BatchNorm2d", c_out)]
    shortcut = [] if stride == 1 and c_in == c_out else [("Conv2d", c_in, c_out, 1, stride, 0, {"bias": False}),
                                                         ("BatchNorm2d", c_out)]
    return [("Residual", body, shortcut), ("ReLU",)]


def _resnet(cfg):
    """A 3x3 stem at stride 2 (28x28 -> 14x14), one basic block per width (the later ones at stride 2 with a 1x1
    projection), global average pooling, the classifier."""
    widths = (cfg.channels[0], *cfg.channels)
    blocks = [layer for i in range(1, len(widths))
              for layer in _basic_block(widths[i - 1], widths[i], 1 if i == 1 else 2)]
    return [("Conv2d", 1, widths[0], 3, 2, 1, {"bias": False}), ("BatchNorm2d", widths[0]), ("ReLU",), *blocks,
            ("AdaptiveAvgPool2d", 1), ("Flatten",), ("Linear", widths[-1], 10)]


def _separable(c_in, c_out, stride):
    """MobileNet's block: a depthwise 3x3 (one filter per channel) and a pointwise 1x1, each with BatchNorm, ReLU6."""
    return [("Conv2d", c_in, c_in, 3, stride, 1, {"groups": c_in, "bias": False}), ("BatchNorm2d", c_in), ("ReLU6",),
            ("Conv2d", c_in, c_out, 1, {"bias": False}), ("BatchNorm2d", c_out), ("ReLU6",)]


def _mobilenet(cfg):
    """A 3x3 stem at stride 2, depthwise-separable blocks (stride 2 where the width doubles after the first),
    global average pooling, the classifier."""
    widths = cfg.channels
    blocks = [layer for i in range(1, len(widths)) for layer in
              _separable(widths[i - 1], widths[i], 2 if i > 1 and widths[i] > widths[i - 1] else 1)]
    return [("Conv2d", 1, widths[0], 3, 2, 1, {"bias": False}), ("BatchNorm2d", widths[0]), ("ReLU6",), *blocks,
            ("AdaptiveAvgPool2d", 1), ("Flatten",), ("Linear", widths[-1], 10)]


def _flat(layers):
    """The layers in the INT8 network's order: a residual block's body, then its shortcut."""
    for layer in layers:
        yield from _flat([*layer[1], *layer[2]]) if layer[0] == "Residual" else [layer]


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
    # Fashion-MNIST's residual and depthwise-separable networks, with LeNet-5's optimiser; INT8 accuracy on a
    # held-out tenth of the training images (seed 0, python -m flow.bench.recipes NETWORK):
    # ±1-pixel shifts 93.37%, none 91.95%
    "resnet_fashion": ("fashion", _resnet, {"channels": (16, 32, 64), "epochs": 20, "batch": 64, "lr": 3e-3,
                                            "weight_decay": 1e-2, "schedule": "onecycle", "shift": 1}),
    # ±1-pixel shifts 92.28%, none 90.62%
    "mobilenet_fashion": ("fashion", _mobilenet, {"channels": (16, 32, 64, 128, 128), "epochs": 20, "batch": 64,
                                                  "lr": 3e-3, "weight_decay": 1e-2, "schedule": "onecycle",
                                                  "shift": 1}),
}

# Epochs of the techniques' fine-tuning (pruning, DBB, centrosymmetric retraining) where it is not their own default
# (15): on the 60,000 Fashion-MNIST training images 5 epochs are 4,700 steps of 64 images, more than 15 epochs on
# MNIST's 4,000 (940 steps) or the digits' (340).
FINE_TUNE_EPOCHS = {"resnet_fashion": 5, "mobilenet_fashion": 5}


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
        return cls(network=network, **NETWORKS[check_network(network)][2])

    def layers(self):
        """The network's layers as (torch.nn class name, *arguments), in order (``models.cnn.build`` makes them)."""
        return NETWORKS[self.network][1](self)

    @property
    def dataset(self):
        """The name of the data set it is trained and tested on (``models.datasets.DATASETS``)."""
        return NETWORKS[self.network][0]

    def compute_layers(self):
        """The names of its conv and fc layers, as the INT8 network names them (conv1, ..., fc1, ...)."""
        kinds = [{"Conv2d": "conv", "Linear": "fc"}.get(layer[0]) for layer in _flat(self.layers())]
        return [f"{kind}{kinds[:i + 1].count(kind)}" for i, kind in enumerate(kinds) if kind]

    def key(self):
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]
