"""``host report``: the summary table, plots and ``report.md`` of a campaign run folder.

A run folder holds ``results.jsonl`` (one JSON object per trial, the columns listed in
``docs/metrics.md``) and ``campaign.json`` (the campaign definition with the reference, i.e.
undistorted, model's accuracy). One module per job:

- :mod:`host.report.read`: :func:`read_run` reads the folder into a :class:`Run`;
- :mod:`host.report.summary`: :func:`summary_table` (the table ``host sweep`` prints),
  :func:`summary_records` (its ``--json`` form, keys :data:`SUMMARY_COLUMNS`) and the
  text formatting;
- :mod:`host.report.plots`: the PNG plots (the only module that imports matplotlib);
- :mod:`host.report.write`: :func:`write_report`, ``report.md`` with its plots.

The plotting names are loaded on first use, so ``import host.report`` (or
``host.report.summary``) does not import matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from host.report.read import Run, grid_value, read_run
from host.report.summary import (
    SUMMARY_COLUMNS,
    format_rber,
    format_summary,
    summary_records,
    summary_table,
)

if TYPE_CHECKING:
    from host.report.plots import plot_accuracy_curves, plot_boxes, plot_layers
    from host.report.write import write_report

_LAZY = {"write_report": "host.report.write", "plot_accuracy_curves": "host.report.plots",
         "plot_boxes": "host.report.plots", "plot_layers": "host.report.plots"}


def __getattr__(name: str) -> object:
    """The plotting and writing names, imported (with matplotlib) when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Run", "read_run", "grid_value", "summary_table", "summary_records", "format_summary",
    "format_rber", "write_report", "plot_accuracy_curves", "plot_boxes", "plot_layers",
    "SUMMARY_COLUMNS",
]
