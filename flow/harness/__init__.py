"""The co-simulation harness: toolchain, cocotb runner, packing, npz I/O, the stream-harness drivers, ``cosim``,
the batch check → row and the result cache."""
