"""Reading an ONNX file safely: refuse what is not an ONNX model and external data
that points outside the model's folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from host.errors import FlipLabError


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def iter_graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every TensorProto of a graph: initializers and tensor attributes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from iter_graph_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from iter_graph_tensors(subgraph)


def _external_location(tensor: onnx.TensorProto) -> str:
    for entry in tensor.external_data:
        if entry.key == "location":
            return entry.value
    return ""


def check_external_data(model: onnx.ModelProto, folder: Path) -> None:
    """Refuse external-data locations that leave ``folder`` or name missing files."""
    root = folder.resolve()
    for tensor in iter_graph_tensors(model.graph):
        if not external_data_helper.uses_external_data(tensor):
            continue
        location = _external_location(tensor)
        if not location:
            raise FlipLabError(f"tensor {tensor.name!r} uses external data but names no file")
        relative = Path(location)
        if relative.is_absolute() or os.path.isabs(location) or ".." in relative.parts:
            raise FlipLabError(
                f"tensor {tensor.name!r}: external data location {location!r} leaves the "
                f"model's folder (absolute paths and '..' are refused)"
            )
        target = (root / relative).resolve()
        if not target.is_relative_to(root):
            raise FlipLabError(
                f"tensor {tensor.name!r}: external data location {location!r} resolves "
                f"outside the model's folder"
            )
        if not target.is_file():
            raise FlipLabError(
                f"tensor {tensor.name!r}: external data file {location!r} not found "
                f"next to the model"
            )


def _parse(path: Path) -> onnx.ModelProto:
    """The model in ``path`` without its external data (refusing what is not ONNX)."""
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, UnicodeDecodeError) as error:
        raise FlipLabError(f"{path} is not an ONNX model ({_first_line(error)})") from error
    if model.ir_version <= 0 or not model.opset_import or not model.graph.node:
        raise FlipLabError(f"{path} is not an ONNX model (no IR version, opset or nodes)")
    return model


def _check(path: Path, model: onnx.ModelProto | str) -> None:
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as error:
        raise FlipLabError(f"{path} is not a valid ONNX model ({_first_line(error)})") from error


def read_onnx(path: str | os.PathLike) -> onnx.ModelProto:
    """Load and check an ONNX model, with its external data when it has some.

    Raises:
        FlipLabError: the path does not exist or is not a file, the file is not an ONNX
            model, its external data is outside its folder or missing, or the model fails
            ``onnx.checker``.
    """
    path = Path(path)
    if not path.exists():
        raise FlipLabError(f"model file not found: {path}")
    if not path.is_file():
        raise FlipLabError(f"model path is not a file: {path}")
    if path.stat().st_size == 0:
        raise FlipLabError(f"{path} is empty, not an ONNX model")
    # onnx.checker on a ModelProto serialises it first, a second copy of every weight beside
    # the one held here; on the file it reads the graph alone (external data stays on disk)
    model = _parse(path)
    if any(external_data_helper.uses_external_data(t) for t in iter_graph_tensors(model.graph)):
        check_external_data(model, path.parent)
        _check(path, str(path))
        try:
            external_data_helper.load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError, RuntimeError) as error:
            raise FlipLabError(f"{path}: cannot read external data ({_first_line(error)})") from error
    else:  # weights inside: check the file with nothing held, then read it again
        del model
        _check(path, str(path))
        model = _parse(path)
    return model
