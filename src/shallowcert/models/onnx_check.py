"""Check an imported ONNX network against onnxruntime, the reference implementation.

Both run on ``SAMPLES`` random inputs in the ONNX input's layout (uniform in ``[0, 1]``, the
data range of most VNN-COMP properties, and standard normal): one at a time, since a graph
may fix its batch size to 1. The import is refused when

    max |f_ours(x) - f_ort(x)|  >  TOLERANCE * (1 + max |f_ort(x)|)

over all of them (float32 on both sides: the tolerance covers the rounding of folded
layers, not a wrong layer). onnxruntime is a dependency of shallowcert; when it is missing
anyway, ``checked(..., required=None)`` logs a warning and returns the model unchecked, and
``required=True`` refuses it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from shallowcert.errors import UserError

if TYPE_CHECKING:
    from shallowcert.models.onnx_import import ImportedModel

log = logging.getLogger(__name__)

SAMPLES = 4
TOLERANCE = 1e-4


def compare(imported: ImportedModel, *, seed: int = 0) -> tuple[float, float]:
    """``(max |ours - onnxruntime|, max |onnxruntime|)`` over the random inputs."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(imported.source, options, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    dtype = np.float64 if spec.type == "tensor(double)" else np.float32
    shape = [d if isinstance(d, int) else 1 for d in spec.shape]
    generator = np.random.default_rng(seed)
    samples = [generator.uniform(0.0, 1.0, size=shape) for _ in range(SAMPLES // 2)]
    samples += [generator.standard_normal(size=shape) for _ in range(SAMPLES - len(samples))]
    worst = scale = 0.0
    parameter = next(imported.model.parameters(), None)
    model_dtype = parameter.dtype if parameter is not None else torch.float32
    for x in samples:
        reference = np.asarray(session.run(None, {spec.name: x.astype(dtype)})[0], dtype=np.float64).reshape(-1)
        onnx_x = torch.from_numpy(x.astype(np.float32)).reshape(1, *imported.onnx_input_shape)
        with torch.no_grad():
            ours = imported.model(imported.to_model_layout(onnx_x).to(model_dtype)).double().reshape(-1).numpy()
        if ours.shape != reference.shape:
            raise UserError(f"{imported.source}: the imported network has {ours.size} outputs, onnxruntime "
                            f"gives {reference.size}")
        worst = max(worst, float(np.abs(ours - reference).max()))
        scale = max(scale, float(np.abs(reference).max()))
    return worst, scale


def checked(imported: ImportedModel, *, required: bool | None) -> ImportedModel:
    """``imported`` with its ``max_abs_diff`` set, after :func:`compare` (module docstring);
    ``required=False`` skips the check."""
    if required is False:
        return imported
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        if required:
            raise UserError("checking an imported ONNX network needs onnxruntime (pip install onnxruntime)") \
                from None
        log.warning("onnxruntime is not installed: %s is used without checking it against onnxruntime",
                    imported.source)
        return imported
    try:
        worst, scale = compare(imported)
    except UserError:
        raise
    except Exception as exc:  # onnxruntime refuses graphs it cannot run: then nothing is known
        raise UserError(f"{imported.source}: onnxruntime cannot run this graph to check the import "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not worst <= TOLERANCE * (1.0 + scale):
        raise UserError(f"{imported.source}: the imported network disagrees with onnxruntime (max |difference| "
                        f"{worst:.3g} on outputs up to {scale:.3g}); refusing it")
    log.info("%s agrees with onnxruntime: max |difference| %.3g over %d random inputs", imported.source, worst,
             SAMPLES)
    return dataclasses.replace(imported, max_abs_diff=worst)


def onnxruntime_violation(source: str, prop: Any, x: torch.Tensor) -> float:
    """The violation (``<= 0``: unsafe; ``inf`` outside the box) of ``prop`` (written in the
    ONNX input's layout) at ``x`` (one input in that layout) under onnxruntime, in float32 as
    the file's users run it."""
    import onnxruntime

    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    dtype = np.float64 if spec.type == "tensor(double)" else np.float32
    shape = [d if isinstance(d, int) else 1 for d in spec.shape]
    output = session.run(None, {spec.name: x.detach().cpu().double().numpy().astype(dtype).reshape(shape)})[0]
    y = torch.from_numpy(np.asarray(output, dtype=np.float64).reshape(1, -1))
    inside = bool(prop.contains(x.detach().cpu().double().reshape(1, *prop.lower.shape))[0])
    return float(prop.violation(y)[0]) if inside else float("inf")
