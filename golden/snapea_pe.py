"""The SnaPEA early-termination PE's exact schedule (docs/snapea.md): lanes MACs per cycle over a filter's sorted
weights, with a look-ahead window that skips zero activations in two-sided mode.

Per output pixel the PE walks its filter's entries in docs/snapea.md's order (``weight_order``: zero weights
dropped, positives, then negatives by descending magnitude), starting from acc = bias. Each cycle:

- The window is the next ``window`` entries (a group may cross from the positive into the negative phase).
  Eligible entries are all of them (one-sided) or those whose activation is non-zero (two-sided; padding is
  zero). The first ``lanes`` eligible entries are multiplied and added to acc; the walk moves past the last
  one taken when more were eligible, else past the window.
- The pixel ends in that cycle when the walk reaches the end of the list (output ReLU(acc)), or when it has
  passed every positive entry and acc < 0 (output 0: what is left is negative). A pixel with no positive
  entry and a negative bias ends in its first cycle with no product; an empty list takes one cycle.

So each pixel costs exactly its groups; ``mults`` counts products accumulated. The sign check follows every
group once the positive phase is in acc, which keeps the output exact. One lane without look-ahead (one-sided,
``window`` = 1) forms exactly ``golden.snapea.terminating_layer``'s products.
"""

import numpy as np

from .snapea import check_snapea, pixel_windows, weight_order

__all__ = ["pe_pixel", "pe_layer", "array_job_cycles"]


def pe_pixel(weights, acts, n_first, bias, *, lanes, window, two_sided):
    """``(y, mults, cycles)`` of one output pixel: ``weights``/``acts`` in sorted order, ``n_first`` positives."""
    acc, mults, cycles, ptr, n = int(bias), 0, 0, 0, len(weights)
    while True:
        cycles += 1
        if ptr >= n_first and acc < 0 and ptr < n:  # only at ptr = 0: later groups are checked as they end
            return 0, mults, cycles
        end = min(ptr + window, n)
        eligible = [i for i in range(ptr, end) if not two_sided or acts[i] != 0]
        taken = eligible[:lanes]
        acc += sum(int(weights[i]) * int(acts[i]) for i in taken)
        mults += len(taken)
        ptr = taken[-1] + 1 if len(eligible) > lanes else end
        if ptr >= n or (ptr >= n_first and acc < 0):
            return max(acc, 0), mults, cycles


def pe_layer(x, w, bias, *, pad, stride=1, lanes, window, two_sided):
    """``{"y" int32, "mults" int64, "cycles" int64}`` [F, H', W'] of every output pixel on one PE."""
    check_snapea(x, w, bias, pad, stride)
    a, (h, wd) = pixel_windows(x, w.shape[1:], pad, stride)
    out = {key: np.zeros((len(w), h * wd), np.int64) for key in ("y", "mults", "cycles")}
    for f in range(len(w)):
        taps, n_first = weight_order(w[f])
        weights = w[f].reshape(-1)[taps]
        for p in range(len(a)):
            y, mults, cycles = pe_pixel(weights, a[p, taps], n_first, bias[f], lanes=lanes, window=window,
                                        two_sided=two_sided)
            out["y"][f, p], out["mults"][f, p], out["cycles"][f, p] = y, mults, cycles
    shape = (len(w), h, wd)
    return {"y": out["y"].astype(np.int32).reshape(shape), "mults": out["mults"].reshape(shape),
            "cycles": out["cycles"].reshape(shape)}


def array_job_cycles(n_words, pixel_cycles):
    """Harness cycles of one array job at full rate: its ``n_words`` input words (header, x, filters, entries,
    go; the go word's cycle starts the PEs), then the PEs' pixels (``pixel_cycles`` [filters, pixels]) with
    one output word per pixel streamed as they finish: pixel p's word is valid the cycle after its slowest PE
    wrote it, and one cycle after pixel p - 1's."""
    finished = n_words - 1 + np.cumsum(pixel_cycles, axis=1).max(axis=0)  # the cycle each pixel's last PE ends it
    return len(finished) + 1 + int((finished - np.arange(len(finished))).max())
