"""Where models come from: a user's ONNX file by path, or a reference model by name.

The reference models (trained on the embedded digits by models/train.py, a card each in
models/README.md) live in the repository's ``models/`` folder.
"""

from __future__ import annotations

from pathlib import Path

from host.errors import FlipLabError

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def bundled_models() -> list[str]:
    return sorted(p.stem for p in MODELS_DIR.glob("*.onnx"))


def resolve_model(name_or_path: str | Path) -> Path:
    """A path that exists, or the name of a bundled model (``digits_mlp``), to a model file."""
    path = Path(name_or_path)
    if path.exists():
        return path
    bundled = MODELS_DIR / f"{path.name}.onnx" if path.suffix == "" else MODELS_DIR / path.name
    if bundled.exists() and path.parent == Path("."):
        return bundled
    known = ", ".join(bundled_models()) or "none found"
    raise FlipLabError(f"model {name_or_path} does not exist (bundled models: {known})")
