"""A trained network as the flows use it: cached training, INT8 export (its layers' real inputs: ``activations``).

torch, the data sets and the ONNX importer load when a network does, so that importing this module (the drivers,
the command line) costs nothing."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from golden.checks import InputError, refuse_unknown

from .npz import input_file, read_npz
from .runner import REPO

if TYPE_CHECKING:
    from models.datasets import Dataset
    from models.quantize import QuantizedNet

__all__ = ["CACHE", "Network", "count_test_images", "check_images", "load_network", "load_onnx_network", "onnx_key"]

CACHE = REPO / "reports" / "cache"


@dataclass(frozen=True)
class Network:
    """A network as the techniques take it: its data, float model (the base every technique derives from), the key
    of what produced that model (for the checkpoints derived from it), its INT8 form and accuracies, how it is
    described in a summary (``meta``) and whether fine-tuning is possible (``post_training`` when no training
    data came with it: techniques then apply pruning and constraints without retraining, and say so)."""

    name: str
    data: Dataset
    model: object
    key: str
    qnet: QuantizedNet
    float_accuracy: float
    int8_accuracy: float
    meta: dict
    post_training: bool = False
    reused: bool = True
    fine_tune: int | None = None

    def fine_tune_epochs(self, epochs):
        """Epochs of a technique's fine-tuning whose own default is ``epochs``: the network's (``fine_tune``, from
        ``models.networks.FINE_TUNE_EPOCHS``) where it sets them, none for a post-training network."""
        return 0 if self.post_training else self.fine_tune or epochs

    def trained(self, training):
        """How a derived model was made, for logs and reports: ``training`` (e.g. "fine-tuned"), or "post-training"
        (pruned and constrained without retraining) when no training data came with the network."""
        return "post-training" if self.post_training else training


def count_test_images(network):
    """How many test images the built-in ``network``'s data set holds (without loading it)."""
    from models.datasets import TEST_IMAGES
    from models.networks import NETWORKS, check_network

    return TEST_IMAGES[NETWORKS[check_network(network)][0]]


def check_images(images, available, what="images"):
    """Refuse ``images`` unless it is an integer from 1 to ``available`` (the test images there are)."""
    if isinstance(images, bool) or not isinstance(images, int) or not 1 <= images <= available:
        raise InputError(f"{what} must be between 1 and the {available} test images, not {images!r}")
    return images


def load_network(name="digits", *, cfg=None, log=print):
    """The built-in network ``name`` trained (or the checkpoint keyed by ``cfg`` reused), quantized, with its
    test accuracy."""
    from tqdm import tqdm

    from models import cnn
    from models.datasets import DATASETS
    from models.networks import FINE_TUNE_EPOCHS
    from models.quantize import quantize

    cfg = cfg or cnn.CnnConfig.of(name)
    start = time.perf_counter()
    data = DATASETS[cfg.dataset]()
    model, reused = cnn.load_or_train(cfg, data, CACHE, progress=lambda it: tqdm(it, desc="train", leave=False))
    qnet = quantize(model, data.x_train)
    net = Network(cfg.network, data, model, cfg.key(), qnet, cnn.accuracy(model, data.x_test, data.y_test),
                  qnet.accuracy(data.x_test, data.y_test),
                  {"name": cfg.network, "channels": list(cfg.channels), "epochs": cfg.epochs, "seed": cfg.seed},
                  reused=reused, fine_tune=FINE_TUNE_EPOCHS.get(cfg.network))
    log(f"network: {'reused' if reused else 'trained'} {cfg.network} CNN {cfg.channels} in "
        f"{time.perf_counter() - start:.1f} s; test accuracy float {net.float_accuracy:.2%}, "
        f"INT8 {net.int8_accuracy:.2%}")
    return net


def _float_images(data, key, shape):
    x = data[key]
    if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != shape or not len(x):
        raise InputError(f"{key} must be float32 [N, {', '.join(map(str, shape))}] as the model takes it, not "
                         f"{x.dtype} {list(x.shape)}")
    if not np.isfinite(x).all():
        raise InputError(f"{key} must be finite (zeroskip's INT8 input is -127..127 at one scale)")
    return x


def _labels(data, key, n, classes):
    """``data[key]`` as int64 [n] class indices below ``classes`` (None: not checked yet)."""
    y = data[key]
    if y.dtype != np.int64 or y.shape != (n,):
        raise InputError(f"{key} must be int64 [{n}] class indices, not {y.dtype} {list(y.shape)}")
    if classes is not None and (y.min() < 0 or y.max() >= classes):
        raise InputError(f"{key} must be class indices 0..{classes - 1} (the model has {classes} outputs), not "
                         f"{y.min()}..{y.max()}")
    return y


def onnx_key(model_path, data_path):
    """What an imported network's derived models and results are keyed by: the bytes of the ONNX model, of every
    external data file its tensors name (torch's exporter keeps the weights beside the model) and of DATA.npz;
    InputError if one of them is not a regular file."""
    model_file, data_file = input_file(model_path, "an ONNX model"), input_file(data_path, "an .npz file")
    from models.onnx_import import external_data  # onnx loads once both files exist

    files = [model_file, *(input_file(path, "an ONNX external data file") for path in external_data(model_path)),
             data_file]
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def load_onnx_network(model_path, data_path, *, log=print):
    """A user's ONNX model with its DATA.npz (docs/flow.md): ``x`` float32 [N, C, H, W] as the model takes it
    (normalised to negative values too: then a signed INT8 input, -127..127 at the scale of the largest magnitude),
    optional ``y`` int64 [N] labels (without them accuracy is top-1 agreement with the float model), optional
    ``x_train``, ``y_train`` for fine-tuning and calibration (without them calibration uses ``x`` and techniques apply
    post-training). InputError or ValueError (one line) before anything runs."""
    from models.onnx_import import io_shapes

    start = time.perf_counter()
    key = onnx_key(model_path, data_path)
    shape, classes = io_shapes(model_path)  # the files are checked before torch loads
    arrays = read_npz(data_path)
    refuse_unknown(data_path, arrays, ("x", "y", "x_train", "y_train"))
    if "x" not in arrays:
        raise InputError(f"{data_path} must hold x (and optionally y, x_train, y_train), not {sorted(arrays)}")
    if ("x_train" in arrays) != ("y_train" in arrays):
        raise InputError(f"{data_path} must hold both x_train and y_train, or neither")
    x = _float_images(arrays, "x", shape)
    x_train = _float_images(arrays, "x_train", shape) if "x_train" in arrays else None
    for labels, n in (("y", len(x)), ("y_train", None if x_train is None else len(x_train))):
        if labels in arrays:
            _labels(arrays, labels, n, classes)
    import torch

    from models.datasets import Dataset
    from models.onnx_import import load_onnx
    from models.quantize import quantize

    model, _ = load_onnx(model_path)
    scale = float(max(np.abs(x).max(), 0 if x_train is None else np.abs(x_train).max())) / 127 or 1.0
    model.input_scale = scale * 127

    def quantized(images):
        return np.clip(np.floor(images / scale + 0.5), -127, 127).astype(np.int8)

    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    float_top1, classes = logits.argmax(1).numpy(), logits.shape[1]
    y = _labels(arrays, "y", len(x), classes) if "y" in arrays else float_top1
    train = ((quantized(x_train), _labels(arrays, "y_train", len(x_train), classes)) if x_train is not None
             else (quantized(x), y))
    data = Dataset(f"{Path(data_path).name} ({len(x)} images{'' if 'y' in arrays else ', float top-1 as labels'})",
                   *train, quantized(x), y)
    qnet = quantize(model, data.x_train)
    net = Network(Path(model_path).stem, data, model, key, qnet, float((float_top1 == y).mean()),
                  qnet.accuracy(data.x_test, data.y_test),
                  {"name": Path(model_path).name, "onnx_sha256_12": key, "input_scale": scale,
                   "signed_input": bool((data.x_test < 0).any() or (data.x_train < 0).any()),
                   "labels": "y" if "y" in arrays else "float model top-1"}, post_training=x_train is None)
    log(f"network: imported {Path(model_path).name} ({len(qnet.computes)} compute layers) in "
        f"{time.perf_counter() - start:.1f} s; accuracy float {net.float_accuracy:.2%}, INT8 {net.int8_accuracy:.2%}"
        + ("; no training data: techniques apply post-training" if net.post_training else ""))
    return net
