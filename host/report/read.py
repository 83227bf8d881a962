"""Reading a campaign run folder for the report: ``results.jsonl`` and ``campaign.json``.

:func:`read_run` returns a :class:`Run`: the trials as a DataFrame (duplicates dropped), the
campaign definition, the notes the report must carry (partial grid, ignored lines, …) and the
(codec, scope) pairs whose grid is incomplete.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from host.campaign.store import CAMPAIGN, RESULTS, TORN, DamagedLine, damage_warning, read_results
from host.errors import FlipLabError

RESULTS_FILE = RESULTS
CAMPAIGN_FILE = CAMPAIGN

REQUIRED_COLUMNS = ("codec", "bits_per_weight", "rate", "trial", "scope", "accuracy")
"""Columns a results row must have; the others of the schema are used when present."""


@dataclass
class Run:
    """A campaign run folder, read.

    Attributes:
        path: the run folder.
        results: one row per trial (duplicates of a (codec, scope, rate, trial) dropped, the
            last written kept).
        campaign: the parsed ``campaign.json`` ({} when absent).
        notes: what the report must say about the data (partial run, ignored lines, …).
        incomplete: (codec, scope) pairs whose grid is not complete.
        damaged: the lines of ``results.jsonl`` that were skipped (a torn last line, invalid
            JSON, rows without the required columns); ``host report`` prints how many.
    """

    path: Path
    results: pd.DataFrame
    campaign: dict
    notes: list[str] = field(default_factory=list)
    incomplete: set[tuple[str, str]] = field(default_factory=set)
    damaged: list[DamagedLine] = field(default_factory=list)
    _layer_names: dict[str, str] | None = field(default=None, repr=False)

    @property
    def reference_accuracy(self) -> float:
        """A: the undistorted model's accuracy (fraction), NaN when the campaign lacks it."""
        return _number(self.campaign.get("reference", {}), "accuracy")

    @property
    def reference_correct(self) -> int | dict[str, int] | None:
        """The failure rate's denominator: samples the undistorted model classifies
        correctly, None when unknown. With activation faults (``reference.quantised`` in
        campaign.json) the undistorted model is each codec's fault-free quantised network:
        ``{codec: correct}``."""
        counts = {c: n for c, (_, n) in self.quantised_reference.items()}
        if counts and not any(math.isnan(n) for n in counts.values()):
            return {c: int(n) for c, n in counts.items()}
        value = _number(self.campaign.get("reference", {}), "correct")
        return None if math.isnan(value) else int(value)

    @property
    def quantised_reference(self) -> dict[str, tuple[float, float]]:
        """Activation faults: per codec, the fault-free quantised network's (accuracy,
        correct) from ``reference.quantised`` in campaign.json (NaN where a value is missing or
        not a number); empty for weight campaigns."""
        reference = self.campaign.get("reference", {})
        quantised = reference.get("quantised") if isinstance(reference, dict) else None
        if not isinstance(quantised, dict):
            return {}
        return {str(c): (_number(v, "accuracy"), _number(v, "correct"))
                for c, v in quantised.items() if isinstance(v, dict)}

    def codecs(self) -> list[str]:
        """Codecs in the campaign's order, then any others in the order they appear."""
        return _ordered(grid_value(self.campaign, "codecs"), self.results["codec"])

    def layer_names(self) -> dict[str, str]:
        """Each swept layer's short name (host.names, as ``host inspect`` shows it), keyed by
        the layer; read from the campaign's model when its file is at hand (the op type
        drops the exporter's ``/<op_type>`` suffix), else from the layer name alone."""
        if self._layer_names is None:
            layers = [s[len("layer:"):] for s in self.scopes() if s.startswith("layer:")]
            self._layer_names = layer_short_names(layers, self.campaign.get("model"))
        return self._layer_names

    def display_scope(self, scope: str) -> str:
        """``layer:<short name>`` for a layer scope, other scopes as they are."""
        if scope.startswith("layer:"):
            layer = scope[len("layer:"):]
            return "layer:" + self.layer_names().get(layer, layer)
        return scope

    def scopes(self) -> list[str]:
        """Scopes, "model" first, then the campaign's order, then the order they appear."""
        found = _ordered(grid_value(self.campaign, "scopes"), self.results["scope"])
        return sorted(found, key=lambda s: s != "model")


def layer_short_names(layers: list[str], model_path: object = None) -> dict[str, str]:
    """``{layer: short name}`` (host.names.layer_stem, unique: ``_2``… on a collision); the
    model at ``model_path``, when readable, gives each layer's op type."""
    from host.names import layer_stem

    op_of: dict[str, str] = {}
    if isinstance(model_path, str) and Path(model_path).is_file():
        try:
            import onnx

            from host.model.passes import name_unnamed_nodes

            graph = name_unnamed_nodes(onnx.load(model_path, load_external_data=False)).graph
            op_of = {n.name: n.op_type for n in graph.node}
        except Exception:  # a display nicety: an unreadable model leaves the names as stems
            op_of = {}
    names: dict[str, str] = {}
    taken: dict[str, int] = {}
    for layer in layers:
        base = layer_stem(layer, op_of.get(layer, ""))
        taken[base] = taken.get(base, 0) + 1
        names[layer] = base if taken[base] == 1 else f"{base}_{taken[base]}"
    return names


def grid_value(campaign: dict, key: str) -> object:
    """A grid entry of ``campaign.json`` (``codecs``, ``channel``, ``rates``, ``trials``,
    ``scopes``): under ``"grid"`` as ``host sweep`` writes it, else at the top level."""
    grid = campaign.get("grid")
    if isinstance(grid, dict) and key in grid:
        return grid[key]
    return campaign.get(key)


def _number(obj: object, key: str) -> float:
    if not isinstance(obj, dict):
        return math.nan
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _ordered(declared: object, observed: pd.Series) -> list[str]:
    seen = list(dict.fromkeys(observed.astype(str)))
    first = [str(c) for c in declared if str(c) in seen] if isinstance(declared, list) else []
    return first + [c for c in seen if c not in first]


def read_run(run_dir: str | Path) -> Run:
    """Read a run folder's ``results.jsonl`` and ``campaign.json``.

    Lines of ``results.jsonl`` that are not rows (an incomplete last line left by an
    interrupted write, invalid JSON, a row without the :data:`REQUIRED_COLUMNS`) are skipped,
    listed in :attr:`Run.damaged` and noted. A missing results file, one without any row, or
    non-numeric rates, accuracies, bits or trials raise a one-line :class:`FlipLabError`.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FlipLabError(f"run folder {path} does not exist")
    results_path = path / RESULTS_FILE
    if not results_path.is_file():
        raise FlipLabError(f"no results in {path}: {RESULTS_FILE} is missing")
    notes: list[str] = []
    rows, damaged = _read_rows(results_path, notes)
    df = pd.DataFrame.from_records(rows)
    try:
        df["rate"] = df["rate"].astype(float)
        df["accuracy"] = df["accuracy"].astype(float)
        df["bits_per_weight"] = df["bits_per_weight"].astype(float)
        df["trial"] = df["trial"].astype(int)
    except (TypeError, ValueError):
        raise FlipLabError(f"{results_path}: rate, accuracy, bits_per_weight and trial must "
                           "be numbers") from None
    df["codec"] = df["codec"].astype(str)
    df["scope"] = df["scope"].astype(str)
    key = ["codec", "scope", "rate", "trial"]
    duplicated = int(df.duplicated(key, keep="last").sum())
    if duplicated:
        df = df.drop_duplicates(key, keep="last").reset_index(drop=True)
        notes.append(f"{duplicated} repeated trial row(s) in {RESULTS_FILE}; the last written "
                     "of each was kept.")
    campaign = _read_campaign(path / CAMPAIGN_FILE, notes)
    run = Run(path, df, campaign, notes, damaged=damaged)
    _check_completeness(run)
    return run


def _read_rows(path: Path, notes: list[str]) -> tuple[list[dict], list[DamagedLine]]:
    found = read_results(path, required=REQUIRED_COLUMNS)
    torn = [d for d in found.damaged if d.reason == TORN]
    other = [d for d in found.damaged if d.reason != TORN]
    if other:
        notes.append(f"{len(other)} damaged line(s) of {RESULTS_FILE} were skipped: "
                     + ", ".join(d.describe() for d in other[:12])
                     + (f", … and {len(other) - 12} more" if len(other) > 12 else "") + ".")
    for d in torn:
        notes.append(f"the last line of {RESULTS_FILE} (line {d.line}) is incomplete, "
                     "probably an interrupted write; it was ignored.")
    if not found.rows:
        lacking = {k for d in found.damaged for k in d.missing}
        if lacking:
            raise FlipLabError(f"{path}: rows lack the column(s) "
                               f"{', '.join(k for k in REQUIRED_COLUMNS if k in lacking)}")
        damage = damage_warning(RESULTS_FILE, found.damaged)
        raise FlipLabError(f"{path} holds no trials" + (f" ({damage})" if damage else ""))
    return found.rows, found.damaged


def _read_campaign(path: Path, notes: list[str]) -> dict:
    if not path.is_file():
        notes.append(f"{CAMPAIGN_FILE} is missing: no reference accuracy, no grid to check "
                     "completeness against.")
        return {}
    try:
        campaign = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FlipLabError(f"cannot read {path}: {exc}") from None
    if not isinstance(campaign, dict):
        raise FlipLabError(f"{path} is not a JSON object")
    return campaign


def _check_completeness(run: Run) -> None:
    """Note the points of the campaign grid that have fewer trials than planned, or none."""
    df, campaign = run.results, run.campaign
    trials = grid_value(campaign, "trials")
    trials = trials if isinstance(trials, int) and not isinstance(trials, bool) else None
    rates = grid_value(campaign, "rates")
    planned_rates = ([float(r) for r in rates if float(r) > 0]
                     if isinstance(rates, list) and all(isinstance(r, (int, float)) for r in rates)
                     else None)
    counts = df[df["rate"] > 0].groupby(["codec", "scope", "rate"]).size().to_dict()
    has_clean = set(zip(df.loc[df["rate"] == 0, "codec"], df.loc[df["rate"] == 0, "scope"]))
    short: list[str] = []
    for codec in run.codecs():
        for scope in run.scopes():
            observed = {r: n for (c, s, r), n in counts.items() if c == codec and s == scope}
            grid = planned_rates if planned_rates is not None else sorted(observed)
            for rate in grid:
                n = sum(int(k) for r, k in observed.items() if math.isclose(r, rate, rel_tol=1e-6))
                if n == 0 or (trials is not None and n < trials):
                    run.incomplete.add((codec, scope))
                    planned = f" of {trials}" if trials is not None else ""
                    short.append(f"{codec} / {scope} at p = {rate:g}: {n}{planned} trials")
            if (codec, scope) not in has_clean:
                run.incomplete.add((codec, scope))
                short.append(f"{codec} / {scope}: no clean row (rate 0)")
    if short:
        shown = "; ".join(short[:12]) + (f"; … and {len(short) - 12} more" if len(short) > 12
                                          else "")
        run.notes.append(f"Partial run: {len(short)} grid point(s) are incomplete ({shown}). "
                         "Statistics use the trials that exist.")
