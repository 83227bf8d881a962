"""Where models come from: a user's ONNX file by path, or a reference model by name.

The reference models (trained on the embedded digits by models/train.py, a card each in
models/README.md) live in the repository's ``models/`` folder, which the wheel carries as package
data (``host._share``).
"""

from __future__ import annotations

from pathlib import Path

from host._share import shared_dir
from host.errors import FlipLabError


def models_dir() -> Path:
    """The folder of the reference models (``models/`` of the source tree or of the wheel)."""
    return shared_dir("models")


def bundled_models() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.onnx"))


def resolve_model(name_or_path: str | Path) -> Path:
    """A path that exists, or the name of a bundled model (``digits_mlp``), to a model file."""
    path = Path(name_or_path)
    if path.exists():
        return path
    folder = models_dir()
    bundled = folder / f"{path.name}.onnx" if path.suffix == "" else folder / path.name
    if bundled.exists() and path.parent == Path("."):
        return bundled
    known = ", ".join(bundled_models()) or "none found"
    raise FlipLabError(f"model {name_or_path} does not exist (bundled models: {known})")
