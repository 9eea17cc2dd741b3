"""Mask-to-positions decoding of a DBB block: the position of each kept value slot (docs/conventions.md)."""

from amaranth.hdl import Cat, Signal

__all__ = ["mask_positions"]


def mask_positions(m, mask, bz, slots, pos_width, name):
    """Per slot s < ``slots``: (position of the mask's (s+1)-th set bit, whether that bit exists).

    Combinational: a prefix popcount per position and a one-hot select per slot.
    """
    ranks = []
    for i in range(bz):
        rank = Signal(range(bz + 1), name=f"{name}_rank{i}")
        m.d.comb += rank.eq(sum(mask[t] for t in range(i)) if i else 0)
        ranks.append(rank)
    positions, present = [], []
    for s in range(slots):
        pos = Signal(pos_width, name=f"{name}_pos{s}")
        hit = Signal(name=f"{name}_hit{s}")
        terms = [mask[i] & (ranks[i] == s) for i in range(bz)]
        value = 0
        for i, term in enumerate(terms):
            if i:
                value = value | (term.replicate(pos_width) & i)
        m.d.comb += [pos.eq(value), hit.eq(Cat(*terms).any())]
        positions.append(pos)
        present.append(hit)
    return positions, present
