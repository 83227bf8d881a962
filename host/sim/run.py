"""Build and run ``accel_top`` under cocotb + Icarus; ``host eval --backend rtl``."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host.errors import FlipLabError
from host.hw.program import predictions
from host.image import Image
from host.sim.accel import AccelConfig, check_image, ram_words, register_writes

#: Verilog sources of the accelerator, in rtl/
SOURCES = ("accel_top.v", "lane_loader.v", "sync_ram.v", "mac_dense.v", "adder_tree.v",
           "requantize.v", "clipped_relu.v", "xnor_popcount.v")
ACT_BITS = 16  # accel_top's activation buffer entry width
PROGRESS_POLL = 0.25  # seconds between two looks at the simulation's progress file


@dataclass
class SimResult:
    """What one simulation run returns.

    Attributes:
        outputs: int64 (samples, n_out): the last layer's output vector per sample (int8
            layers: y relative to the output zero point; a binarized last layer: z).
        predictions: int64 (samples,) top-1 classes formed on the host from ``outputs``.
        cycles: int64 (samples,) clock cycles per inference (start to done).
        detected: int64 (samples,) weights whose parity check failed in each inference.
        wall_seconds: wall-clock time of the simulator run (build excluded, memory loading
            included).
        run_seconds: wall-clock time of the inference loop alone (per-sample input writes and
            output reads included), measured inside the simulator.
    """

    outputs: np.ndarray
    predictions: np.ndarray
    cycles: np.ndarray
    detected: np.ndarray
    wall_seconds: float
    run_seconds: float


def rtl_dir() -> Path:
    """The folder of the Verilog sources (``rtl/`` of the source tree or of the wheel)."""
    from host._share import shared_dir

    return shared_dir("rtl")


def require_simulator() -> None:
    """Raise a one-line FlipLabError naming what to install when Icarus or cocotb is missing."""
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise FlipLabError("the RTL backend needs Icarus Verilog: apt-get install -y iverilog "
                           "(or make setup)")
    try:
        import cocotb  # noqa: F401
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        raise FlipLabError("the RTL backend needs cocotb 2.x: pip install 'cocotb>=2.0,<3' "
                           "(part of the test extra: pip install -e '.[test]')") from None


def simulate(image: Image, activations: np.ndarray, *, config: AccelConfig | None = None,
             build_dir: Path | None = None, progress: bool = False) -> SimResult:
    """Run the image's layer program on ``accel_top`` for each input vector.

    Args:
        image: an image with a layer program (``host export --lower accel``), possibly noisy.
        activations: int (samples, n_in) accelerator input vectors
            (:func:`host.hw.program.input_activations`).
        config: the accelerator's build parameters (default :class:`AccelConfig`).
        build_dir: where to build and run (default: a temporary folder, removed after).
        progress: show a tqdm bar of the inferences done on stderr (only when stderr is a
            terminal); the simulation reports each finished inference in a progress file.

    Raises:
        FlipLabError: the image does not fit the accelerator (before simulating), the simulator
            is missing, or the simulation fails.
    """
    config = config or AccelConfig()
    program = check_image(image, config)
    a = np.asarray(activations, dtype=np.int64)
    n_in = int(program["layers"][0]["n_in"])
    if a.ndim != 2 or not len(a) or a.shape[1] != n_in:
        raise FlipLabError(f"input vectors of shape {list(a.shape)}: need at least one vector "
                           f"of the {n_in} inputs the program's first layer takes")
    require_simulator()
    prog, par = register_writes(program, config)
    job = {"ram": [f"{w:x}" for w in ram_words(image.payload, config)], "prog": prog,
           "par": par, "n_layers": len(program["layers"]), "inputs": a.tolist(),
           "n_out": int(program["layers"][-1]["n_out"]), "act_bits": ACT_BITS}
    if build_dir is None:
        with tempfile.TemporaryDirectory(prefix="fliplab-rtl-") as tmp:
            return _run(job, program, config, Path(tmp), keep=False, progress=progress)
    build_dir.mkdir(parents=True, exist_ok=True)
    return _run(job, program, config, build_dir, keep=True, progress=progress)


def _failure(build_dir: Path, keep: bool, what: str) -> FlipLabError:
    """One-line error: the last line the simulator or compiler logged, and where the logs are."""
    last = ""
    for log in ("sim.log", "build.log"):
        path = build_dir / log
        if path.exists():
            lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
            if lines:
                last = lines[-1][:200]
                break
    where = f" (logs in {build_dir})" if keep else " (run with a build_dir to keep the logs)"
    return FlipLabError(f"the RTL simulation failed: {what}{': ' + last if last else ''}{where}")


@contextmanager
def _progress_bar(path: Path, total: int, enabled: bool):
    """While the block runs, a thread polls ``path`` (the simulation appends one byte per
    finished inference) and moves a tqdm bar; the bar is off when ``enabled`` is False or
    stderr is not a terminal (tqdm's ``disable=None``)."""
    from tqdm import tqdm

    path.write_bytes(b"")
    done = threading.Event()
    with tqdm(total=total, desc="rtl", unit="sample", disable=None if enabled else True,
              dynamic_ncols=True) as bar:
        def poll() -> None:
            while not done.wait(PROGRESS_POLL):
                bar.update(min(path.stat().st_size, total) - bar.n)

        watcher = threading.Thread(target=poll, name="rtl-progress", daemon=True)
        if not bar.disable:
            watcher.start()
        try:
            yield
        finally:
            done.set()
            if watcher.is_alive():
                watcher.join()
            if path.exists():
                bar.update(min(path.stat().st_size, total) - bar.n)


def _run(job: dict, program: dict, config: AccelConfig, build_dir: Path, *,
         keep: bool, progress: bool = False) -> SimResult:
    from cocotb_tools.runner import get_runner

    job_path, result_path = build_dir / "job.json", build_dir / "result.json"
    progress_path = build_dir / "progress"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    result_path.unlink(missing_ok=True)
    rtl = rtl_dir()
    runner = get_runner("icarus")
    try:
        runner.build(sources=[rtl / s for s in SOURCES], hdl_toplevel="accel_top",
                     parameters=config.parameters(), build_dir=build_dir,
                     build_args=["-g2005"], always=True, log_file=build_dir / "build.log")
        t0 = time.perf_counter()
        with _progress_bar(progress_path, len(job["inputs"]), progress):
            runner.test(test_module="host.sim.cocotb_accel", hdl_toplevel="accel_top",
                        build_dir=build_dir, test_dir=build_dir, log_file=build_dir / "sim.log",
                        extra_env={"FLIPLAB_JOB": str(job_path),
                                   "FLIPLAB_RESULT": str(result_path),
                                   "FLIPLAB_PROGRESS": str(progress_path)})
        wall = time.perf_counter() - t0
    except (SystemExit, RuntimeError, OSError) as exc:
        raise _failure(build_dir, keep, type(exc).__name__) from None
    if not result_path.exists():
        raise _failure(build_dir, keep, "no result written")
    res = json.loads(result_path.read_text(encoding="utf-8"))
    outputs = np.asarray(res["outputs"], dtype=np.int64).reshape(len(job["inputs"]), -1)
    return SimResult(outputs, predictions(program, outputs),
                     np.asarray(res["cycles"], dtype=np.int64),
                     np.asarray(res["detected"], dtype=np.int64), wall,
                     float(res["run_seconds"]))


