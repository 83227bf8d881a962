"""``host sweep A.onnx,B.onnx,C.onnx``: the same campaign on several models, then compared.

Seed 003 compares a model with its clipped versions on the same faults (issue 10):

    host sweep MODEL,clipped.onnx,tuned.onnx --codecs float32 ... --out runs/clip
    host report runs/clip

Each model gets its own one-model campaign folder ``OUT/<model stem>/`` (``campaign.json`` +
``results.jsonl``, resumed as any ``host sweep``), so a campaign keeps one model's identity
and every one-model tool (``host report OUT/<stem>``) reads it unchanged; ``OUT/sweep.json``
lists the models in order, and ``OUT/compare.md`` compares them, the first being the
baseline (host.report.compare: AUC, AUC gain, accuracy differences in points, curves and box
plots, rows labelled by model). Same seed and trials: every model sees the same nested error
patterns wherever their stored bits line up (docs/campaigns.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from host.campaign.grid import CampaignSpec
from host.campaign.store import CAMPAIGN, prepare_folder
from host.campaign.sweep import SweepResult, SweepSettings, make_spec, run_sweep
from host.errors import FlipLabError
from host.fileio import write_atomic

#: the list of a several-model sweep's campaigns, in ``OUT``
MODELS_FILE = "sweep.json"
MODELS_FORMAT = "fliplab-model-sweep"


def split_models(text: str) -> list[str]:
    """``A,B,C`` -> ``["A", "B", "C"]``; a path that exists is one model even if it holds a
    comma. Refuses an empty entry and a model named twice."""
    if Path(text).exists():
        return [text]
    models = [m.strip() for m in text.split(",")]
    if any(not m for m in models):
        raise FlipLabError(f"model list {text!r} has an empty entry (models are comma-separated)")
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:
        raise FlipLabError(f"model {twice[0]!r} is named twice in {text!r}")
    return models


def folder_names(specs: Sequence[CampaignSpec]) -> list[str]:
    """Each model's campaign folder name: its file's stem, ``_2``, ``_3``… on a collision."""
    names: list[str] = []
    for spec in specs:
        stem = Path(spec.model).stem or "model"
        name, n = stem, 1
        while name in names:
            n += 1
            name = f"{stem}_{n}"
        names.append(name)
    return names


@dataclass
class ModelSweepResult:
    """What :func:`run_model_sweeps` did: one :class:`SweepResult` per model (in order), the
    model file and folder of each, and the comparison written (None without a whole-model
    scope) with its table."""

    out: Path
    models: list[str]
    folders: list[Path]
    results: list[SweepResult] = field(default_factory=list)
    comparison: Path | None = None
    table: Any = field(default=None, repr=False)  # a pandas DataFrame


def read_model_list(out: Path) -> list[dict] | None:
    """``OUT/sweep.json``'s models (``[{"model", "folder"}]``), None when ``out`` has none."""
    path = Path(out) / MODELS_FILE
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FlipLabError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != MODELS_FORMAT \
            or not isinstance(doc.get("models"), list) \
            or not all(isinstance(m, dict) and isinstance(m.get("folder"), str)
                       for m in doc["models"]):
        raise FlipLabError(f"{path} is not a FlipLab model-sweep list")
    return doc["models"]


def run_model_sweeps(models: Sequence[str], settings: SweepSettings, out: str | Path, *,
                     workers: int = 1, scheduler: str | None = None, progress: bool = True,
                     compare_at: Sequence[float] | None = None,
                     announce: Callable[[str], None] | None = None,
                     low_memory: bool = False) -> ModelSweepResult:
    """Run (or resume) ``settings`` on every model, each into ``out/<stem>``, then compare
    (``low_memory``: as :func:`~host.campaign.sweep.run_sweep`'s).

    Every model is checked (:func:`make_spec`) before any campaign runs. ``out`` holding a
    one-model campaign, or another list of models, is refused.
    """
    if len(models) < 2:
        raise FlipLabError("a several-model sweep needs at least two models")
    out = Path(out)
    if (out / CAMPAIGN).exists():
        raise FlipLabError(f"{out} holds a one-model campaign; give several models another "
                           f"--out folder")
    specs = [make_spec(m, settings) for m in models]
    names = folder_names(specs)
    entries = [{"model": spec.model, "folder": name} for spec, name in zip(specs, names)]
    old = read_model_list(out)
    if old is not None and [(e.get("model"), e["folder"]) for e in old] != \
            [(e["model"], e["folder"]) for e in entries]:
        raise FlipLabError(f"{out} holds a sweep of other models "
                           f"({', '.join(str(e.get('model')) for e in old)}); give another --out")
    prepare_folder(out)
    if old is None:
        write_atomic(out / MODELS_FILE, (json.dumps(
            {"format": MODELS_FORMAT, "version": 1, "models": entries}, indent=2) + "\n"
        ).encode("utf-8"))
    result = ModelSweepResult(out, [spec.model for spec in specs], [out / n for n in names])
    for spec, folder in zip(specs, result.folders):
        if announce:
            announce(f"sweep {Path(spec.model).name} -> {folder}")
        result.results.append(run_sweep(spec, folder, workers=workers, scheduler=scheduler,
                                        progress=progress, low_memory=low_memory))
    if "model" in specs[0].scopes:
        from host.report.compare import compare_runs

        result.comparison, result.table = compare_runs(result.folders, out, at=compare_at)
    return result
