"""The SnaPEA early-termination PE's exact schedule (docs/snapea.md): lanes MACs per cycle over a filter's sorted
weights fetched a row of ``window`` entries at a time, skipping zero activations in two-sided mode.

Per output pixel the PE walks its filter's entries in docs/snapea.md's order (``weight_order``: zero weights
dropped, positives, then negatives by descending magnitude) in rows of ``window`` (the last row may be short; an
empty list is one empty row). A row's eligible entries are all of them (one-sided) or those whose activation is
non-zero (two-sided; padding is zero); the lanes take them ``lanes`` a group, in order: a row costs
max(1, ceil(eligible / lanes)) groups. From acc = bias, each group's products are added, then the pixel ends

- after the last group of its last row (output ReLU(acc)), or
- after a group once every positive entry is behind it and acc < 0 (output 0: what is left is negative). A group
  leaves behind the entries up to its last one when the row has more eligible entries, else its whole row.
  With no positive entry and a negative bias the first group ends the pixel with no product.

``pe_pixel`` gives a pixel's groups and outcome. The PE is a pipeline (``pe_schedule``): rows are fetched in
order, pixel after pixel, ``FETCH_STAGES`` cycles ahead of the stage that issues their groups (one a cycle, the
row's fetch pipeline holding while a row issues more than one), and a group's sum reaches the accumulator
``GROUP_STAGES`` cycles after it issues. The cycle after a pixel ends early, its rows still in the pipeline are
killed (and fetching resumes at the next pixel if it had not got there); its groups already issued are dropped.
"""

from typing import NamedTuple

import numpy as np

from generators.config import SnapeaConfig

from .snapea import check_snapea, pixel_windows, weight_order

__all__ = ["Pixel", "pe_pixel", "pe_schedule", "pe_layer", "array_job_cycles"]

FETCH_STAGES = SnapeaConfig.fetch_stages
GROUP_STAGES = SnapeaConfig.group_stages


class Pixel(NamedTuple):
    """One output pixel on the PE: output, products accumulated, groups of each row, the group that ends it
    (index over all its groups) and whether that is before its last group (its later rows are killed)."""
    y: int
    mults: int
    rows: tuple
    end: int
    early: bool


def pe_pixel(weights, acts, n_first, bias, *, lanes, window, two_sided):
    """``Pixel`` of one output pixel: ``weights``/``acts`` in sorted order, ``n_first`` positives."""
    n = len(weights)
    rows, groups = [], []  # groups: (entries taken, entries behind the group)
    for start in range(0, max(n, 1), window):
        end = min(start + window, n)
        eligible = [i for i in range(start, end) if not two_sided or acts[i] != 0]
        k = max(1, -(-len(eligible) // lanes))
        rows.append(k)
        for g in range(k):
            taken = eligible[g * lanes:(g + 1) * lanes]
            groups.append((taken, taken[-1] + 1 if g < k - 1 else start + window))
    acc, mults = int(bias), 0
    if n_first == 0 and acc < 0:
        return Pixel(0, 0, tuple(rows), 0, len(groups) > 1)
    for index, (taken, behind) in enumerate(groups):
        acc += sum(int(weights[i]) * int(acts[i]) for i in taken)
        mults += len(taken)
        if index == len(groups) - 1:
            return Pixel(max(acc, 0), mults, tuple(rows), index, False)
        if behind >= n_first and acc < 0:
            return Pixel(0, mults, tuple(rows), index, True)


def pe_schedule(pixels):
    """The cycle (counted from the go cycle, 1 = the first after it) in which the PE writes each pixel's result,
    given its ``Pixel``s in raster order.

    Registers, as in the RTL: the fetch position F and the row stages behind it (entry read, activation read,
    activation register; the last of them is the row stage that issues groups), then the group stages. Each
    cycle the row stage issues its row's next group; the row pipeline advances unless that row has more groups
    (and is not being killed); the accumulator takes the group ``GROUP_STAGES`` cycles after its issue."""
    n_rows = len(pixels[0].rows) if pixels else 0
    offsets = [np.concatenate([[0], np.cumsum(p.rows)]) for p in pixels]
    stages = [None] * (FETCH_STAGES + 1)     # (pixel, row) of F, S1.., the row stage last
    stages[0] = (0, 0) if pixels else None
    group_k = 0                              # the next group of the row stage's row
    groups = [None] * GROUP_STAGES           # (pixel, group index) entering the accumulator last
    ends, cycle = [], 0
    kill = None                              # the pixel that ended early in the previous cycle
    while len(ends) < len(pixels):
        cycle += 1
        ended_early = None
        if groups[-1] is not None:
            p, g = groups[-1]
            if g == pixels[p].end:
                ends.append(cycle)
                ended_early = p if pixels[p].early else None
        row = stages[-1]
        issued = (row[0], offsets[row[0]][row[1]] + group_k) if row is not None else None
        more = row is not None and group_k + 1 < pixels[row[0]].rows[row[1]]
        groups = [issued] + groups[:-1]
        if more and row[0] != kill:
            group_k += 1
        else:
            group_k = 0
            fetch = stages[0]
            if fetch is None:
                nxt = None
            elif fetch[0] == kill or fetch[1] + 1 == n_rows:
                nxt = (fetch[0] + 1, 0) if fetch[0] + 1 < len(pixels) else None
            else:
                nxt = (fetch[0], fetch[1] + 1)
            stages = [nxt] + [s if s is not None and s[0] != kill else None for s in stages[:-1]]
        kill = ended_early
    return ends


def pe_layer(x, w, bias, *, pad, stride=1, lanes, window, two_sided):
    """``{"y" int32, "mults" int64, "cycles" int64}`` [F, H', W'] of every output pixel on one PE; a pixel's
    ``cycles`` are those from the previous pixel's result (the go cycle for the first) to its own."""
    check_snapea(x, w, bias, pad, stride)
    a, (h, wd) = pixel_windows(x, w.shape[1:], pad, stride)
    out = {key: np.zeros((len(w), h * wd), np.int64) for key in ("y", "mults", "cycles")}
    for f in range(len(w)):
        taps, n_first = weight_order(w[f])
        weights = w[f].reshape(-1)[taps]
        pixels = [pe_pixel(weights, a[p, taps], n_first, bias[f], lanes=lanes, window=window, two_sided=two_sided)
                  for p in range(len(a))]
        out["y"][f] = [p.y for p in pixels]
        out["mults"][f] = [p.mults for p in pixels]
        out["cycles"][f] = np.diff(pe_schedule(pixels), prepend=0)
    shape = (len(w), h, wd)
    return {"y": out["y"].astype(np.int32).reshape(shape), "mults": out["mults"].reshape(shape),
            "cycles": out["cycles"].reshape(shape)}


def array_job_cycles(n_words, pixel_cycles):
    """Harness cycles of one array job at full rate: its ``n_words`` input words (header, x, filters, entries,
    go; the go word's cycle starts the PEs), then the PEs' pixels (``pixel_cycles`` [filters, pixels]) with
    one output word per pixel streamed as they finish: pixel p's word is read from the result memories the
    cycle after its slowest PE wrote it (and after pixel p - 1's was read), and is valid the cycle after."""
    finished = n_words - 1 + np.cumsum(pixel_cycles, axis=1).max(axis=0)  # the cycle each pixel's last PE ends it
    return len(finished) + 2 + int((finished - np.arange(len(finished))).max())
