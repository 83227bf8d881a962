"""Argument parsing for ``host board info|write|read|dump|verify|mode|stats|emulate``.

``register(subparsers)`` adds the ``board`` command to the ``host`` parser. Every sub-command
sets ``func`` (called with the parsed namespace; returns 0, raises FlipLabError on failure) and
calls one library function of host.board. The library (numpy, tqdm, the protocol) is imported
when a sub-command runs, not when the parser is built, so ``host --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from host.board.client import DEFAULT_BAUDRATE, DEFAULT_RETRIES, DEFAULT_TIMEOUT, TIMEOUT_ENV
from host.board.emulate import NVM_KINDS
from host.board.flash import BOARDS, flash
from host.errors import FlipLabError
from host.fileio import check_target, write_atomic

if TYPE_CHECKING:
    from host.board import transfer

#: host.channels.channel_usage(), spelled out so that help costs no import of the channels
#: (tests/e2e/test_board_protocol.py checks that the two agree)
CHANNEL_USAGE = "none | bsc:P | asym:P01,P10 | stuck:F,S[,seed=D]"


def _size(text: str) -> int:
    """Parses a byte count: 4096, 0x1000, 64k, 4M (binary multiples)."""
    mult = {"k": 1 << 10, "m": 1 << 20}.get(text[-1:].lower(), 1)
    try:
        value = int(text[:-1] if mult > 1 else text, 0) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a byte count: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"negative byte count: {text!r}")
    return value


def _link(args: argparse.Namespace) -> transfer.Link:
    from host.board import transfer

    return transfer.Link(args.port, args.baud, args.timeout, args.retries)


def _add_link(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyACM0 or /dev/pts/5")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUDRATE, help="UART speed in bits/s (default %(default)s)")
    p.add_argument("--timeout", type=float, default=None,
                   help=f"seconds to wait for a reply beyond its time on the wire "
                        f"(default ${TIMEOUT_ENV}, else {DEFAULT_TIMEOUT:g})")
    p.add_argument("--retries", type=int, default=DEFAULT_RETRIES,
                   help="times a request is repeated after a timeout or a corrupt reply (default %(default)s)")


def _cmd_info(args: argparse.Namespace) -> int:
    from host.board import protocol as P
    from host.board import transfer

    info = transfer.board_info(_link(args))
    caps = [name for bit, name in ((P.CAP_ERROR_MODELS, "error-models"), (P.CAP_PROGRAM_MODE, "program-mode"),
                                   (P.CAP_EXACT_CELLS, "exact-cells"), (P.CAP_VOLATILE, "volatile"),
                                   (P.CAP_ACCELERATOR, "accelerator"))
            if info.capabilities & bit]
    print(f"board:            {info.name}")
    print(f"protocol version: {info.protocol_version}")
    print(f"memory size:      {info.memory_size} bytes")
    print(f"word width:       {info.word_bits} bits")
    print(f"written extent:   {info.written_extent} bytes")
    print(f"erase block:      {info.erase_block or 'none (writes overwrite)'}")
    print(f"max chunk:        {info.max_chunk} bytes")
    print(f"mode:             {info.model.name.lower()}")
    print(f"capabilities:     {', '.join(caps) or 'none'}")
    return 0


def _cmd_write(args: argparse.Namespace) -> int:
    from host.board import transfer

    n = transfer.write(args.file, _link(args), raw=args.raw, offset=args.offset,
                       progress=not args.quiet, verify=not args.no_verify)
    print(f"wrote {n} bytes at offset {args.offset} to {args.port}")
    return 0


def _cmd_read(args: argparse.Namespace) -> int:
    from host.board import transfer

    check_target(args.output)  # before the transfer, not after it
    data = transfer.read(_link(args), args.offset, args.length, progress=not args.quiet)
    write_atomic(args.output, data)
    print(f"read {len(data)} bytes from offset {args.offset} into {args.output}")
    return 0


def _cmd_dump(args: argparse.Namespace) -> int:
    from host.board import transfer

    n = transfer.dump(_link(args), args.output, length=args.length, offset=args.offset, progress=not args.quiet)
    print(f"dumped {n} bytes from {args.port} into {args.output}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from host.board import transfer

    res = transfer.verify(args.file, _link(args), raw=args.raw, offset=args.offset)
    if not res.ok:
        raise FlipLabError(f"board at {args.port} does not hold {args.file}: crc32 of its {res.length} "
                           f"bytes is 0x{res.actual:08x}, the file's 0x{res.expected:08x}")
    print(f"OK: {res.length} bytes match {args.file} (crc32 0x{res.expected:08x})")
    return 0


def _cmd_mode(args: argparse.Namespace) -> int:
    from host.board import transfer

    if args.spec.strip().lower().startswith("program:") and args.seed is not None:
        raise FlipLabError("--seed seeds the emulated error models; program:V ignores it")
    transfer.set_mode(_link(args), args.spec, seed=args.seed or 0)
    print(f"mode set to {args.spec}")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from host.board import transfer

    for name, value in transfer.board_stats(_link(args)).items():
        print(f"{name:16s} {value}")
    return 0


def _cmd_emulate(args: argparse.Namespace) -> int:
    from host.board.emulate import emulate

    return emulate(nvm=args.nvm, channel=args.channel, size=args.size, seed=args.seed, out=sys.stdout)


def _cmd_flash(args: argparse.Namespace) -> int:
    last = flash(args.bitstream, args.board, write_flash=args.write_flash)
    where = "SPI flash" if args.write_flash else "FPGA (until power-off)"
    print(f"programmed {args.board} {where} with {args.bitstream}: {last}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds ``board`` with its sub-commands, and ``flash``, to the ``host`` parser's sub-parsers."""
    p = subparsers.add_parser("flash", help="program an FPGA board with a bitstream (openFPGALoader)",
                              description="Program an FPGA board (docs/fpga.md).")
    p.add_argument("bitstream", help="bitstream file, e.g. rtl/fpga/build/ulx3s/ulx3s_top.bit")
    p.add_argument("--board", choices=sorted(BOARDS), default="ulx3s", help="board (default %(default)s)")
    p.add_argument("--write-flash", action="store_true",
                   help="write the board's SPI flash (kept at power-off) instead of the FPGA's SRAM")
    p.set_defaults(func=_cmd_flash)

    board = subparsers.add_parser("board", help="write, read and check a memory board over a serial port",
                                  description="Talk to a FlipLab board (docs/board.md, docs/protocol.md).")
    sub = board.add_subparsers(dest="board_command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="protocol version, memory size, word width, capabilities")
    _add_link(p)
    p.set_defaults(func=_cmd_info)

    for name, helptext, func in (("write", "write an image's payload (or a raw file) to the board", _cmd_write),
                                 ("verify", "compare the board's contents with an image's payload", _cmd_verify)):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("file", help="FlipLab image (its payload is used), or any file with --raw")
        _add_link(p)
        p.add_argument("--raw", action="store_true", help="use the file's bytes as they are")
        p.add_argument("--offset", type=_size, default=0, help="board address in bytes (default 0)")
        if name == "write":
            p.add_argument("--no-verify", action="store_true", help="skip the digest check after writing")
            p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=func)

    p = sub.add_parser("read", help="read a byte range through the board's read path")
    _add_link(p)
    p.add_argument("--offset", type=_size, default=0, help="board address in bytes (default 0)")
    p.add_argument("--length", type=_size, required=True, help="bytes to read")
    p.add_argument("-o", "--output", required=True, help="file to write (atomically)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_read)

    p = sub.add_parser("dump", help="read back what was written (the written extent, or --length)")
    _add_link(p)
    p.add_argument("--offset", type=_size, default=0, help="board address in bytes (default 0)")
    p.add_argument("--length", type=_size, default=None, help="bytes to read (default: the written extent)")
    p.add_argument("-o", "--output", required=True, help="file to write (atomically)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_dump)

    p = sub.add_parser("mode", help="set the error model (emulated board) or programming mode (real chip)")
    _add_link(p)
    p.add_argument("spec", help=f"{CHANNEL_USAGE} | program:V")
    p.add_argument("--seed", type=int, default=None,
                   help="read-noise seed / stuck-at device seed (default 0; not with program:V)")
    p.set_defaults(func=_cmd_mode)

    p = sub.add_parser("stats", help="the board's frame and transfer counters")
    _add_link(p)
    p.set_defaults(func=_cmd_stats)

    p = sub.add_parser("emulate", help="run the virtual board on a pseudo-terminal; prints its port")
    p.add_argument("--nvm", choices=NVM_KINDS, default="rram", help="memory kind (default %(default)s)")
    p.add_argument("--channel", default="none",
                   help=f"read error model: {CHANNEL_USAGE} (default none)")
    p.add_argument("--size", type=_size, default=4 << 20, help="memory size in bytes (default 4M)")
    p.add_argument("--seed", type=int, default=0, help="read-noise seed / stuck-at device seed (default 0)")
    p.set_defaults(func=_cmd_emulate)
    return board
