"""A user's CNN from ONNX, as torch's exporters write it (the dynamo exporter and the legacy one), into the same
torch form as the built-in networks (``models.cnn.Net``), so quantization, fine-tuning and every technique's
derivation are shared code.

Supported nodes: Conv (any groups: grouped and depthwise; dilation 1, symmetric square padding and stride), Relu,
Clip to [0, 6] (ReLU6), MaxPool, AveragePool, GlobalAveragePool (or ReduceMean over H, W with keepdims, as torch's
default exporter writes it), BatchNormalization (folded into its conv on quantization), Flatten, Reshape to
[batch, features] with its constant shape arithmetic (Constant, Shape, Gather, Concat, Unsqueeze, Reshape of a
constant, CastLike of a constant), Gemm, MatMul + Add, Dropout, Identity, and Add of two activations: a residual
connection. The graph is a chain of layers with residual blocks: a tensor two nodes take starts two branches (one
of them may be empty, the identity shortcut) that an Add merges (``models.cnn.Residual``); anything else is refused
naming the op and the node. Reading a file needs only onnx; torch loads when the model is built.
"""

from pathlib import Path

import numpy as np

__all__ = ["external_data", "io_shapes", "load_onnx"]

_SHAPE_OPS = ("Constant", "Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Cast", "CastLike")


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


class _Graph:
    """The graph's activations as torch layers: each activation tensor is ``(root, layers)``, the layers that make it
    from the tensor its branch starts at (the image, or a tensor two nodes take: a residual block's input), and has a
    shape. ``uses``: how many nodes take each tensor (shape arithmetic not counted)."""

    def __init__(self, image, shape, uses):
        self.image, self.uses = image, uses
        self.seq, self.shape = {image: (image, [])}, {image: tuple(shape)}

    def take(self, node, name):
        """``(root, layers)`` of activation ``name`` as ``node``'s input: a tensor two nodes take starts a branch."""
        if name not in self.seq:
            raise ValueError(f"{node.op_type} at {_where(node)} takes {name!r}, which is not an activation or a "
                             "constant of the chain: not supported")
        return (name, []) if self.uses.get(name, 0) > 1 else self.seq[name]

    def add(self, node, layer, source):
        """``node``'s output: ``layer`` applied to activation ``source``."""
        import torch

        root, layers = self.take(node, source)
        self.seq[node.output[0]] = (root, [*layers, layer])
        with torch.no_grad():
            self.shape[node.output[0]] = tuple(layer.eval()(torch.zeros(self.shape[source])).shape)

    def alias(self, node, source):
        self.seq[node.output[0]], self.shape[node.output[0]] = self.take(node, source), self.shape[source]

    def merge(self, node):
        """An Add of two activations: the residual block whose branches start at the tensor both take."""
        from .cnn import Residual

        (ra, la), (rb, lb) = (self.take(node, name) for name in node.input)
        if ra != rb:
            raise ValueError(f"Add at {_where(node)} adds activations that do not branch from one tensor: not "
                             "supported (a residual Add merges two branches of one block input)")
        if self.shape[node.input[0]] != self.shape[node.input[1]]:
            raise ValueError(f"Add at {_where(node)} adds shapes {list(self.shape[node.input[0]])} and "
                             f"{list(self.shape[node.input[1]])}: not supported")
        body, shortcut = (la, lb) if len(la) >= len(lb) else (lb, la)
        root, layers = self.seq[ra]
        self.seq[node.output[0]] = (root, [*layers, Residual(body, shortcut)])
        self.shape[node.output[0]] = self.shape[node.input[0]]


def _conv(node, consts):
    import torch
    from torch import nn

    a = _attrs(node)
    w = _const(node, consts, node.input[1])
    if w.ndim != 4:
        raise ValueError(f"Conv at {_where(node)} has a {w.ndim}-D weight; only 2-D convolutions are supported")
    if set(a.get("dilations", [1])) != {1}:
        raise ValueError(f"Conv with dilation at {_where(node)} is not supported")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ValueError(f"Conv with auto_pad at {_where(node)} is not supported")
    pad = _pair(node, a.get("pads", [0]), "pads")
    stride = _pair(node, a.get("strides", [1]), "strides")
    groups = int(a.get("group", 1))
    conv = nn.Conv2d(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=stride, padding=pad, groups=groups,
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


def _reduce_mean(node, consts, shape):
    """ReduceMean over H and W keeping the dimensions (torch's default exporter's global average pooling, axes an
    attribute before opset 18 and an input since) as AdaptiveAvgPool2d(1); any other form refused naming it."""
    from torch import nn

    a = _attrs(node)
    axes = a.get("axes")
    if len(node.input) > 1 and node.input[1]:
        axes = _const(node, consts, node.input[1])
    rank, keepdims = len(shape), a.get("keepdims", 1)
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


def _clip(node, consts):
    """Clip to [0, 6] as ReLU6 (bounds as inputs from opset 11, attributes before); any other range refused."""
    from torch import nn

    a = _attrs(node)
    names = [*node.input[1:3], "", ""][:2]
    low, high = (float(np.ravel(_const(node, consts, name))[0]) if name else a.get(key)
                 for name, key in zip(names, ("min", "max")))
    if low != 0 or high != 6:
        raise ValueError(f"Clip to [{low}, {high}] at {_where(node)} is not supported (Clip to [0, 6], ReLU6, is)")
    return nn.ReLU6()


def _shape_op(node, consts, graph):
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
        if node.input[0] not in graph.shape:
            return None
        return np.asarray(graph.shape[node.input[0]], np.int64)[a.get("start", 0):a.get("end", None)]
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
    return inputs[0]  # Cast, CastLike (of a constant: Clip's bounds as the dynamo exporter writes them)


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


_OPS = ("Conv", "Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "BatchNormalization",
        "Flatten", "Reshape", "Gemm", "MatMul", "Add", "Dropout", "Identity", *_SHAPE_OPS)


def _input_dims(graph):
    """The image input's [N, C, H, W] dims after checking that every op is one supported (before anything is built);
    ValueError naming the first that is not."""
    for node in graph.node:
        if node.op_type not in _OPS:
            raise ValueError(f"unsupported op {node.op_type} at {_where(node)}; supported: Conv, Relu, Clip (ReLU6), "
                             "MaxPool, AveragePool, GlobalAveragePool, ReduceMean (spatial), BatchNormalization, "
                             "Flatten, Reshape, Gemm, MatMul + Add, Add (residual), Dropout, Identity")
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
    uses = {}
    for node in graph.node:
        for name in node.input if node.op_type not in _SHAPE_OPS else ():
            uses[name] = uses.get(name, 0) + 1
    acts = _Graph(image.name, (1, *dims[1:]), uses)
    pending = {}  # MatMul output -> (MatMul node, its activation input), waiting for its bias Add
    for node in graph.node:
        op = node.op_type
        if op in _SHAPE_OPS or (op == "Reshape" and node.input[0] in consts):  # constant folding
            value = _shape_op(node, consts, acts)
            if value is None:
                raise ValueError(f"{op} on the activations at {_where(node)} is not supported")
            consts[node.output[0]] = value
            continue
        waiting = [name for name in node.input if name in pending]
        if waiting and op != "Add":
            raise ValueError(f"MatMul at {_where(pending[waiting[0]][0])} is not followed by its bias Add: not "
                             "supported")
        source = node.input[0] if node.input else ""
        if op == "Conv":
            acts.add(node, _conv(node, consts), source)
        elif op == "BatchNormalization":
            layers = acts.take(node, source)[1]
            if not (layers and isinstance(layers[-1], nn.Conv2d)):
                raise ValueError(f"BatchNormalization at {_where(node)} does not follow a Conv: not supported")
            acts.add(node, _batchnorm(node, consts), source)
        elif op == "Relu":
            acts.add(node, nn.ReLU(), source)
        elif op == "Clip":
            acts.add(node, _clip(node, consts), source)
        elif op in ("MaxPool", "AveragePool"):
            acts.add(node, _pool(node), source)
        elif op == "GlobalAveragePool":
            acts.add(node, nn.AdaptiveAvgPool2d(1), source)
        elif op == "ReduceMean":
            acts.add(node, _reduce_mean(node, consts, acts.shape.get(source, ())), source)
        elif op == "Flatten":
            if _attrs(node).get("axis", 1) != 1:
                raise ValueError(f"Flatten with axis {_attrs(node)['axis']} at {_where(node)} is not supported")
            acts.add(node, nn.Flatten(), source)
        elif op == "Reshape":
            target = [int(v) for v in _const(node, consts, node.input[1])]
            features = int(np.prod(acts.shape.get(source, (0,))[1:]))
            if len(target) != 2 or target[1] not in (-1, features):
                raise ValueError(f"Reshape to {target} at {_where(node)} is not supported (only [batch, features])")
            acts.add(node, nn.Flatten(), source)
        elif op == "Gemm":
            a = _attrs(node)
            if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                raise ValueError(f"Gemm with alpha, beta or transA at {_where(node)} is not supported")
            w = _const(node, consts, node.input[1])
            w = w if a.get("transB", 0) else w.T
            b = _const(node, consts, node.input[2]) if len(node.input) > 2 and node.input[2] else None
            acts.add(node, _linear(node, w, b), source)
        elif op == "MatMul":
            pending[node.output[0]] = (node, source)
        elif op == "Add" and waiting:  # a MatMul's bias
            matmul, matmul_input = pending.pop(waiting[0])
            bias = next(name for name in node.input if name != waiting[0])
            acts.add(node, _linear(node, _const(matmul, consts, matmul.input[1]).T, _const(node, consts, bias)),
                     matmul_input)
        elif op == "Add" and all(name in acts.seq for name in node.input) and len(node.input) == 2:
            acts.merge(node)
        elif op in ("Dropout", "Identity"):
            acts.alias(node, source)
        else:  # an Add of a constant with no MatMul before it
            raise ValueError(f"{op} at {_where(node)} that is neither a MatMul's bias nor a residual Add of two "
                             "activations is not supported")
    if pending:
        raise ValueError(f"MatMul at {_where(next(iter(pending.values()))[0])} is not followed by its bias Add: not "
                         "supported")
    outputs = [o.name for o in graph.output]
    root, layers = acts.seq.get(outputs[0], (None, [])) if len(outputs) == 1 else (None, [])
    if root != image.name:
        raise ValueError("the model's output is not the end of its chain of layers (one output, every branch "
                         "merged by an Add): not supported")
    return Net(layers).eval(), tuple(dims[1:])
