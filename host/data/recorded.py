"""The input normalisation a model records, and which one a command uses (issue 9).

An image records the normalisation chosen at export (``host export --normalize``). An ONNX
model records one in its ``metadata_props``:

- ``fliplab.normalize``: a normalisation spec (``unit``, ``none``, ``meanstd:M,S``,
  ``binary``), which a user may set on their own export (``onnx.helper.set_model_props``);
- else the one ``host clip`` profiled with (``fliplab.clip.profile``), which a clipped
  model carries: its thresholds were measured on inputs normalised so.

Precedence, as ``host eval --image`` has it: an explicit ``--normalize``, else the recorded
one, else ``none`` for an integer input (token ids), else ``unit``. An explicit value that
differs from the recorded one is used, with a warning (:func:`normalize_conflict`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from host.data.normalize import parse_normalization
from host.errors import FlipLabError

NORMALIZE_KEY = "fliplab.normalize"
_CLIP_PROFILE_KEY = "fliplab.clip.profile"  # host.mitigation.clip.PROFILE_KEY


def recorded_normalize(model) -> str | None:
    """The normalisation spec ``model`` (an ONNX ModelProto or a path to one) records, in its
    canonical form, or None. A recorded value that is not a valid spec is refused."""
    if isinstance(model, (str, os.PathLike)):
        import onnx

        try:
            model = onnx.load(str(model), load_external_data=False)
        except Exception as exc:  # the reader's own refusal comes later, from load_model
            raise FlipLabError(f"cannot read {model}: {str(exc).splitlines()[0]}") from None
    props = {p.key: p.value for p in model.metadata_props}
    spec = props.get(NORMALIZE_KEY)
    where = NORMALIZE_KEY
    if spec is None and _CLIP_PROFILE_KEY in props:
        try:
            spec = json.loads(props[_CLIP_PROFILE_KEY]).get("normalize")
        except (json.JSONDecodeError, AttributeError):
            spec = None
        where = f"{_CLIP_PROFILE_KEY} (normalize)"
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise FlipLabError(f"model metadata {where} is not a normalisation spec: {spec!r}")
    try:
        return parse_normalization(spec).spec
    except FlipLabError as exc:
        raise FlipLabError(f"model metadata {where}: {exc}") from None


def choose_normalize(given: str | None, recorded: str | None, input_dtype: str = "float32"
                     ) -> str:
    """The normalisation a command uses: ``given``, else ``recorded``, else ``none`` for an
    integer input, else ``unit``."""
    if given is not None:
        return given
    if recorded is not None:
        return recorded
    return "none" if np.dtype(input_dtype).kind in "iu" else "unit"


def normalize_conflict(model: str | Path, given: str | None) -> str | None:
    """A warning when ``given`` (an explicit ``--normalize``) differs from what the model
    (a path or a bundled model's name) records; None when they agree or either is absent."""
    if given is None:
        return None
    from host.models import resolve_model

    recorded = recorded_normalize(resolve_model(model))
    if recorded is None or parse_normalization(given).spec == recorded:
        return None
    return (f"--normalize {given} differs from the normalisation {Path(str(model)).name} "
            f"records ({recorded}); using --normalize {given}")
