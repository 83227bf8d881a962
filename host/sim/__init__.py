"""Bridge to the RTL simulation: run ``rtl/accel_top.v`` under cocotb 2.x + Icarus from Python.

``simulate(image, activations)`` checks the image against the accelerator's configuration
(before any simulator starts), builds ``accel_top`` with the cocotb Python runner
(``cocotb_tools.runner``, Icarus Verilog), runs one inference per input vector and returns the
output vectors, cycles per inference and detected (parity-failed) weights. The ``rtl``
executor (host.executors.rtl, ``host eval --backend rtl``) calls it. docs/simulation.md explains
the set-up.
"""

from host.sim.accel import AccelConfig, check_image, ram_words, register_writes
from host.sim.run import SimResult, require_simulator, rtl_dir, simulate

__all__ = ["AccelConfig", "SimResult", "check_image", "ram_words",
           "register_writes", "require_simulator", "rtl_dir", "simulate"]
