"""Stream payloads of the Mixture-of-Rookies engine (generators.mor_engine)."""

from amaranth.hdl import signed, unsigned
from amaranth.lib import data

__all__ = ["KINDS", "op_layout", "table_layout", "result_layout", "position_bits", "vector_bits", "word_bits",
           "beat_bits", "bin_word_bits"]

KINDS = {"header": 0, "neuron": 1, "weight": 2, "input": 3}


def position_bits(cfg):
    return max(1, (cfg.max_out - 1).bit_length())


def vector_bits(cfg):
    return max(1, (cfg.max_vectors - 1).bit_length())


def word_bits(cfg):
    """Bits of a word index within one neuron's weights (or the input vector)."""
    return max(1, (cfg.chunks - 1).bit_length())


def beat_bits(cfg):
    """Bits of a beat index within one neuron's weights (or the input vector): a line of the weight and input
    memories."""
    return max(1, (cfg.beats - 1).bit_length())


def bin_word_bits(cfg):
    return max(1, (cfg.bin_chunks - 1).bit_length())


def table_layout(cfg):
    """A neuron's table entry as the CUs and binCUs read it: bias and fit."""
    return data.StructLayout({"bias": signed(32), "m_q": signed(32), "b_q": signed(32)})


def op_layout(cfg):
    """One loaded word: ``kind`` selects the fields that count.

    - header: ``n_in``, ``n_out``, ``n_proxies``, ``words`` = ⌈n_in / mac_width⌉, ``beats`` = ⌈words /
      load_words⌉, ``bin_words`` =
      ⌈n_in / bits_per_cycle⌉, ``tail_bits`` (valid bits of the last binary word), ``vectors`` (the job's first
      run's) and ``stream`` (1: the first run streams its inputs, loaded after the weights; 0: its weights,
      loaded after its inputs).
    - neuron (n_out of them, in DNN order): ``table`` plus ``enable`` and ``size`` (cluster size, 0
      for members).
    - weight (``beats`` per neuron, DNN order): ``data`` = load_words·mac_width int8 weights, zero-padded.
    - input (``beats`` per vector, zero-padded, up to max_vectors vectors a run): ``data``; ``last`` on
      each vector's final beat, ``run`` also on the run's final beat (which starts the run).
    """
    count = unsigned(cfg.max_out.bit_length())
    return data.StructLayout({
        "kind": unsigned(2),
        "last": unsigned(1),
        "run": unsigned(1),
        "n_in": unsigned(cfg.max_in.bit_length()),
        "n_out": count,
        "n_proxies": count,
        "words": unsigned(cfg.chunks.bit_length()),
        "beats": unsigned(cfg.beats.bit_length()),
        "bin_words": unsigned(cfg.bin_chunks.bit_length()),
        "tail_bits": unsigned(cfg.bits_per_cycle.bit_length()),
        "vectors": unsigned(cfg.max_vectors.bit_length()),
        "stream": unsigned(1),
        "table": table_layout(cfg),
        "enable": unsigned(1),
        "size": count,
        "data": data.ArrayLayout(signed(8), cfg.mac_width * cfg.load_words),
    })


def result_layout(cfg):
    """``issue`` consecutive neurons' outputs in DNN order (positions), vector by vector: post-ReLU ``y`` and
    ``skipped`` per neuron (0 past n_out); with the run's ``run_cycles`` and ``macs`` (the same in each of its
    words)."""
    return data.StructLayout({"y": data.ArrayLayout(signed(32), cfg.issue),
                              "skipped": data.ArrayLayout(unsigned(1), cfg.issue),
                              "run_cycles": unsigned(32), "macs": unsigned(32)})
