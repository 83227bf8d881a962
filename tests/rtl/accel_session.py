"""A host session against the FPGA's accelerator (protocol v2) over a serial port. Run as a
program by cocotb_fpga_accel.py against the simulated ULX3S top (python accel_session.py PORT
WORKDIR); exits 0 when every check holds, else prints the failed check and exits 1. Writes what
the board computed to WORKDIR/board_runs.json, where test_fpga_accel.py compares it with the
`rtl` executor (accel_top simulated alone).

The images, written with `host board write`: digits_mlp_int8 (parity(int8)) after a BSC at
p = 1e-3 (the int8 datapath with detected parity errors), and digits_bnn (parity(sign)), clean,
at a second offset (the XNOR-popcount datapath). Every output vector, cycle count and
parity-error count must equal host.hw's. (Few BNN samples: every byte costs 40 simulated clock
cycles on the line, and Icarus runs the top at about 10^4 cycles per second.)
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np

from host.board import accel
from host.board import protocol as P
from host.board.client import BoardClient
from host.channels import parse_channel
from host.cli import main as host_main
from host.data import load_dataset
from host.decode import decode_weights
from host.errors import FlipLabError
from host.executors import get_executor
from host.export import CodecPlan, build_accel_image
from host.hw.program import inference_cycles, input_activations, run_program
from host.image import Image, write_image
from host.inject import inject
from host.model import load_model

MODELS = Path(__file__).resolve().parents[2] / "models"
MEMORY = 65536  # MEM_ADDR_BITS = 16 in the simulation
BNN_OFFSET = 32768
SEED = 20261202
#: (case, samples): the noisy int8 model, the clean BNN
CASES = (("int8_noisy", 20), ("bnn", 4))


def images() -> dict[str, Image]:
    """The three images of the session (also rebuilt by test_fpga_accel.py)."""
    def lowered(model: str, codec: str) -> Image:
        return build_accel_image(load_model(MODELS / f"{model}.onnx"), CodecPlan(codec))[0]

    int8 = lowered("digits_mlp_int8", "parity(int8)")
    noisy, report = inject(int8, parse_channel("bsc:1e-3"), seed=SEED)
    assert report.flips > 0
    return {"int8_noisy": noisy, "bnn": lowered("digits_bnn", "parity(sign)")}


def activations(image: Image, samples: int) -> np.ndarray:
    x, _ = load_dataset("digits", input_shape=image.model["input_shape"], normalize="unit",
                        samples=samples)
    return input_activations(image.program, x)


def host(*argv: str, exit_code: int = 0) -> str:
    """Runs `host ARGV` in process; returns its stdout and stderr; checks the exit code."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = host_main(list(argv))
    assert code == exit_code, f"host {' '.join(argv)} exited {code}: {out.getvalue()}"
    return out.getvalue()


def refused(call, status: str) -> None:
    try:
        call()
    except FlipLabError as exc:
        assert status in str(exc), exc
        return
    raise AssertionError(f"not refused with {status}")


def session(port: str, work: Path) -> None:
    log = (work / "session.log").open("a", buffering=1)
    link = ("--port", port)
    out = host("board", "info", *link)
    assert "protocol version: 2" in out and "accelerator" in out, out
    with BoardClient(port) as c:
        info = c.accel_info()
        assert (info.lanes, info.word_bits, info.payload_bytes, info.activations, info.neurons,
                info.layers, info.max_q, info.act_bits) == (8, 128, 16384, 128, 256, 8, 16, 16), info
    print("accel info", info, file=log)
    imgs = images()
    for name, offset in (("int8_noisy", 0), ("bnn", BNN_OFFSET)):
        write_image(imgs[name], work / f"{name}.bin")
        host("board", "write", str(work / f"{name}.bin"), "--offset", str(offset), "-q", *link)

    runs = {}
    with BoardClient(port) as c:
        for case, samples in CASES:
            image = imgs[case]
            print("case", case, file=log)
            loaded = accel.load(c, image, BNN_OFFSET if case == "bnn" else 0)
            a = activations(image, samples)
            print("loaded", file=log)
            got = accel.run(c, loaded, a)
            print("ran", got, file=log)
            ref = run_program(image.program, image.payload, a)
            np.testing.assert_array_equal(got.outputs, ref.outputs, err_msg=case)
            np.testing.assert_array_equal(got.detected, np.full(samples, ref.detected), err_msg=case)
            assert (ref.detected > 0) == (case == "int8_noisy"), (case, ref.detected)
            lanes = loaded.config.lanes
            expected = inference_cycles(image.program, lanes, loaded.config.word_bits)
            assert set(got.cycles.tolist()) == {expected}, (case, got.cycles, expected)
            runs[case] = {"outputs": got.outputs.tolist(), "cycles": got.cycles.tolist(),
                          "detected": got.detected.tolist()}

        # refusals: the checks of docs/protocol.md, in its order
        refused(lambda: c.request(P.Command.ACCEL_RUN, P.accel_run_request(0, 10, [0] * 64)), "BAD_ARGUMENT")
        refused(lambda: c.request(P.Command.ACCEL_RUN, P.accel_run_request(9, 10, [0] * 64)), "BAD_ARGUMENT")
        refused(lambda: c.request(P.Command.ACCEL_RUN, P.accel_run_request(3, 129, [0] * 64)), "BAD_ARGUMENT")
        refused(lambda: c.request(P.Command.ACCEL_RUN, P.accel_run_request(3, 10, [0] * 129)), "BAD_LENGTH")
        refused(lambda: c.request(P.Command.ACCEL_RUN, P.accel_run_request(3, 10, [0]) + b"\x00"), "BAD_LENGTH")
        refused(lambda: c.request(P.Command.ACCEL_LOAD, P.accel_load_request(MEMORY - 4, 5)), "OUT_OF_RANGE")
        refused(lambda: c.request(P.Command.ACCEL_LOAD, P.accel_load_request(0, 16385)), "OUT_OF_RANGE")
        refused(lambda: c.request(P.Command.ACCEL_LOAD, b"\x00" * 7), "BAD_LENGTH")
        refused(lambda: c.request(P.Command.ACCEL_WRITE, P.accel_write_request(2, 0, [1])), "BAD_ARGUMENT")
        refused(lambda: c.request(P.Command.ACCEL_WRITE, P.accel_write_request(0, 63, [1, 2])), "OUT_OF_RANGE")
        refused(lambda: c.request(P.Command.ACCEL_WRITE, P.accel_write_request(1, 1023, [1, 2])), "OUT_OF_RANGE")
        refused(lambda: c.request(P.Command.ACCEL_WRITE, P.accel_write_request(1, 0, [1]) + b"\x00"), "BAD_LENGTH")
        refused(lambda: c.request(P.Command.ACCEL_INFO, b"\x00"), "BAD_LENGTH")
        # a program that never ends (layer 0 with n_in = 0): stopped after RUN_TIMEOUT cycles
        c.accel_write(P.AccelSpace.PROGRAM, 1, [0])
        refused(lambda: c.accel_run(1, [0] * 64, 10), "BAD_ARGUMENT")
        # the last writable addresses are accepted; after the refusals and the stopped run the
        # BNN, loaded again, gives the same outputs
        c.request(P.Command.ACCEL_WRITE, P.accel_write_request(1, 1023, [0]))
        loaded = accel.load(c, imgs["bnn"], BNN_OFFSET)
        again = accel.run(c, loaded, activations(imgs["bnn"], 2))
        assert again.outputs.tolist() == runs["bnn"]["outputs"][:2], again
        stats = c.stats()
        assert stats["rx_bad_requests"] == 14, stats

    # the `board` executor (host eval --backend board): the noisy int8 image is at offset 0
    # already (its DIGEST matches, nothing is rewritten); logits as the reference executor's
    image = imgs["int8_noisy"]
    x, _ = load_dataset("digits", input_shape=image.model["input_shape"], normalize="unit", samples=3)
    variant = decode_weights(image)
    on_board = get_executor("board").for_image(image, port=port).run(variant, x)
    reference = get_executor("reference").for_image(image).run(variant, x)
    np.testing.assert_array_equal(on_board.logits, reference.logits)
    assert on_board.extra["detected"] == reference.extra["detected"] == variant.total_nulled > 0
    print("board executor", on_board.extra, file=log)
    (work / "board_runs.json").write_text(json.dumps(runs))


if __name__ == "__main__":
    try:
        session(sys.argv[1], Path(sys.argv[2]))
    except (AssertionError, FlipLabError) as exc:
        print(f"accel session FAILED: {type(exc).__name__}: {exc}", flush=True)
        raise SystemExit(1) from None
    print("accel session passed", flush=True)
