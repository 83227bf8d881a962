"""Talking to a FlipLab board (real or virtual) over a serial line: docs/protocol.md, docs/board.md.

- ``protocol``: frame and payload encoding (COBS + CRC-32), the constants of the protocol
- ``client``: ``BoardClient``, the pyserial client with timeouts, retries and chunked transfers
- ``emulate``: starting the compiled virtual board (firmware/targets/host) on a pseudo-terminal
- ``transfer``: the library functions behind ``host board ...`` and ``host eval --board``
- ``cli``: ``register(subparsers)`` adds the ``board`` command
"""

__all__ = [
    "VirtualBoard", "board_info", "board_stats", "dump", "load_payload", "read",
    "roundtrip", "set_mode", "verify", "write",
]


def __getattr__(name: str):
    """The names above, imported on first use (PEP 562): importing ``host.board.cli`` to build
    the command line must not pull in numpy and the client."""
    if name == "VirtualBoard":  # the module host.board.emulate has emulate()
        from host.board.emulate import VirtualBoard

        return VirtualBoard
    if name in __all__:
        from host.board import transfer

        return getattr(transfer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
