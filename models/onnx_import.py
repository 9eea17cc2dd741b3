"""A user's CNN from ONNX, as torch's exporters write it (the dynamo exporter and the legacy one), into the same
torch form as the built-in networks (``models.cnn.Net``), so quantization, fine-tuning and every technique's
derivation are shared code.

Supported nodes: Conv (groups 1, dilation 1, symmetric square padding and stride), Relu, MaxPool,
AveragePool, GlobalAveragePool (or ReduceMean over H, W with keepdims, as torch's default exporter writes it),
BatchNormalization (folded into its conv on quantization), Flatten, Reshape to [batch, features] with its
constant shape arithmetic (Constant, Shape, Gather, Concat, Unsqueeze, Reshape of a constant), Gemm,
MatMul + Add, Dropout, Identity. The graph must be a chain (one activation flowing through); anything else is
refused naming the op and the node. Reading a file needs only onnx; torch loads when the model is built.
"""

from pathlib import Path

import numpy as np

__all__ = ["external_data", "io_shapes", "load_onnx"]

_SHAPE_OPS = ("Constant", "Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Cast")


def _attrs(node):
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _where(node):
    return f"node {node.name or '(unnamed)'!r}"


def _pair(node, values, what):
    values = list(values)
    if len(set(values)) != 1:
        raise ValueError(f"{node.op_type} with {what} {values} at {_where(node)} is not supported (equal values only)")
    return int(values[0])


def _const(node, consts, name):
    if name not in consts:
        raise ValueError(f"{node.op_type} at {_where(node)} takes {name!r} from the activations, not a constant: "
                         "not supported")
    return consts[name]


class _Chain:
    """The activation flowing through the graph: its tensor name, shape, and the torch layers so far."""

    def __init__(self, name, shape):
        self.name, self.input_shape, self.shape, self.layers = name, tuple(shape), tuple(shape), []

    def add(self, node, layer):
        import torch
        from torch import nn

        self.layers.append(layer)
        with torch.no_grad():
            self.shape = tuple(nn.Sequential(*self.layers).eval()(torch.zeros(self.input_shape)).shape)
        self.name = node.output[0]


def _conv(node, consts, chain):
    import torch
    from torch import nn

    a = _attrs(node)
    w = _const(node, consts, node.input[1])
    if w.ndim != 4:
        raise ValueError(f"Conv at {_where(node)} has a {w.ndim}-D weight; only 2-D convolutions are supported")
    if a.get("group", 1) != 1 or set(a.get("dilations", [1])) != {1}:
        raise ValueError(f"Conv with groups or dilation at {_where(node)} is not supported")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError(f"Conv with auto_pad at {_where(node)} is not supported")
    pad = _pair(node, a.get("pads", [0]), "pads")
    stride = _pair(node, a.get("strides", [1]), "strides")
    conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=stride, padding=pad,
                     bias=len(node.input) > 2 and bool(node.input[2]))
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w.astype(np.float32)))
        if conv.bias is not None:
            conv.bias.copy_(torch.from_numpy(_const(node, consts, node.input[2]).astype(np.float32)))
    return conv


def _batchnorm(node, consts):
    import torch
    from torch import nn

    scale, bias, mean, var = (_const(node, consts, name) for name in node.input[1:5])
    bn = nn.BatchNorm2d(len(scale), eps=float(_attrs(node).get("epsilon", 1e-5)))
    with torch.no_grad():
        for tensor, value in ((bn.weight, scale), (bn.bias, bias), (bn.running_mean, mean), (bn.running_var, var)):
            tensor.copy_(torch.from_numpy(value.astype(np.float32)))
    return bn.eval()


def _pool(node):
    from torch import nn

    a = _attrs(node)
    if a.get("ceil_mode", 0) or set(a.get("dilations", [1])) != {1} or \
            a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError(f"{node.op_type} with ceil_mode, dilation or auto_pad at {_where(node)} is not supported")
    kernel = _pair(node, a["kernel_shape"], "kernel_shape")
    stride = _pair(node, a.get("strides", [1]), "strides")
    pad = _pair(node, a.get("pads", [0]), "pads")
    if node.op_type == "MaxPool":
        return nn.MaxPool2d(kernel, stride, pad)
    return nn.AvgPool2d(kernel, stride, pad, count_include_pad=bool(a.get("count_include_pad", 0)))


def _reduce_mean(node, consts, chain):
    """ReduceMean over H and W keeping the dimensions (torch's default exporter's global average pooling, axes an
    attribute before opset 18 and an input since) as AdaptiveAvgPool2d(1); any other form refused naming it."""
    from torch import nn

    a = _attrs(node)
    axes = a.get("axes")
    if len(node.input) > 1 and node.input[1]:
        axes = _const(node, consts, node.input[1])
    rank, keepdims = len(chain.shape), a.get("keepdims", 1)
    axes = None if axes is None else sorted(int(axis) % rank for axis in np.ravel(axes))
    if rank != 4 or axes != [2, 3] or keepdims != 1:
        raise ValueError(f"ReduceMean over axes {axes if axes is not None else 'all'} with keepdims={keepdims} of a "
                         f"{rank}-D activation at {_where(node)} is not supported; over the spatial axes [2, 3] with "
                         "keepdims=1 (global average pooling) it is")
    return nn.AdaptiveAvgPool2d(1)


def _linear(node, w, b):
    import torch
    from torch import nn

    fc = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
    with torch.no_grad():
        fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(w).astype(np.float32)))
        if b is not None:
            fc.bias.copy_(torch.from_numpy(np.asarray(b).reshape(-1).astype(np.float32)))
    return fc


def _shape_op(node, consts, chain):
    """Constant shape arithmetic: the output's value, or None when it is not constant."""
    a = _attrs(node)
    op = node.op_type
    if op == "Constant":
        import onnx

        if "value" in a:
            return onnx.numpy_helper.to_array(a["value"])
        for key in ("value_ints", "value_int", "value_floats", "value_float"):
            if key in a:
                return np.asarray(a[key])
        raise ValueError(f"Constant without a value at {_where(node)} is not supported")
    if op == "Shape":
        if node.input[0] != chain.name:
            return None
        return np.asarray(chain.shape, np.int64)[a.get("start", 0):a.get("end", None)]
    inputs = [consts.get(name) for name in node.input]
    if any(v is None for v in inputs[:1]):
        return None
    if op == "Gather":
        return np.take(inputs[0], inputs[1], axis=a.get("axis", 0))
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in inputs], axis=a.get("axis", 0))
    if op == "Unsqueeze":
        axes = a.get("axes", None if len(inputs) < 2 else list(inputs[1]))
        return np.expand_dims(inputs[0], tuple(axes))
    if op == "Squeeze":
        axes = a.get("axes", None if len(inputs) < 2 else list(inputs[1]))
        return np.squeeze(inputs[0], None if axes is None else tuple(axes))
    if op == "Reshape":  # of a constant (the exporter computing ReduceMean's axes); 0 keeps that dimension
        shape = [dim if size == 0 and not a.get("allowzero", 0) else size
                 for dim, size in zip([*inputs[0].shape, *[0] * len(inputs[1])], inputs[1])]
        return np.reshape(inputs[0], shape)
    return inputs[0]  # Cast


def _read(path, *, check=False, **load):
    """The ONNX model at ``path`` (``onnx.load(**load)``, checked when ``check``); ValueError if it is not one."""
    import onnx

    try:
        model = onnx.load(str(path), **load)
        if check:
            onnx.checker.check_model(model)
    except Exception as error:  # onnx raises its own types for a file that is not a model
        raise ValueError(f"{path} is not a valid ONNX model: {str(error).splitlines()[0]}") from None
    return model


def external_data(path):
    """Paths of the files the ONNX model at ``path`` keeps its tensors in (each initializer's ``location``, beside
    the model: torch's exporter writes ``m.onnx.data``), in the order first named; ValueError if one lies outside
    the model's folder."""
    model = _read(path, load_external_data=False)
    folder = Path(path).resolve().parent
    files = {}
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                where = (folder / entry.value).resolve()
                if where.parent != folder and folder not in where.parents:
                    raise ValueError(f"{path}: tensor {tensor.name!r} keeps its data at {entry.value!r}, outside "
                                     "the model's folder")
                files.setdefault(where, None)
    return list(files)


_OPS = ("Conv", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "BatchNormalization", "Flatten",
        "Reshape", "Gemm", "MatMul", "Add", "Dropout", "Identity", *_SHAPE_OPS)


def _input_dims(graph):
    """The image input's [N, C, H, W] dims after checking that every op is one supported (before anything is built);
    ValueError naming the first that is not."""
    for node in graph.node:
        if node.op_type not in _OPS:
            raise ValueError(f"unsupported op {node.op_type} at {_where(node)}; supported: Conv, Relu, MaxPool, "
                             "AveragePool, GlobalAveragePool, ReduceMean (spatial), BatchNormalization, Flatten, "
                             "Reshape, Gemm, MatMul + Add, Dropout, Identity")
    initialized = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialized]
    if len(inputs) != 1:
        raise ValueError(f"the model has {len(inputs)} inputs; a CNN with one image input is supported")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(dims[1:]):
        raise ValueError(f"the model's input has shape {dims}; [N, C, H, W] with fixed C, H, W is supported")
    return inputs[0], dims


def io_shapes(path):
    """``(input shape [C, H, W], classes)`` of the ONNX model at ``path``, read without torch or its tensors' data
    (classes None when the output's last dimension is not fixed); ValueError if the file is not a model, has not one
    image input or uses an op that is not supported."""
    graph = _read(path, load_external_data=False).graph
    dims = [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim] if len(graph.output) == 1 else []
    return tuple(_input_dims(graph)[1][1:]), (dims[-1] or None) if len(dims) == 2 else None


def load_onnx(path):
    """``(Net, input shape [C, H, W])`` of the ONNX model at ``path``; ValueError naming the op and node of the
    first thing not supported."""
    from onnx import numpy_helper
    from torch import nn

    from .cnn import Net

    graph = _read(path, check=True).graph
    image, dims = _input_dims(graph)
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    chain = _Chain(image.name, (1, *dims[1:]))
    pending = None  # a MatMul waiting for its Add
    for node in graph.node:
        op = node.op_type
        if op in _SHAPE_OPS or (op == "Reshape" and node.input[0] in consts):  # constant folding
            value = _shape_op(node, consts, chain)
            if value is None:
                raise ValueError(f"{op} on the activations at {_where(node)} is not supported")
            consts[node.output[0]] = value
            continue
        node_inputs = list(node.input)
        if op == "Add" and len(node_inputs) == 2 and node_inputs[1] == chain.name:  # bias + MatMul output
            node_inputs.reverse()
        if not node_inputs or node_inputs[0] != chain.name:
            raise ValueError(f"{op} at {_where(node)} does not continue the chain of layers (a branch or a second "
                             "activation input): not supported")
        if pending is not None and op != "Add":
            raise ValueError(f"MatMul at {_where(pending)} is not followed by its bias Add: not supported")
        if op == "Conv":
            chain.add(node, _conv(node, consts, chain))
        elif op == "BatchNormalization":
            if not isinstance(chain.layers[-1] if chain.layers else None, nn.Conv2d):
                raise ValueError(f"BatchNormalization at {_where(node)} does not follow a Conv: not supported")
            chain.add(node, _batchnorm(node, consts))
        elif op == "Relu":
            chain.add(node, nn.ReLU())
        elif op in ("MaxPool", "AveragePool"):
            chain.add(node, _pool(node))
        elif op == "GlobalAveragePool":
            chain.add(node, nn.AdaptiveAvgPool2d(1))
        elif op == "ReduceMean":
            chain.add(node, _reduce_mean(node, consts, chain))
        elif op == "Flatten":
            if _attrs(node).get("axis", 1) != 1:
                raise ValueError(f"Flatten with axis {_attrs(node)['axis']} at {_where(node)} is not supported")
            chain.add(node, nn.Flatten())
        elif op == "Reshape":
            target = [int(v) for v in _const(node, consts, node.input[1])]
            features = int(np.prod(chain.shape[1:]))
            if len(target) != 2 or target[1] not in (-1, features):
                raise ValueError(f"Reshape to {target} at {_where(node)} is not supported (only [batch, features])")
            chain.add(node, nn.Flatten())
        elif op == "Gemm":
            a = _attrs(node)
            if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                raise ValueError(f"Gemm with alpha, beta or transA at {_where(node)} is not supported")
            w = _const(node, consts, node.input[1])
            w = w if a.get("transB", 0) else w.T
            b = _const(node, consts, node.input[2]) if len(node.input) > 2 and node.input[2] else None
            chain.add(node, _linear(node, w, b))
        elif op == "MatMul":
            pending = node
            chain.name = node.output[0]
        elif op == "Add" and pending is not None:
            other = node_inputs[1]
            w = _const(pending, consts, pending.input[1]).T
            chain.name = pending.input[0]
            chain.add(node, _linear(node, w, _const(node, consts, other)))
            pending = None
        elif op in ("Dropout", "Identity"):
            chain.name = node.output[0]
        else:  # an Add with no MatMul before it
            raise ValueError(f"{op} at {_where(node)} that is not a MatMul's bias is not supported")
    if pending is not None:
        raise ValueError(f"MatMul at {_where(pending)} is not followed by its bias Add: not supported")
    if [o.name for o in graph.output] != [chain.name]:
        raise ValueError("the model's output is not the end of its chain of layers: not supported")
    return Net(chain.layers).eval(), tuple(dims[1:])
