"""Real activations of an INT8 network's layers (``models.quantize.QuantizedNet``) as the blocks take them, and the
ways the flows reshape them; numpy only, so that the drivers (and the command line) load without torch."""

from typing import NamedTuple

import numpy as np

from golden.dbb import channel_blocks

__all__ = ["FcBatch", "check_batch", "fc_batch", "layer_images", "conv_inputs", "layer_inputs", "first_input",
           "group_convs", "layer_jobs", "raised_bias", "no_relu", "thin", "dap_layer_blocks"]

BATCH = 8   # fc layers' default batch: 8 images fill the rows of the 64-MAC dense array (8×8) and give every fc
#            weight 8 activations on the PEs and engines; 8 images' fc layers stay cheap to simulate


class FcBatch(NamedTuple):
    """How fc layers run: ``size`` images a job over ``images``, the evaluated images and, to fill the last batch,
    the test images after them (an accelerator serving fc layers batches them; conv layers run image by image)."""

    size: int
    images: np.ndarray


def check_batch(size):
    """ValueError (one line) unless ``size`` is a positive whole number: an fc batch's images."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"an fc batch is a positive whole number of images, not {size!r}")


def fc_batch(test_images, n, size=BATCH):
    """``FcBatch`` of ``size`` (``check_batch``) over the first ``n`` of ``test_images`` rounded up to whole batches
    (as many as the test set holds)."""
    check_batch(size)
    return FcBatch(int(size), test_images[:max(n, min(len(test_images), -(-n // size) * size))])


def first_input(net, name):
    """``(layer, x)``: conv layer ``name`` of ``net``'s INT8 network and its input on the first test image."""
    layer = next(layer for layer in net.qnet.convs if layer.name == name)
    return layer, conv_inputs(net.qnet, net.data.x_test[:1])[name][0]


def layer_images(qnet, images, batch=None):
    """{compute layer name: images it runs}: ``images``' count, an fc layer's under an ``FcBatch`` ``batch`` its."""
    return {layer.name: len(batch.images if batch is not None and layer.kind == "fc" else images)
            for layer in qnet.computes}


def conv_inputs(qnet, images, **kw):
    """{conv layer name: int8 [n_images, C, H, W]} of the real activations entering each conv layer."""
    per_image = [qnet.forward(img, **kw)[1] for img in images]
    return {layer.name: np.stack([inputs[layer.name] for inputs in per_image]) for layer in qnet.convs}


def layer_inputs(qnet, images, *, batch=None, **kw):
    """{compute layer name: int8 [n_images, ...]} of the real activations entering every conv ([C, H, W]) and
    fc ([n_in]) layer; with an ``FcBatch`` ``batch``, the fc layers' over its images (which begin with ``images``)."""
    every = images if batch is None else batch.images
    per_image = [qnet.forward(img, **kw)[1] for img in every]
    return {layer.name: np.stack([inputs[layer.name] for inputs in
                                  (per_image if layer.kind == "fc" else per_image[:len(images)])])
            for layer in qnet.computes}


def group_convs(layer, x):
    """``[(x, w, bias)]``: compute ``layer`` on input ``x`` as the convolutions a block runs, one per group: a grouped
    or depthwise conv (``groups`` g) is g convs of C/g input channels and F/g filters whose outputs, in order, are
    the layer's; an fc layer on ``x`` [n_in] or a batch [b, n_in] one 1×1 convolution of a 1×b plane (its inputs as
    channels, image i at column i); any other conv itself."""
    if layer.kind == "fc":
        rows = x.reshape(-1, x.shape[-1])
        return [(np.ascontiguousarray(rows.T)[:, None, :], layer.w[:, :, None, None], layer.bias)]
    g = layer.groups
    if g == 1:
        return [(x, layer.w, layer.bias)]
    c, f = x.shape[0] // g, len(layer.w) // g
    return [(np.ascontiguousarray(x[i * c:(i + 1) * c]), layer.w[i * f:(i + 1) * f], layer.bias[i * f:(i + 1) * f])
            for i in range(g)]


def layer_jobs(layer, inputs, size=1):
    """``[(x, w, bias)]`` of ``group_convs`` over a compute layer's ``inputs`` [n_images, ...]: a conv's image by
    image, an fc layer's ``size`` images a job (the last job the rest)."""
    if layer.kind == "fc":
        return [conv for i in range(0, len(inputs), size) for conv in group_convs(layer, inputs[i:i + size])]
    return [conv for image in inputs for conv in group_convs(layer, image)]


def raised_bias(layer, w, bias, *, x_min=0):
    """``(bias', k)`` int32 [F], int64 [F]: how a block whose outputs are post-ReLU gives compute ``layer``'s output
    z = w·x + bias in one pass. A ReLU layer: (bias, 0). A layer without (the classifier, a conv feeding a residual
    Add: ``no_relu``): each filter's bias raised by k, the most its sum can fall below zero for inputs in
    ``x_min``..127 (padding 0 included), so that relu(z + k) = z + k, and the block's output less k (the
    post-processing after the array) is z. ValueError if bias + k leaves int32."""
    if layer.relu:
        return bias, np.zeros(len(bias), np.int64)
    w64 = w.reshape(len(w), -1).astype(np.int64)
    lowest = bias.astype(np.int64) + np.minimum(127 * w64, x_min * w64).sum(axis=1)
    k = np.maximum(-lowest, 0)
    raised = bias.astype(np.int64) + k
    if np.abs(raised).max(initial=0) >= 2**31:
        raise ValueError(f"{layer.name}: a bias raised by its lowest sum leaves int32 ({int(np.abs(raised).max())})")
    return raised.astype(np.int32), k


def no_relu(layer):
    """Why a compute layer runs with ``raised_bias`` on a post-ReLU block (its mechanism, which relies on the
    ReLU, off)."""
    why = "the classifier" if layer.kind == "fc" else "its output feeds a residual Add"
    return f"no ReLU ({why}): one pass, each filter's bias raised by its lowest sum (subtracted after the array)"


def thin(x, keep):
    """``x`` with its smallest non-zero activations zeroed so that ``keep`` of them remain (ties in flat order)."""
    flat = x.reshape(-1).copy()
    nonzero = np.flatnonzero(flat)
    order = nonzero[np.argsort(flat[nonzero], kind="stable")]
    flat[order[:len(nonzero) - int(round(keep * len(nonzero)))]] = 0
    return flat.reshape(x.shape)


def dap_layer_blocks(activations, bz):
    """All images' activation blocks of one layer (docs/conventions.md channel blocking), int8 [n, bz]."""
    return np.concatenate([channel_blocks(x, bz) for x in activations])
