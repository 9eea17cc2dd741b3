"""A trained network as the flows use it: cached training, INT8 export, real layer inputs."""

import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from golden.dbb import channel_blocks
from models import cnn, digits
from models.quantize import QuantizedNet, quantize

from .runner import REPO

__all__ = ["CACHE", "Network", "load_network", "conv_inputs", "dap_layer_blocks"]

CACHE = REPO / "reports" / "cache"


@dataclass(frozen=True)
class Network:
    name: str
    data: digits.Digits
    qnet: QuantizedNet
    float_accuracy: float
    int8_accuracy: float
    cnn: cnn.CnnConfig
    reused: bool


def load_network(cfg=None, *, log=print):
    """Train (or reuse the checkpoint keyed by ``cfg``), quantize, and measure test accuracy."""
    cfg = cfg or cnn.CnnConfig()
    start = time.perf_counter()
    data = digits.load()
    model, reused = cnn.load_or_train(cfg, data, CACHE, progress=lambda it: tqdm(it, desc="train", leave=False))
    qnet = quantize(model, data.x_train)
    net = Network("digits", data, qnet, cnn.accuracy(model, data.x_test, data.y_test),
                  qnet.accuracy(data.x_test, data.y_test), cfg, reused)
    log(f"network: {'reused' if reused else 'trained'} digits CNN {cfg.channels} in "
        f"{time.perf_counter() - start:.1f} s; test accuracy float {net.float_accuracy:.2%}, "
        f"INT8 {net.int8_accuracy:.2%}")
    return net


def conv_inputs(qnet, images, **kw):
    """{conv layer name: int8 [n_images, C, H, W]} of the real activations entering each conv layer."""
    per_image = [qnet.forward(img, **kw)[1] for img in images]
    return {name: np.stack([inputs[name] for inputs in per_image]) for name in per_image[0]}


def dap_layer_blocks(activations, bz):
    """All images' activation blocks of one layer (docs/conventions.md channel blocking), int8 [n, bz]."""
    return np.concatenate([channel_blocks(x, bz) for x in activations])
