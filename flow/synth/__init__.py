"""Synthesis: Yosys generic cells, ECP5 LUT/FF and nextpnr Fmax (``yosys``), and comparable area (``area``)."""
