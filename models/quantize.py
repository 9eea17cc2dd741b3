"""Symmetric INT8 post-training quantization and the integer-only network (docs/conventions.md), via golden's rules."""

import math
from dataclasses import dataclass

import numpy as np
import torch

from golden.conv import conv2d, linear
from golden.dbb import dap_activations
from golden.quant import fits, requantize

__all__ = ["QLayer", "QuantizedNet", "quantize", "multiplier"]


@dataclass(frozen=True)
class QLayer:
    """One integer layer: ``kind`` 'conv' (w int8 [F, C, R, S]) or 'fc' (w int8 [n_out, n_in]).

    ReLU layers requantize with (mult, shift) to 0..127; the classifier returns its int32 accumulators.
    """

    name: str
    kind: str
    w: np.ndarray
    bias: np.ndarray
    pad: int = 0
    stride: int = 1
    relu: bool = True
    mult: int = 0
    shift: int = 0


@dataclass(frozen=True)
class QuantizedNet:
    layers: tuple

    @property
    def convs(self):
        return [layer for layer in self.layers if layer.kind == "conv"]

    def forward(self, x, *, nnz_a=None, bz=8, acc_width=32):
        """Logits (int64 [10]) of one int8 [1, 8, 8] image, and each conv layer's int8 input (before DAP).

        ``nnz_a`` (a dict: conv layer name -> nnz) applies DAP to those layers' inputs.
        Raises OverflowError if an accumulator leaves ``acc_width`` bits (flows assert none does).
        """
        conv_inputs = {}
        for layer in self.layers:
            if layer.kind == "conv":
                conv_inputs[layer.name] = x
                if nnz_a and layer.name in nnz_a:
                    x = dap_activations(x, nnz_a[layer.name], bz)
                acc = conv2d(x, layer.w, pad=layer.pad, stride=layer.stride, bias=layer.bias, acc_width=64)
            else:
                acc = linear(x.reshape(-1), layer.w, bias=layer.bias, acc_width=64)
            if not fits(acc, acc_width):
                raise OverflowError(f"layer {layer.name} overflows a {acc_width}-bit accumulator")
            x = requantize(acc, layer.mult, layer.shift) if layer.relu else acc
        return x, conv_inputs

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


def quantize(model, calibration_images, *, percentile=99.99):
    """Per-tensor symmetric weights; activation scales from post-ReLU ``percentile`` on calibration images."""
    captured = []
    with torch.no_grad():
        model(torch.from_numpy(calibration_images.astype(np.float32) / 127), capture=captured)
    out_scales = [max(float(np.percentile(a.numpy(), percentile)), 1e-6) / 127 for a in captured]
    in_scale = 1 / 127
    layers = []
    for i, conv in enumerate(model.convs):
        w, w_scale = _quantize_weights(conv.weight.detach().numpy().astype(np.float64))
        acc_scale = w_scale * in_scale
        bias = np.round(conv.bias.detach().numpy() / acc_scale).astype(np.int32)
        mult, shift = multiplier(acc_scale / out_scales[i])
        layers.append(QLayer(name=f"conv{i + 1}", kind="conv", w=w, bias=bias, pad=conv.padding[0],
                             stride=conv.stride[0], mult=mult, shift=shift))
        in_scale = out_scales[i]
    w, w_scale = _quantize_weights(model.fc.weight.detach().numpy().astype(np.float64))
    bias = np.round(model.fc.bias.detach().numpy() / (w_scale * in_scale)).astype(np.int32)
    layers.append(QLayer(name="fc", kind="fc", w=w, bias=bias, relu=False, mult=1, shift=1))
    return QuantizedNet(tuple(layers))
