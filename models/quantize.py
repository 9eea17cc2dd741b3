"""Symmetric INT8 post-training quantization and the integer-only network (docs/conventions.md), via golden's rules.
The integer network is numpy; torch loads when ``quantize`` runs."""

import math
from dataclasses import dataclass

import numpy as np

from golden.conv import conv2d, linear, pool2d
from golden.dbb import dap_activations
from golden.quant import fits, requantize, residual_add

__all__ = ["QLayer", "QuantizedNet", "quantize", "multiplier", "CALIBRATION_IMAGES"]


@dataclass(frozen=True)
class QLayer:
    """One integer layer. ``kind`` 'conv' (w int8 [F, C / groups, R, S]; ``groups`` > 1 grouped or depthwise) or
    'fc' (w int8 [n_out, n_in]): compute layers; ReLU ones requantize with (mult, shift) to 0..127, the others (the
    classifier, a conv feeding a residual Add) return their int32 accumulators. 'maxpool' / 'avgpool' (``kernel``
    (kh, kw), ``stride``, ``pad``; ``golden.conv.pool2d``) and 'flatten' move int8 activations at an unchanged
    scale. 'add' is a residual Add of its ``inputs``, each rescaled by its (mult, shift) in ``scales``
    (``golden.quant.residual_add``), then ReLU'd.

    ``inputs``: the names of the layers whose outputs it takes ("input": the image); empty, the layer before it.
    """

    name: str
    kind: str
    w: np.ndarray | None = None
    bias: np.ndarray | None = None
    pad: int = 0
    stride: int = 1
    relu: bool = True
    mult: int | np.ndarray = 0   # one, or one per output channel (int64 [F]: per-channel weight scales)
    shift: int | np.ndarray = 0
    kernel: tuple = ()
    groups: int = 1
    inputs: tuple = ()
    scales: tuple = ()


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

    def role(self, layer):
        """What compute ``layer`` is, for the reports: "fc"; "depthwise" (groups > 1, one input channel per group) or
        "grouped"; "residual conv" (its output feeds a residual Add); "pointwise" (1×1); else "conv"."""
        if layer.kind == "fc":
            return "fc"
        if layer.groups > 1:
            return "depthwise" if layer.w.shape[1] == 1 else "grouped"
        if not layer.relu and any(other.kind == "add" and layer.name in other.inputs for other in self.layers):
            return "residual conv"
        return "pointwise" if layer.w.shape[2:] == (1, 1) else "conv"

    @staticmethod
    def move(layer, x):
        """A pooling or flatten layer applied to int8 activations."""
        if layer.kind == "flatten":
            return x.reshape(-1)
        kernel = layer.kernel or x.shape[1:]  # global average pooling: the whole plane
        return pool2d(x, layer.kind[:3], kernel=kernel, stride=layer.stride, pad=layer.pad)

    def forward(self, x, *, nnz_a=None, bz=None, acc_width=32, compute=None):
        """Logits (int64 [n_classes]) of one int8 [C, H, W] image, and each compute layer's int8 input (conv
        inputs before DAP; fc inputs flattened).

        ``nnz_a`` (a dict: conv layer name -> nnz) applies DAP with blocks of ``bz`` (the preset's, required with
        ``nnz_a``) to those layers' inputs.
        ``compute(layer, x)``, if given, is asked first for each compute layer's output on its input ``x`` (a
        technique that changes what a layer computes, e.g. skips neurons); None keeps the exact one. Raises
        OverflowError if an accumulator leaves ``acc_width`` bits (flows assert none does).
        """
        if nnz_a and bz is None:
            raise ValueError("nnz_a needs bz, the block size of the preset that applies DAP")
        inputs, outputs = {}, {"input": x}
        for layer in self.layers:
            if layer.inputs:
                x = [outputs[name] for name in layer.inputs] if layer.kind == "add" else outputs[layer.inputs[0]]
            replaced = None
            if layer.kind in ("conv", "fc") and compute is not None:
                inputs[layer.name] = x if layer.kind == "conv" else x.reshape(-1)
                replaced = compute(layer, inputs[layer.name])
            if replaced is not None:
                x = replaced
            elif layer.kind == "add":
                x = residual_add(x, layer.scales, relu=layer.relu)
            elif layer.kind not in ("conv", "fc"):
                x = self.move(layer, x)
            else:
                if layer.kind == "conv":
                    inputs[layer.name] = x
                    if nnz_a and layer.name in nnz_a:
                        x = dap_activations(x, nnz_a[layer.name], bz)
                    acc = conv2d(x, layer.w, pad=layer.pad, stride=layer.stride, bias=layer.bias, acc_width=64,
                                 groups=layer.groups)
                else:
                    x = x.reshape(-1)
                    inputs[layer.name] = x
                    acc = linear(x, layer.w, bias=layer.bias, acc_width=64)
                if not fits(acc, acc_width):
                    raise OverflowError(f"layer {layer.name} overflows a {acc_width}-bit accumulator")
                x = requantize(acc, layer.mult, layer.shift) if layer.relu else acc
            outputs[layer.name] = x
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


def _quantize_weights(w, per_channel=False):
    """(int8 weights, scale): one scale, or one per filter (``per_channel``: float64 [F])."""
    if per_channel:
        scale = np.abs(w).reshape(len(w), -1).max(axis=1) / 127
        scale[scale == 0] = 1.0
        return np.clip(np.round(w / scale.reshape(-1, *[1] * (w.ndim - 1))), -127, 127).astype(np.int8), scale
    scale = float(np.abs(w).max()) / 127 or 1.0
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale


def _multipliers(scale):
    """``multiplier`` of a scale, or (mult, shift) int64 arrays of per-channel scales."""
    if np.ndim(scale) == 0:
        return multiplier(float(scale))
    pairs = [multiplier(float(s)) for s in scale]
    return tuple(np.array(values, dtype=np.int64) for values in zip(*pairs))


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
    """Symmetric weights, per tensor (per filter for a grouped or depthwise conv, whose filters' ranges differ most:
    its (mult, shift) one per channel), BatchNorm folded into its conv; activation scales from each ReLU's (ReLU6's)
    output ``percentile`` on the first ``CALIBRATION_IMAGES`` calibration images. Every compute layer but the last
    must be followed by a ReLU, or end a residual block's branch (its Add rescales the int32 accumulators; the
    block must be followed by a ReLU)."""
    import torch

    from .cnn import deterministic

    captured = []
    with torch.no_grad(), deterministic():
        model(torch.from_numpy(calibration_images[:CALIBRATION_IMAGES].astype(np.float32) / 127), capture=captured)
    out_scales = iter([max(float(np.percentile(a.numpy(), percentile)), 1e-6) / 127 for a in captured])
    builder = _Builder(out_scales)
    builder.chain(model.layers, model.input_scale / 127, "input", open_end=True)
    return QuantizedNet(tuple(builder.layers))


class _Builder:
    """The integer layers of a torch ``Net``, in execution order (a residual block: body, shortcut, Add)."""

    def __init__(self, out_scales):
        self.layers, self.out_scales, self.count = [], out_scales, {"conv": 0, "fc": 0, "pool": 0, "add": 0}

    def _name(self, kind):
        self.count[kind] += 1
        return f"{kind}{self.count[kind]}"

    def _add(self, layer, source):
        """Append ``layer`` taking ``source``'s output (named when it is not the layer before)."""
        previous = self.layers[-1].name if self.layers else "input"
        if source != previous and layer.kind != "add":
            layer = QLayer(**{**layer.__dict__, "inputs": (source,)})
        self.layers.append(layer)
        return layer.name

    def chain(self, modules, scale, source, *, open_end):
        """Quantize ``modules`` applied to ``source``'s output at ``scale``; returns (scale, source) of the result.
        ``open_end``: the last compute layer may have no ReLU (the classifier, a residual branch's last conv), its
        output then int32 accumulators at their own scale."""
        from torch import nn

        from .cnn import Residual

        modules = [m for m in modules if not isinstance(m, (nn.Dropout, nn.Identity))]
        computes = [i for i, m in enumerate(modules) if isinstance(m, (nn.Conv2d, nn.Linear))]
        i = 0
        while i < len(modules):
            m = modules[i]
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                kind, last = "conv" if isinstance(m, nn.Conv2d) else "fc", i == computes[-1]
                w = m.weight.detach().numpy().astype(np.float64)
                b = m.bias.detach().numpy().astype(np.float64) if m.bias is not None else np.zeros(len(w))
                geometry = {}
                if kind == "conv":
                    if _square(m, "dilation") != 1 or m.padding_mode != "zeros":
                        raise ValueError("Conv2d with dilation or non-zero padding is not supported")
                    if i + 1 < len(modules) and isinstance(modules[i + 1], nn.BatchNorm2d):
                        i += 1
                        w, b = _fold_bn(w, b, modules[i])
                    geometry = {"pad": _square(m, "padding"), "stride": _square(m, "stride"), "groups": m.groups}
                relu = i + 1 < len(modules) and isinstance(modules[i + 1], (nn.ReLU, nn.ReLU6))
                if not relu and not (open_end and last):
                    raise ValueError(f"{kind} layer {self.count[kind] + 1} is not followed by a ReLU and is not the "
                                     "classifier or the end of a residual branch")
                wq, w_scale = _quantize_weights(w, per_channel=geometry.get("groups", 1) > 1)
                acc_scale = w_scale * scale
                bias = np.round(b / acc_scale).astype(np.int32)
                name = self._name(kind)
                if relu:  # ReLU6: the output scale is calibrated on values <= 6, so 0..127 holds the clamp at 6
                    out_scale = next(self.out_scales)
                    mult, shift = _multipliers(acc_scale / out_scale)
                    source = self._add(QLayer(name=name, kind=kind, w=wq, bias=bias, mult=mult, shift=shift,
                                              **geometry), source)
                    scale, i = out_scale, i + 2
                else:
                    source = self._add(QLayer(name=name, kind=kind, w=wq, bias=bias, relu=False, mult=1, shift=1,
                                              **geometry), source)
                    scale, i = acc_scale, i + 1
                continue
            if isinstance(m, Residual):
                body = self.chain(m.body, scale, source, open_end=True)
                shortcut = self.chain(m.shortcut, scale, source, open_end=True)
                if not (i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)):
                    raise ValueError("a residual block must be followed by a ReLU")
                out_scale = next(self.out_scales)
                scales = tuple(_multipliers(branch_scale / out_scale) for branch_scale, _ in (body, shortcut))
                source = self._add(QLayer(name=self._name("add"), kind="add", inputs=(body[1], shortcut[1]),
                                          scales=scales), source)
                scale, i = out_scale, i + 2
                continue
            if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
                if m.ceil_mode or isinstance(m, nn.MaxPool2d) and _square(m, "dilation") != 1:
                    raise ValueError(f"{type(m).__name__} with ceil_mode or dilation is not supported")
                if isinstance(m, nn.AvgPool2d) and not m.count_include_pad and _square(m, "padding"):
                    raise ValueError("AvgPool2d with padding and count_include_pad=False is not supported")
                k = _square(m, "kernel_size")
                kind = "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool"
                source = self._add(QLayer(name=self._name("pool"), kind=kind, kernel=(k, k),
                                          stride=_square(m, "stride"), pad=_square(m, "padding")), source)
            elif isinstance(m, nn.AdaptiveAvgPool2d):
                size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size, m.output_size)
                if size != (1, 1):
                    raise ValueError(f"AdaptiveAvgPool2d to {size} is not supported (global average pooling only)")
                source = self._add(QLayer(name=self._name("pool"), kind="avgpool", kernel=(), stride=1), source)
            elif isinstance(m, nn.Flatten):
                source = self._add(QLayer(name="flatten", kind="flatten"), source)
            else:
                raise ValueError(f"{type(m).__name__} at layer {i} is not supported there")
            i += 1
        return scale, source
