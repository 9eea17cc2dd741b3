"""Real activations of an INT8 network's layers (``models.quantize.QuantizedNet``) as the blocks take them, and the
ways the flows reshape them; numpy only, so that the drivers (and the command line) load without torch."""

import numpy as np

from golden.dbb import channel_blocks

__all__ = ["conv_inputs", "layer_inputs", "first_input", "group_convs", "relu_passes", "two_passes", "thin",
           "dap_layer_blocks"]


def first_input(net, name):
    """``(layer, x)``: conv layer ``name`` of ``net``'s INT8 network and its input on the first test image."""
    layer = next(layer for layer in net.qnet.convs if layer.name == name)
    return layer, conv_inputs(net.qnet, net.data.x_test[:1])[name][0]


def conv_inputs(qnet, images, **kw):
    """{conv layer name: int8 [n_images, C, H, W]} of the real activations entering each conv layer."""
    per_image = [qnet.forward(img, **kw)[1] for img in images]
    return {layer.name: np.stack([inputs[layer.name] for inputs in per_image]) for layer in qnet.convs}


def layer_inputs(qnet, images, **kw):
    """{compute layer name: int8 [n_images, ...]} of the real activations entering every conv ([C, H, W]) and
    fc ([n_in]) layer."""
    per_image = [qnet.forward(img, **kw)[1] for img in images]
    return {layer.name: np.stack([inputs[layer.name] for inputs in per_image]) for layer in qnet.computes}


def group_convs(layer, x):
    """``[(x, w, bias)]``: compute ``layer`` on input ``x`` as the convolutions a block runs, one per group: a grouped
    or depthwise conv (``groups`` g) is g convs of C/g input channels and F/g filters whose outputs, in order, are
    the layer's; an fc layer one 1×1 convolution of its inputs as channels of a 1×1 plane; any other conv itself."""
    if layer.kind == "fc":
        return [(x.reshape(-1, 1, 1), layer.w[:, :, None, None], layer.bias)]
    g = layer.groups
    if g == 1:
        return [(x, layer.w, layer.bias)]
    c, f = x.shape[0] // g, len(layer.w) // g
    return [(np.ascontiguousarray(x[i * c:(i + 1) * c]), layer.w[i * f:(i + 1) * f], layer.bias[i * f:(i + 1) * f])
            for i in range(g)]


def relu_passes(layer, w, bias):
    """The (w, bias) passes that give a compute layer's output on a block whose outputs are post-ReLU: one for a
    ReLU layer; two for a layer without (the classifier, a conv feeding a residual Add: ``two_passes``), as
    z = relu(z) − relu(−z): (w, bias) then (−w, −bias) (weights are within ±127, so −w is int8)."""
    if layer.relu:
        return [(w, bias)]
    return [(w, bias), ((-w).astype(np.int8), (-bias.astype(np.int64)).astype(np.int32))]


def two_passes(layer):
    """Why a compute layer runs in ``relu_passes``' two passes on a post-ReLU block (its mechanism, which relies on
    the ReLU, off)."""
    why = "the classifier" if layer.kind == "fc" else "its output feeds a residual Add"
    return f"no ReLU ({why}): relu(z) and relu(-z) in two passes"


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
