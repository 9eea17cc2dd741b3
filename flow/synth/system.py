"""The system around a block, the same for every design at equal MACs: the global buffer its streams read and
write, and the DRAM behind it (docs/flow.md, Energy).

Global buffer: one SRAM macro (``sram.sram_macro``, CACTI) of BUFFER_BYTES_PER_MAC bytes per multiplier of the
design, BUFFER_BITS wide, one read and one write port. 1 KiB per MAC is of the order of the papers' chips: Eyeriss
(Chen et al., ISSCC 2016) has 108 KB for 168 PEs, 0.64 KiB each; CSCNN's PE 50-56 KB of input, output and weight
buffers for 16 multipliers, 3.1-3.5 KiB each (Table V of the CSCNN paper).
A run's traffic is the bits its input stream reads and its results write (``StreamDriver.traffic``: a compressed
format moves fewer bits, a weight re-read per fold moves them again), costed per bit at the macro's per-access
energy over its width (words packed across the stream's fields); the macro leaks over the run's cycles. A block
without multipliers (a leaf such as the DAP) is costed inside the design that holds it, with no buffer of its own.

DRAM: each layer reads its input activations (8 bits each) and writes its outputs (8 bits after requantization;
the classifier's 32-bit sums) once per image, and reads its weights (8 bits; bias 32) once per batch when its
working set (weights, bias, one image's input and output) fits the global buffer, else once per image. Off chip
the tensors are stored uncompressed (INT8) for every design, so this part is the same for every design at equal
MACs and kept apart from the on-chip parts. DRAM_PJ_PER_BIT: Horowitz, "Computing's energy problem (and what we
can do about it)", ISSCC 2014: a 32-bit DRAM read costs 640 pJ, 20 pJ/bit; taken as is (off-chip I/O and the DRAM
array do not scale with the logic's node). A block run on its own (``zeroskip cosim``) reads the arrays it is given
and writes its results once, each element at its dtype's width (``run_dram_bits``).
"""

import math
from functools import cache

from golden.conv import conv_output_size

from .energy import CLOCK_NS, PARTS
from .sram import sram_macro

__all__ = ["BUFFER_BYTES_PER_MAC", "BUFFER_BITS", "DRAM_PJ_PER_BIT", "SYSTEM_PARTS", "ON_CHIP", "buffer_macro",
           "buffer_pj", "layer_dram_bits", "dram_pj", "run_dram_bits", "with_dram"]

BUFFER_BYTES_PER_MAC = 1024
BUFFER_BITS = 64
DRAM_PJ_PER_BIT = 20.0
SYSTEM_PARTS = (*PARTS, "buffer", "dram")
ON_CHIP = SYSTEM_PARTS[:-1]


@cache
def buffer_macro(macs):
    """The global buffer of a design with ``macs`` multipliers (``sram.sram_macro``'s dict), None without any."""
    if macs <= 0:
        return None
    return sram_macro(BUFFER_BYTES_PER_MAC * macs * 8 // BUFFER_BITS, BUFFER_BITS)


def buffer_pj(macs, traffic, cycles):
    """Energy (pJ) of the global buffer of a ``macs``-multiplier design over a run of ``cycles`` that moves
    ``traffic`` ({"buffer_read_bits", "buffer_write_bits"}): reads and writes per bit, plus leakage."""
    macro = buffer_macro(macs)
    if macro is None:
        return 0.0
    accesses = (traffic["buffer_read_bits"] * macro["read_pj"] + traffic["buffer_write_bits"] * macro["write_pj"])
    leakage = macro["leakage_uw"] * 1e-6 * cycles * CLOCK_NS * 1e-9 * 1e12
    return float(accesses / BUFFER_BITS + leakage)


def layer_dram_bits(layer, input_shape, images, macs):
    """Bits a compute layer (``models.quantize.QLayer``: conv or fc) moves off chip for ``images`` images of input
    shape ``input_shape`` ([C, H, W] or [n_in]) on a design with ``macs`` multipliers: {"read", "write"}."""
    n_in = math.prod(int(d) for d in input_shape)
    if layer.kind == "conv":
        _, h, w = input_shape
        f, _, r, s = layer.w.shape
        n_out = f * conv_output_size(h, r, layer.pad, layer.stride) * conv_output_size(w, s, layer.pad, layer.stride)
    else:
        n_out = layer.w.shape[0]
    weights = 8 * layer.w.size + (0 if layer.bias is None else 32 * layer.bias.size)
    inputs, outputs = 8 * n_in, (8 if layer.relu else 32) * n_out
    fits = weights + inputs + outputs <= 8 * BUFFER_BYTES_PER_MAC * macs
    return {"read": (weights if fits else images * weights) + images * inputs, "write": images * outputs}

def dram_pj(bits):
    """Energy (pJ) of DRAM traffic ``bits`` ({"read", "write"}) at DRAM_PJ_PER_BIT."""
    return DRAM_PJ_PER_BIT * (bits["read"] + bits["write"])


def run_dram_bits(inputs, outputs):
    """Bits a block run on its own moves off chip: {"read": every array of ``inputs`` (scalars are parameters),
    "write": every array of ``outputs``}, each element at its dtype's width, once."""
    def bits(arrays):
        return int(sum(8 * a.nbytes for a in arrays.values() if getattr(a, "ndim", 0) > 0))
    return {"read": bits(inputs), "write": bits(outputs)}


def with_dram(rows, macs, qnet, image):
    """``rows`` (costed per-layer rows of a ``macs``-multiplier design running compute layers of ``qnet``; an int8
    ``image`` gives the layers' input shapes) each with ``dram_bits`` ({"read", "write"}, ``layer_dram_bits``) and
    the ``dram`` part in ``energy_parts`` and ``energy_pj``; a row naming no compute layer of ``qnet`` moves
    nothing off chip."""
    layers = {layer.name: layer for layer in qnet.computes}
    shapes = {name: x.shape for name, x in qnet.forward(image)[1].items()}
    out = []
    for row in rows:
        layer = layers.get(row["layer"])
        bits = {"read": 0, "write": 0} if layer is None else \
            layer_dram_bits(layer, shapes[layer.name], row["images"], macs)
        parts = {**{k: v for k, v in row["energy_parts"].items() if k != "dram"}, "dram": dram_pj(bits)}
        out.append({**row, "dram_bits": bits, "energy_parts": parts, "energy_pj": float(sum(parts.values()))})
    return out
