"""Read an ONNX file's protobuf message without importing the whole ``onnx`` package.

``import onnx`` costs about a second (most of it in ``ml_dtypes``, pulled in by
``onnx.helper``), more than the rest of a small ``shallowcert verify`` run. Reading a model
needs only the generated message classes, ``onnx/onnx_ml_pb2.py``, which depend on
``google.protobuf`` alone. This module loads that file under its own name
``onnx.onnx_ml_pb2`` (so a later ``import onnx`` reuses it instead of registering the
descriptors twice) and converts tensors and attributes to numpy itself.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from shallowcert.errors import UserError

_PB2 = "onnx.onnx_ml_pb2"

# TensorProto.DataType -> numpy dtype, and the repeated field holding the values when
# raw_data is empty (ONNX stores int8/16/uint8/16/bool in int32_data, float16 as its bits).
_DTYPES: dict[int, tuple[Any, str]] = {
    1: (np.float32, "float_data"), 2: (np.uint8, "int32_data"), 3: (np.int8, "int32_data"),
    4: (np.uint16, "int32_data"), 5: (np.int16, "int32_data"), 6: (np.int32, "int32_data"),
    7: (np.int64, "int64_data"), 9: (np.bool_, "int32_data"), 10: (np.float16, "int32_data"),
    11: (np.float64, "double_data"), 12: (np.uint32, "uint64_data"), 13: (np.uint64, "uint64_data"),
}
FLOAT, DOUBLE, FLOAT16 = 1, 11, 10


def messages() -> ModuleType:
    """The ``onnx_ml_pb2`` module (ModelProto, TensorProto, ...), loaded without ``onnx/__init__``."""
    if _PB2 in sys.modules:
        return sys.modules[_PB2]
    spec = importlib.util.find_spec("onnx")
    if spec is None or spec.origin is None:
        raise UserError("reading ONNX files needs the 'onnx' package (pip install onnx)")
    path = Path(spec.origin).parent / "onnx_ml_pb2.py"
    if not path.is_file():  # a layout we do not know: take the slow, ordinary way
        import onnx
        return onnx.onnx_ml_pb2
    file_spec = importlib.util.spec_from_file_location(_PB2, path)
    assert file_spec is not None and file_spec.loader is not None
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[_PB2] = module
    try:
        file_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_PB2]
        raise
    return module


def load_model(path: str | Path) -> Any:
    """The ``ModelProto`` of the file at ``path``; :class:`UserError` when it is not one."""
    source = str(path)
    if not Path(path).is_file():
        raise UserError(f"{source}: no such file")
    model = messages().ModelProto()
    try:
        model.ParseFromString(Path(path).read_bytes())
    except Exception as exc:  # protobuf raises DecodeError (and others) for a damaged file
        raise UserError(f"{source}: not a readable ONNX model ({type(exc).__name__})") from None
    if not model.HasField("graph"):
        raise UserError(f"{source}: not a readable ONNX model (no graph)")
    return model


def to_array(tensor: Any) -> np.ndarray:
    """A ``TensorProto`` as a numpy array (its own dtype and shape); external data is refused."""
    if tensor.data_location == 1:
        raise UserError(f"tensor '{tensor.name}' keeps its data in an external file, which is not supported")
    if tensor.data_type not in _DTYPES:
        raise UserError(f"tensor '{tensor.name}' has an unsupported data type ({tensor.data_type})")
    dtype, field = _DTYPES[tensor.data_type]
    shape = tuple(int(d) for d in tensor.dims)
    if tensor.raw_data:
        values = np.frombuffer(tensor.raw_data, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    elif tensor.data_type == FLOAT16:
        values = np.asarray(tensor.int32_data, dtype=np.uint16).view(np.float16)
    else:
        values = np.asarray(getattr(tensor, field), dtype=dtype)
    if values.size != int(np.prod(shape, dtype=np.int64)):
        raise UserError(f"tensor '{tensor.name}' holds {values.size} values for shape {shape}")
    return values.reshape(shape)


def attributes(node: Any) -> dict[str, Any]:
    """A node's attributes by name: numbers, strings (``str``), tensors (numpy) and lists of them."""
    values: dict[str, Any] = {}
    for attribute in node.attribute:
        kind = attribute.type  # AttributeProto.AttributeType
        if kind == 1:
            values[attribute.name] = float(attribute.f)
        elif kind == 2:
            values[attribute.name] = int(attribute.i)
        elif kind == 3:
            values[attribute.name] = attribute.s.decode()
        elif kind == 4:
            values[attribute.name] = to_array(attribute.t)
        elif kind == 6:
            values[attribute.name] = [float(v) for v in attribute.floats]
        elif kind == 7:
            values[attribute.name] = [int(v) for v in attribute.ints]
        elif kind == 8:
            values[attribute.name] = [s.decode() for s in attribute.strings]
        else:
            values[attribute.name] = attribute  # graphs and other kinds: the translator refuses the node
    return values
