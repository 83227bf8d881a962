"""host.cli: every command and option says what it does."""

from __future__ import annotations

import argparse

from host.cli import build_parser


def _undocumented(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _undocumented(sub, f"{prefix} {name}")
        elif not action.help:
            out.append(f"{prefix} {'/'.join(action.option_strings) or action.dest}")
    return out


def test_every_option_has_help():
    assert _undocumented(build_parser(), "host") == []
