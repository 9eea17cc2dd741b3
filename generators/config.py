"""Frozen, validated block configurations and the preset CATALOG (no amaranth here)."""

from dataclasses import asdict, dataclass, fields

__all__ = ["DapConfig", "ArrayConfig", "PeConfig", "PeArrayConfig", "BinCuConfig", "MorConfig", "SnapeaConfig",
           "VARIANTS", "PE_BLOCKS", "PE_ARRAY_BLOCKS", "CATALOG", "preset", "default_preset", "BLOCKS"]


def _require_int(name, value, low, high=None):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if high is None and value < low:
        raise ValueError(f"{name} must be at least {low}, not {value}")
    if high is not None and not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")


class _Preset:
    """What every block config shares: a preset name, its module name, documented parameters and a dict form."""

    def _check_name(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name must be a Python identifier, not {self.name!r}")

    @property
    def module(self):
        return f"{self.block}_{self.name}"

    def params(self):
        """Parameters under their documented names (everything but ``name``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}

    def to_dict(self):
        return {"block": self.block, **asdict(self)}


@dataclass(frozen=True, kw_only=True)
class DapConfig(_Preset):
    """Dynamic activation pruning cascade (docs/dap.md).

    Parameters
    ----------
    name : str
        Preset name; the emitted module is ``dap_<name>``.
    bz : int
        Block size, a power of two from 2 to 32.
    nnz_max : int
        Number of maxpool stages (slots of the compressed block), 1..bz.
    stage_regs : bool
        Register after every stage (latency ``nnz_max``) or only after the
        last one (latency 1, all stages combinational).
    dense_out : bool
        Also output the whole input block, delayed alongside (for S2TA-AW's dense mode).
    """

    name: str
    bz: int = 8
    nnz_max: int = 5
    stage_regs: bool = True
    dense_out: bool = False

    block = "dap"

    def __post_init__(self):
        self._check_name()
        _require_int("bz", self.bz, 2, 32)
        if self.bz & (self.bz - 1):
            raise ValueError(f"bz must be a power of two, not {self.bz}")
        _require_int("nnz_max", self.nnz_max, 1, self.bz)
        for flag in ("stage_regs", "dense_out"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, not {getattr(self, flag)!r}")

    @property
    def latency(self):
        """Cycles from an accepted input block to its output being valid."""
        return self.nnz_max if self.stage_regs else 1

    @property
    def nnz_width(self):
        return self.nnz_max.bit_length()


VARIANTS = ("sa", "sa_zvcg", "s2ta_w", "s2ta_aw")


@dataclass(frozen=True, kw_only=True)
class ArrayConfig(_Preset):
    """Output-stationary systolic array of tensor PEs, ``a×b×c_rows×cols`` (docs/arrays.md).

    Parameters
    ----------
    name : str
        Preset name; the emitted module is ``<variant>_<name>``.
    variant : str
        ``sa`` (scalar MAC), ``sa_zvcg`` (scalar MAC, zero-value clock gating), ``s2ta_w``
        (DP{b}M{bz} dot-product TPEs) or ``s2ta_aw`` (time-unrolled DP1M{b} outer-product TPEs).
    a, b, c : int
        Output pixels per TPE, weight slots per DBB block (nnz_w), output channels per TPE.
        The ``sa`` variants are 1×1×1.
    rows, cols : int
        TPE grid.
    bz : int
        DBB block size along the reduction (a power of two, 2..32).
    nnz_max : int
        Maxpool stages of ``s2ta_aw``'s DAP cascade (its largest sparse nnz_a).
    acc_width : int
        Accumulator width in bits (results wrap modulo 2**acc_width).
    stage_regs : bool
        Registers between the DAP stages of ``s2ta_aw``.
    """

    name: str
    variant: str
    a: int = 1
    b: int = 1
    c: int = 1
    rows: int
    cols: int
    bz: int = 8
    nnz_max: int = 5
    acc_width: int = 32
    stage_regs: bool = True

    def __post_init__(self):
        self._check_name()
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        for field in ("a", "b", "c", "rows", "cols"):
            _require_int(field, getattr(self, field), 1, 256)
        _require_int("bz", self.bz, 2, 32)
        if self.bz & (self.bz - 1):
            raise ValueError(f"bz must be a power of two, not {self.bz}")
        _require_int("b", self.b, 1, self.bz)
        _require_int("nnz_max", self.nnz_max, 1, self.bz)
        _require_int("acc_width", self.acc_width, 18, 64)
        if not isinstance(self.stage_regs, bool):
            raise TypeError(f"stage_regs must be a bool, not {self.stage_regs!r}")
        if self.scalar and (self.a, self.b, self.c) != (1, 1, 1):
            raise ValueError(f"{self.variant} is a 1x1x1 scalar-PE array, not {self.a}x{self.b}x{self.c}")
        if self.product_width + (self.macs_per_tpe - 1).bit_length() > self.acc_width:
            raise ValueError(f"acc_width must hold one step's sum of {self.macs_per_tpe} products, "
                             f"not {self.acc_width}")

    @property
    def block(self):
        return self.variant

    @property
    def scalar(self):
        return self.variant in ("sa", "sa_zvcg")

    @property
    def product_width(self):
        return 16

    @property
    def macs_per_tpe(self):
        return self.a * self.c * (self.b if self.variant == "s2ta_w" else 1)

    @property
    def macs(self):
        """Multipliers in the array."""
        return self.rows * self.cols * self.macs_per_tpe

    @property
    def pixels(self):
        """Output pixels (GEMM rows M) one fold covers."""
        return self.rows * self.a

    @property
    def channels(self):
        """Output channels (GEMM columns N) one fold covers."""
        return self.cols * self.c

    @property
    def pos_width(self):
        return max(1, (self.bz - 1).bit_length())

    @property
    def nnz_width(self):
        """Width of the run-time nnz_a input (``s2ta_aw``): 1..nnz_max, or bz for dense."""
        return self.bz.bit_length()

    @property
    def dap(self):
        """The DAP cascade on ``s2ta_aw``'s activation path, passing dense blocks through for nnz_a = bz."""
        return DapConfig(name=f"{self.name}_{self.variant}", bz=self.bz, nnz_max=self.nnz_max,
                         stage_regs=self.stage_regs, dense_out=True)

    @property
    def front_latency(self):
        """Cycles from accepting a K-block to its first PE step entering the array (DAP, then unroller)."""
        return self.dap.latency + 1 if self.variant == "s2ta_aw" else 0

    @property
    def min_fold_steps(self):
        """PE steps a fold occupies at least, so that its results never overwrite an undrained fold."""
        return self.rows + self.cols - 1

    @property
    def select_stage(self):
        """The DBB variants register each TPE's operands out of their muxes before multiplying."""
        return self.variant in ("s2ta_w", "s2ta_aw")

    @property
    def tpe_stages(self):
        """Pipeline stages between a TPE's operand registers and its accumulators (select, product)."""
        return 1 + self.select_stage

    @property
    def latency(self):
        """Cycles from the last step of a fold entering the array to its last result word (no stalls)."""
        return 2 * self.rows + self.cols - 1 + self.tpe_stages

    def notation(self):
        return f"{self.a}x{self.b}x{self.c}_{self.rows}x{self.cols}"


@dataclass(frozen=True, kw_only=True)
class BinCuConfig(_Preset):
    """Mixture-of-Rookies binary prediction unit (binCU, docs/mor.md).

    Parameters
    ----------
    name : str
        Preset name; the emitted module is ``bincu_<name>``.
    bits_per_cycle : int
        Input and weight sign bits XNOR-popcounted per cycle (1..256).
    max_in : int
        Longest input vector (bounds p_bin's width).
    """

    name: str
    bits_per_cycle: int = 16
    max_in: int = 512

    block = "bincu"

    def __post_init__(self):
        self._check_name()
        _require_int("bits_per_cycle", self.bits_per_cycle, 1, 256)
        _require_int("max_in", self.max_in, 1, 1 << 16)

    @property
    def p_width(self):
        """Signed width of p_bin, which lies in [-max_in, max_in]."""
        return self.max_in.bit_length() + 1

    @property
    def latency(self):
        """Cycles from a neuron's last chunk accepted to its prediction valid."""
        return 4


@dataclass(frozen=True, kw_only=True)
class MorConfig(_Preset):
    """Mixture-of-Rookies layer engine (docs/mor.md, MoR §4): CUs, binCUs and the neurons controller.

    Parameters
    ----------
    name : str
        Preset name; the emitted module is ``mor_<name>``.
    n_cu : int
        Compute units, each ``mac_width`` int8 MACs per cycle into a 32-bit psum.
    mac_width : int
        MACs per CU per cycle; also the int8 elements per loaded input or weight word.
    n_bincu : int
        Binary CUs (binCU), each ``bits_per_cycle`` sign bits per cycle.
    bits_per_cycle : int
        A multiple of ``mac_width``: a binary word packs that many loaded words' sign bits.
    max_in : int
        Longest input vector.
    max_out : int
        Most neurons in a layer, a power of two.
    max_vectors : int
        Input vectors one run holds (MoR §4.1's input window, e.g. a row of output pixels), a power of two.
    issue : int
        Neurons the controller issues to CUs per cycle (a power of two, at most n_cu and max_out / 2): short neurons
        (⌈n_in / mac_width⌉ < n_cu words) need several a cycle to keep every CU busy; also the results per output
        word and the result memory banks.
    load_words : int
        Words (of mac_width int8) per loaded beat of weights or inputs, a power of two dividing bits_per_cycle /
        mac_width: the load port's width, and the words per line of the weight and input memories.
    """

    name: str
    n_cu: int = 8
    mac_width: int = 8
    n_bincu: int = 2
    bits_per_cycle: int = 64
    max_in: int = 512
    max_out: int = 32
    max_vectors: int = 8
    issue: int = 1
    load_words: int = 1

    block = "mor"
    cu_stages = 5  # a CU's stages after a neuron's last word address: RAM data, operands, products, sum, result
    bin_stages = 2  # a binCU lane's stages before its binCU: RAM data, chunk
    bin_queue = 16  # members the walker queues for the binCUs

    def __post_init__(self):
        self._check_name()
        _require_int("n_cu", self.n_cu, 1, 32)
        _require_int("mac_width", self.mac_width, 1, 64)
        _require_int("n_bincu", self.n_bincu, 1, 16)
        _require_int("bits_per_cycle", self.bits_per_cycle, 1, 256)
        if self.bits_per_cycle % self.mac_width:
            raise ValueError(f"bits_per_cycle must be a multiple of mac_width ({self.mac_width}), "
                             f"not {self.bits_per_cycle}")
        _require_int("max_in", self.max_in, 1, 4096)
        _require_power_of_two("max_out", self.max_out, 2, 1024)
        _require_power_of_two("max_vectors", self.max_vectors, 1, 64)
        _require_power_of_two("issue", self.issue, 1, min(self.n_cu, self.max_out // 2))
        _require_power_of_two("load_words", self.load_words, 1, 64)
        if self.words_per_binary % self.load_words:
            raise ValueError(f"load_words must divide bits_per_cycle / mac_width ({self.words_per_binary}), "
                             f"not {self.load_words}")

    @property
    def chunks(self):
        """Loaded words (and CU cycles) of the longest input vector."""
        return -(-self.max_in // self.mac_width)

    @property
    def beats(self):
        """Loaded beats (``load_words`` words each) of the longest input vector or weight row."""
        return -(-self.chunks // self.load_words)

    @property
    def bin_chunks(self):
        """binCU cycles of the longest input vector."""
        return -(-self.max_in // self.bits_per_cycle)

    @property
    def words_per_binary(self):
        return self.bits_per_cycle // self.mac_width

    @property
    def bincu(self):
        """The binCU each of the engine's ``n_bincu`` instances is."""
        return BinCuConfig(name=f"{self.name}_mor", bits_per_cycle=self.bits_per_cycle, max_in=self.max_in)

    @property
    def macs(self):
        """Multipliers in the engine."""
        return self.n_cu * self.mac_width

    @property
    def latency(self):
        """Cycles from a neuron issued to a CU to its result: one per loaded word plus ``cu_stages``."""
        return self.chunks + self.cu_stages


@dataclass(frozen=True, kw_only=True)
class SnapeaConfig(_Preset):
    """SnaPEA exact-mode early-termination PE array (docs/snapea.md): each PE computes one filter's outputs.

    Parameters
    ----------
    name : str
        Preset name; the emitted module is ``snapea_<name>``.
    lanes : int
        MACs per PE per cycle over the filter's sorted weights.
    window : int
        Sorted entries a PE looks at per cycle (at least ``lanes``); in two-sided mode it takes the
        first ``lanes`` of them whose activation is non-zero.
    two_sided : bool
        Skip zero activations (Proposal 2); otherwise only zero weights are skipped (Proposal 1).
    n_pe : int
        PEs, each computing a different filter's outputs in parallel.
    max_entries : int
        Non-zero weights per filter (C·R·S of the largest layer).
    max_x : int
        Input activations C·H·W of the largest layer, a multiple of 8 (loaded 8 per word).
    max_pixels : int
        Output pixels H'·W' of the largest layer.
    """

    name: str
    lanes: int = 4
    window: int = 8
    two_sided: bool = True
    n_pe: int = 4
    max_entries: int = 512
    max_x: int = 2048
    max_pixels: int = 256

    block = "snapea"
    fetch_stages = 4  # a row's fetch: entry read, activation read, activation register, eligibility and ranks
    group_stages = 3  # a group's operands, products and sum before the accumulator

    def __post_init__(self):
        self._check_name()
        if not isinstance(self.two_sided, bool):
            raise TypeError(f"two_sided must be a bool, not {self.two_sided!r}")
        _require_int("lanes", self.lanes, 1, 32)
        _require_int("window", self.window, self.lanes, 64)
        _require_int("n_pe", self.n_pe, 1, 64)
        _require_int("max_entries", self.max_entries, 1, 1 << 14)
        _require_int("max_x", self.max_x, 8, 1 << 16)
        if self.max_x % 8:
            raise ValueError(f"max_x must be a multiple of 8, not {self.max_x}")
        _require_int("max_pixels", self.max_pixels, 1, 1 << 14)

    @property
    def macs(self):
        """Multipliers in the array."""
        return self.n_pe * self.lanes

    @property
    def latency(self):
        """Cycles from go to the first pixel's result write at the fastest (its one group): the row's fetch,
        the group's issue and stages, the accumulator."""
        return self.fetch_stages + 1 + self.group_stages

    @property
    def tag_bits(self):
        """Low bits of a pixel index that tell apart the pixels in a PE's stages (at most one per stage)."""
        return (self.latency + 1).bit_length()

    @property
    def rows(self):
        """Rows of ``window`` entries of the longest filter."""
        return -(-self.max_entries // self.window)

    @property
    def max_pixel_cycles(self):
        """Most cycles between two of a PE's pixel results: every group of a filter's rows (a row takes at most
        ceil(window / lanes)) plus a refill of the pipeline."""
        return self.rows * -(-self.window // self.lanes) + self.latency


PE_BLOCKS = ("scnn_pe", "cscnn_pe")


def _require_power_of_two(name, value, low, high):
    _require_int(name, value, low, high)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of two, not {value}")


@dataclass(frozen=True, kw_only=True)
class PeConfig(_Preset):
    """Cartesian-product PE (docs/cscnn.md): the SCNN PE, or with ``reuse`` the CSCNN PE.

    Parameters
    ----------
    name : str
        Preset name; the emitted module is ``scnn_pe_<name>`` or ``cscnn_pe_<name>``.
    reuse : bool
        CSCNN: multiply the canonical half of centrosymmetric filters and scatter every
        product twice (AB0 at the weight's coordinate, AB1 at its dual's).
    px, py : int
        The multiplier array: px non-zero weights times py non-zero activations per cycle.
    banks : int
        Accumulator banks per buffer, a power of two (the paper: 2·px·py).
    filters : int
        Output channels one tile accumulates (a power of two, at most ``banks``).
    tile_h, tile_w : int
        Input plane tile; the accumulators hold its full-mode output (tile_h+r-1)×(tile_w+s-1).
    r, s : int
        Filter height and width.
    relu : bool
        The PPU applies ReLU after the bias.
    op_buffer : int
        Entries of the PE's input buffer (ops it may hold ahead of the one it works on).
    """

    name: str
    reuse: bool
    px: int = 4
    py: int = 4
    banks: int = 32
    filters: int = 4
    tile_h: int = 8
    tile_w: int = 8
    r: int = 3
    s: int = 3
    relu: bool = False
    op_buffer: int = 2

    def __post_init__(self):
        self._check_name()
        for flag in ("reuse", "relu"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be a bool, not {getattr(self, flag)!r}")
        _require_int("px", self.px, 1, 16)
        _require_int("py", self.py, 1, 16)
        _require_power_of_two("banks", self.banks, 1, 256)
        _require_power_of_two("filters", self.filters, 1, self.banks)
        _require_int("tile_h", self.tile_h, 1, 64)
        _require_int("tile_w", self.tile_w, 1, 64)
        _require_int("r", self.r, 1, 7)
        _require_int("s", self.s, 1, 7)
        _require_int("op_buffer", self.op_buffer, 2, 64)

    @property
    def block(self):
        return "cscnn_pe" if self.reuse else "scnn_pe"

    @property
    def macs(self):
        """Multipliers in the PE."""
        return self.px * self.py

    @property
    def full_h(self):
        return self.tile_h + self.r - 1

    @property
    def full_w(self):
        return self.tile_w + self.s - 1

    @property
    def buffers(self):
        """Accumulator buffers: AB0 (and AB1 with reuse)."""
        return 2 if self.reuse else 1

    @property
    def depth(self):
        """Rows per accumulator bank: one tile's filters × full-mode outputs over ``banks``."""
        return -(-self.filters * self.full_h * self.full_w // self.banks)

    @property
    def act_slots(self):
        """Activation vectors one channel of a tile can hold (every activation non-zero)."""
        return -(-self.tile_h * self.tile_w // self.py)

    @property
    def latency(self):
        """Cycles from the first drain read to the last output word (no stalls): depth rows + 2 stages."""
        return self.depth + 1

    def notation(self):
        return f"{self.px}x{self.py}"


PE_ARRAY_BLOCKS = ("scnn", "cscnn")


@dataclass(frozen=True, kw_only=True)
class PeArrayConfig(PeConfig):
    """The CSCNN accelerator's PE array (docs/cscnn_array.md): ``groups × pes_per_group`` Cartesian PEs of the
    PeConfig parameters, fed by one op stream whose words carry a PE mask, drained into one output stream.

    Parameters
    ----------
    groups : int
        PE sub-arrays (output-channel groups of mixed tiling).
    pes_per_group : int
        PEs per sub-array (planar tiles of mixed tiling, sharing the group's weights).
    The PeConfig parameters describe each PE; ``relu`` must be off (PEs hold partial sums of tiles) and
    ``op_buffer`` defaults to 8 (PEs sharing broadcast ops may drift apart by that many ops).
    """

    groups: int = 2
    pes_per_group: int = 2
    op_buffer: int = 8

    def __post_init__(self):
        super().__post_init__()
        _require_int("groups", self.groups, 1, 8)
        _require_int("pes_per_group", self.pes_per_group, 1, 8)
        if self.relu:
            raise ValueError("relu must be off on a PE array: its PEs hold partial sums that the halo step adds")

    @property
    def block(self):
        return "cscnn" if self.reuse else "scnn"

    @property
    def n_pe(self):
        return self.groups * self.pes_per_group

    @property
    def macs(self):
        """Multipliers in the array."""
        return self.n_pe * self.px * self.py

    @property
    def pe(self):
        """One PE of the array (module ``<scnn|cscnn>_pe_<name>_array``)."""
        names = {f.name for f in fields(PeConfig)}
        return PeConfig(**{k: v for k, v in self.params().items() if k in names}, name=f"{self.name}_array")

    def notation(self):
        return f"{self.groups}x{self.pes_per_group}x{self.px}x{self.py}"


def _pes(reuse, **presets):
    return {name: PeConfig(name=name, reuse=reuse, **params) for name, params in presets.items()}


def _arrays(variant, **presets):
    return {name: ArrayConfig(name=name, variant=variant, **params) for name, params in presets.items()}


CATALOG = {
    "dap": {
        "default": DapConfig(name="default", bz=8, nnz_max=5, stage_regs=True),
        "comb": DapConfig(name="comb", bz=8, nnz_max=5, stage_regs=False),
        "small": DapConfig(name="small", bz=4, nnz_max=2, stage_regs=True),
        "wide": DapConfig(name="wide", bz=16, nnz_max=8, stage_regs=True),
    },
    # Equal MAC counts across variants: default 16 MACs, paper 2048 (S2TA Table 1); small ones for fast tests.
    # mac64: the dense baseline at the MoR engine's 64 MACs (the demo's speedup_vs_dense).
    "sa": _arrays("sa", default=dict(rows=4, cols=4), small=dict(rows=2, cols=3),
                  paper=dict(rows=32, cols=64), mac64=dict(rows=8, cols=8)),
    "sa_zvcg": _arrays("sa_zvcg", default=dict(rows=4, cols=4), small=dict(rows=2, cols=3),
                       paper=dict(rows=32, cols=64)),
    "s2ta_w": _arrays("s2ta_w", default=dict(a=1, b=4, c=1, rows=2, cols=2),
                      small=dict(a=1, b=2, c=1, rows=2, cols=3, bz=4, nnz_max=3),
                      paper=dict(a=4, b=4, c=4, rows=4, cols=8)),
    "s2ta_aw": _arrays("s2ta_aw", default=dict(a=2, b=4, c=2, rows=2, cols=2),
                       small=dict(a=1, b=2, c=2, rows=2, cols=3, bz=4, nnz_max=3),
                       paper=dict(a=8, b=4, c=4, rows=8, cols=8)),
    # The paper's PE: 4x4 multipliers, 2·16 banks; tiles hold a whole digits plane (8x8, 3x3 filters).
    **{block: _pes(block == "cscnn_pe", default=dict(), small=dict(px=2, py=2, banks=8, filters=2, tile_h=4,
                                                                    tile_w=5, r=3, s=2))
       for block in PE_BLOCKS},
    # The paper's accelerator: 2 sub-arrays x 2 PEs of the default PE (64 MACs); small: 2x2 of the small PE.
    **{block: {name: PeArrayConfig(name=name, reuse=block == "cscnn", **params)
               for name, params in dict(default=dict(), small=dict(px=2, py=2, banks=8, filters=2, tile_h=4,
                                                                   tile_w=5, r=3, s=2)).items()}
       for block in PE_ARRAY_BLOCKS},
    "bincu": {
        "default": BinCuConfig(name="default", bits_per_cycle=16, max_in=512),
        "small": BinCuConfig(name="small", bits_per_cycle=5, max_in=40),
    },
    # 4 PEs of 4 MACs; every digits conv layer fits (C·H·W ≤ 2048, C·R·S ≤ 288, 64 pixels).
    "snapea": {
        "default": SnapeaConfig(name="default", window=9),
        "one_sided": SnapeaConfig(name="one_sided", two_sided=False, window=4),
        "small": SnapeaConfig(name="small", lanes=2, window=4, n_pe=2, max_entries=64, max_x=256, max_pixels=64),
        # One PE of the default's datapath with small memories: it fits an LFE5U-25F, so it gets an Fmax.
        "pe": SnapeaConfig(name="pe", window=9, n_pe=1, max_entries=64, max_x=128, max_pixels=64),
    },
    # The paper's 8 CUs × 8 MACs, up to 8 neurons issued a cycle (a neuron of ≤ 8 inputs takes one word), a 64-byte
    # load port (the dense sa_mac64 takes 128 bytes a cycle); layers of ≤ 64 neurons run in one piece (LeNet-5's
    # fc1 in two). small issues 2, so the tests exercise the groups, and reads a memory line per 64 MAC operands like
    # the default (16 words of 4), so the energy model it calibrates costs the default's line reads at their rate.
    "mor": {
        "default": MorConfig(name="default", max_out=64, max_vectors=16, issue=8, load_words=8),
        "small": MorConfig(name="small", n_cu=2, mac_width=4, n_bincu=1, bits_per_cycle=64, max_in=128, max_out=16,
                           max_vectors=4, issue=2, load_words=16),
    },
}

BLOCKS = tuple(CATALOG)


def preset(block, name=None):
    """The preset ``name`` of ``block`` (its default when ``name`` is None)."""
    if block not in CATALOG:
        raise ValueError(f"unknown block {block!r}; blocks are {', '.join(BLOCKS)}")
    if name is None:
        return default_preset(block)
    if name not in CATALOG[block]:
        raise ValueError(f"unknown preset {name!r} for {block}; presets are {', '.join(CATALOG[block])}")
    return CATALOG[block][name]


def default_preset(block):
    return CATALOG[block]["default"]
