"""Talking to a FlipLab board (real or virtual) over a serial line: docs/protocol.md, docs/board.md.

- ``protocol``: frame and payload encoding (COBS + CRC-32), the constants of the protocol
- ``client``: ``BoardClient``, the pyserial client with timeouts, retries and chunked transfers
- ``emulate``: starting the compiled virtual board (firmware/targets/host) on a pseudo-terminal
- ``transfer``: the library functions behind ``host board ...`` and ``host eval --board``
- ``cli``: ``register(subparsers)`` adds the ``board`` command
"""

from host.board.transfer import (
    board_info,
    board_stats,
    dump,
    load_payload,
    read,
    roundtrip,
    set_mode,
    verify,
    write,
)
from host.board.emulate import VirtualBoard  # the module host.board.emulate has emulate()

__all__ = [
    "VirtualBoard", "board_info", "board_stats", "dump", "load_payload", "read",
    "roundtrip", "set_mode", "verify", "write",
]
