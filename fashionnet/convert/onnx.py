"""model.onnx: Keras 3's own ONNX export (tf2onnx underneath), its interface and metadata fixed up, then checked."""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx

from fashionnet import __version__
from fashionnet.convert.formats import BATCH_DIM, EXPORT_KEPT, INPUT_NAME, ONNX_OPSET, OUTPUT_NAME
from fashionnet.errors import ExportError
from fashionnet.runs import write_bytes, write_failed

GRAPH_NAME = "fashionnet"


def export_onnx(model, path: Path, meta: dict[str, str]) -> None:
    """Convert ``model`` (tensorflow backend, called once) to ``path``: input ``image``, output ``probabilities``."""
    with tempfile.TemporaryDirectory(prefix=".onnx-", dir=path.parent) as scratch:
        raw = Path(scratch) / "raw.onnx"
        try:
            model.export(str(raw), format="onnx", verbose=False, opset_version=ONNX_OPSET)
        except OSError as exc:  # disk full or I/O error while the converter writes
            raise write_failed(path, exc, EXPORT_KEPT) from exc
        except Exception as exc:  # noqa: BLE001 - converter failures of any kind are export failures
            raise ExportError(f"{path.name}: tf2onnx conversion failed ({type(exc).__name__}: {exc})") from exc
        proto = onnx.load(str(raw))
    fix_onnx_interface(proto)
    set_onnx_metadata(proto, meta)
    check_and_write(proto, path)


def _rename_value(graph, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new


def fix_onnx_interface(proto) -> None:
    """One input ``image``, one output ``probabilities``, both with a symbolic first dim named ``batch``."""
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise ExportError(
            f"model.onnx: expected 1 input and 1 output, found {len(graph.input)} and {len(graph.output)}"
        )
    _rename_value(graph, graph.input[0].name, INPUT_NAME)
    _rename_value(graph, graph.output[0].name, OUTPUT_NAME)
    for value in (graph.input[0], graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        if dim.HasField("dim_value"):
            raise ExportError(f"model.onnx: {value.name} has a fixed batch size {dim.dim_value}, expected dynamic")
        dim.dim_param = BATCH_DIM
    graph.name = GRAPH_NAME
    proto.doc_string = "fashionnet: the Keras Fashion-MNIST CNN, exported by fashionnet " + __version__


def set_onnx_metadata(proto, meta: dict[str, str]) -> None:
    """Replace the model's metadata_props with ``meta``, sorted by key."""
    del proto.metadata_props[:]
    for key, value in sorted(meta.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def check_and_write(proto, path: Path) -> None:
    """onnx.checker's full check, then the file written atomically; a rejected model is an ExportError."""
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise ExportError(f"{path.name}: onnx.checker rejected the model ({exc})") from exc
    write_bytes(path, proto.SerializeToString())
