"""Tests of the host.report package: its names are its modules' names, and summarising needs no
matplotlib.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# --------------------------------------------------------------------------- the package split

def test_summary_and_reading_do_not_import_matplotlib():
    """host sweep prints the summary; only the plots (host report) need matplotlib."""
    code = ("import sys, host.report, host.report.summary, host.report.read; "
            "assert 'matplotlib' not in sys.modules, 'imported too early'; "
            "from host.report import write_report, plot_boxes; "
            "assert 'matplotlib' in sys.modules; print('ok')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr


def test_the_package_names_are_the_modules_names():
    import host.report as report
    from host.report import plots, read, summary, write

    assert report.read_run is read.read_run and report.summary_table is summary.summary_table
    assert report.write_report is write.write_report and report.plot_layers is plots.plot_layers
    with pytest.raises(AttributeError):
        report.no_such_name  # noqa: B018
