"""Symmetric INT8 post-training quantization and the integer-only network (docs/conventions.md), via golden's rules.
The integer network is numpy; torch loads when ``quantize`` runs."""

import math
from dataclasses import dataclass

import numpy as np

from golden.conv import conv2d, linear, pool2d
from golden.dbb import dap_activations
from golden.quant import fits, requantize

__all__ = ["QLayer", "QuantizedNet", "quantize", "multiplier", "CALIBRATION_IMAGES"]


@dataclass(frozen=True)
class QLayer:
    """One integer layer. ``kind`` 'conv' (w int8 [F, C, R, S]) or 'fc' (w int8 [n_out, n_in]): compute layers;
    ReLU ones requantize with (mult, shift) to 0..127, the classifier returns its int32 accumulators.
    'maxpool' / 'avgpool' (``kernel`` (kh, kw), ``stride``, ``pad``; ``golden.conv.pool2d``) and 'flatten'
    move int8 activations at an unchanged scale.
    """

    name: str
    kind: str
    w: np.ndarray | None = None
    bias: np.ndarray | None = None
    pad: int = 0
    stride: int = 1
    relu: bool = True
    mult: int = 0
    shift: int = 0
    kernel: tuple = ()


@dataclass(frozen=True)
class QuantizedNet:
    layers: tuple

    @property
    def convs(self):
        return [layer for layer in self.layers if layer.kind == "conv"]

    @property
    def computes(self):
        """The conv and fc layers, in order."""
        return [layer for layer in self.layers if layer.kind in ("conv", "fc")]

    @staticmethod
    def move(layer, x):
        """A pooling or flatten layer applied to int8 activations."""
        if layer.kind == "flatten":
            return x.reshape(-1)
        kernel = layer.kernel or x.shape[1:]  # global average pooling: the whole plane
        return pool2d(x, layer.kind[:3], kernel=kernel, stride=layer.stride, pad=layer.pad)

    def forward(self, x, *, nnz_a=None, bz=None, acc_width=32, layers=None):
        """Logits (int64 [n_classes]) of one int8 [C, H, W] image, and each compute layer's int8 input (conv
        inputs before DAP; fc inputs flattened).

        ``nnz_a`` (a dict: conv layer name -> nnz) applies DAP with blocks of ``bz`` (the preset's, required with
        ``nnz_a``) to those layers' inputs.
        ``layers`` (default all) runs a part of the network. Raises OverflowError if an accumulator leaves
        ``acc_width`` bits (flows assert none does).
        """
        if nnz_a and bz is None:
            raise ValueError("nnz_a needs bz, the block size of the preset that applies DAP")
        inputs = {}
        for layer in self.layers if layers is None else layers:
            if layer.kind not in ("conv", "fc"):
                x = self.move(layer, x)
                continue
            if layer.kind == "conv":
                inputs[layer.name] = x
                if nnz_a and layer.name in nnz_a:
                    x = dap_activations(x, nnz_a[layer.name], bz)
                acc = conv2d(x, layer.w, pad=layer.pad, stride=layer.stride, bias=layer.bias, acc_width=64)
            else:
                x = x.reshape(-1)
                inputs[layer.name] = x
                acc = linear(x, layer.w, bias=layer.bias, acc_width=64)
            if not fits(acc, acc_width):
                raise OverflowError(f"layer {layer.name} overflows a {acc_width}-bit accumulator")
            x = requantize(acc, layer.mult, layer.shift) if layer.relu else acc
        return x, inputs

    def predict(self, images, **kw):
        return np.array([int(np.argmax(self.forward(img, **kw)[0])) for img in images])

    def accuracy(self, images, labels, **kw):
        return float((self.predict(images, **kw) == labels).mean())


def multiplier(scale):
    """(mult, shift) with mult in [2**30, 2**31) and mult / 2**shift ~= scale."""
    if scale <= 0:
        raise ValueError(f"scale must be positive, not {scale}")
    shift = 30 - math.floor(math.log2(scale))
    mult = round(scale * 2.0**shift)
    if mult >= 1 << 31:
        mult, shift = mult // 2, shift - 1
    if not 1 <= shift <= 62:
        raise ValueError(f"scale {scale} needs shift {shift}, outside 1..62")
    return mult, shift


def _quantize_weights(w):
    scale = float(np.abs(w).max()) / 127 or 1.0
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale


def _square(module, name):
    """An int from a torch int-or-pair parameter that must be equal in both dimensions."""
    value = getattr(module, name)
    pair = value if isinstance(value, tuple) else (value, value)
    if pair[0] != pair[1] or not isinstance(pair[0], int):
        raise ValueError(f"{type(module).__name__} with {name} {value} is not supported (square {name} only)")
    return pair[0]


def _fold_bn(w, b, bn):
    """Conv weights and bias with a following BatchNorm2d (eval statistics) folded in."""
    gain = (bn.weight.detach().numpy() / np.sqrt(bn.running_var.numpy() + bn.eps)).astype(np.float64)
    return w * gain[:, None, None, None], (b - bn.running_mean.numpy()) * gain + bn.bias.detach().numpy()


CALIBRATION_IMAGES = 5000  # at most this many of the calibration images set the activation scales


def quantize(model, calibration_images, *, percentile=99.99):
    """Per-tensor symmetric weights, BatchNorm folded into its conv; activation scales from each ReLU's output
    ``percentile`` on the first ``CALIBRATION_IMAGES`` calibration images. Every compute layer but the last must
    be followed by a ReLU."""
    import torch
    from torch import nn

    from .cnn import deterministic

    captured = []
    with torch.no_grad(), deterministic():
        model(torch.from_numpy(calibration_images[:CALIBRATION_IMAGES].astype(np.float32) / 127), capture=captured)
    out_scales = iter([max(float(np.percentile(a.numpy(), percentile)), 1e-6) / 127 for a in captured])
    modules = [m for m in model.layers if not isinstance(m, (nn.Dropout, nn.Identity))]
    last = max(i for i, m in enumerate(modules) if isinstance(m, (nn.Conv2d, nn.Linear)))
    in_scale, layers, i, count = model.input_scale / 127, [], 0, {"conv": 0, "fc": 0, "pool": 0}
    while i < len(modules):
        m = modules[i]
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            kind = "conv" if isinstance(m, nn.Conv2d) else "fc"
            w = m.weight.detach().numpy().astype(np.float64)
            b = m.bias.detach().numpy().astype(np.float64) if m.bias is not None else np.zeros(len(w))
            if kind == "conv":
                if m.groups != 1 or _square(m, "dilation") != 1 or m.padding_mode != "zeros":
                    raise ValueError("Conv2d with groups, dilation or non-zero padding is not supported")
                if i + 1 < len(modules) and isinstance(modules[i + 1], nn.BatchNorm2d):
                    i += 1
                    w, b = _fold_bn(w, b, modules[i])
            relu = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
            if not relu and i != last:
                raise ValueError(f"{kind} layer {count[kind] + 1} is not followed by a ReLU and is not the classifier")
            count[kind] += 1
            wq, w_scale = _quantize_weights(w)
            acc_scale = w_scale * in_scale
            bias = np.round(b / acc_scale).astype(np.int32)
            name = f"{kind}{count[kind]}"
            if relu:
                out_scale = next(out_scales)
                mult, shift = multiplier(acc_scale / out_scale)
                layers.append(QLayer(name=name, kind=kind, w=wq, bias=bias, mult=mult, shift=shift,
                                     **({"pad": _square(m, "padding"), "stride": _square(m, "stride")}
                                        if kind == "conv" else {})))
                in_scale, i = out_scale, i + 2
            else:
                layers.append(QLayer(name=name, kind=kind, w=wq, bias=bias, relu=False, mult=1, shift=1))
                i += 1
            continue
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            if m.ceil_mode or isinstance(m, nn.MaxPool2d) and _square(m, "dilation") != 1:
                raise ValueError(f"{type(m).__name__} with ceil_mode or dilation is not supported")
            if isinstance(m, nn.AvgPool2d) and not m.count_include_pad and _square(m, "padding"):
                raise ValueError("AvgPool2d with padding and count_include_pad=False is not supported")
            k = _square(m, "kernel_size")
            kind = "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool"
            count["pool"] += 1
            layers.append(QLayer(name=f"pool{count['pool']}", kind=kind, kernel=(k, k), stride=_square(m, "stride"),
                                 pad=_square(m, "padding")))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
            if size != (1, 1):
                raise ValueError(f"AdaptiveAvgPool2d to {size} is not supported (global average pooling only)")
            count["pool"] += 1
            layers.append(QLayer(name=f"pool{count['pool']}", kind="avgpool", kernel=(), stride=1))
        elif isinstance(m, nn.Flatten):
            layers.append(QLayer(name="flatten", kind="flatten"))
        else:
            raise ValueError(f"{type(m).__name__} at layer {i} is not supported there")
        i += 1
    return QuantizedNet(tuple(layers))
