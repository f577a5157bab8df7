"""A stand-in accelerator for CUDA-less test machines: tensors that report ``meta`` but compute.

Inside ``with FakeDevice():`` the ``meta`` device computes: ``t.to("meta")``,
``model.to("meta")`` and every factory call with ``device="meta"`` give :class:`OnDevice`
tensors, whose ``.device`` is ``meta`` and which hold a CPU tensor that every operation
really runs on. Data-dependent code (``bool(t.any())``, ``nonzero``, ``.item()``) therefore
runs as on a GPU, and the numbers are exactly the CPU's. Like CUDA, an operation that mixes
an ``OnDevice`` tensor with a CPU tensor of one or more dimensions raises
:class:`MixedDevices`; allowed, as on CUDA, are CPU scalars (0-d), CPU index tensors of
advanced indexing and copies between devices. A forgotten ``device=`` (a CPU tensor created
next to device data) fails here where it would fail on a GPU. ``torch.Generator(device="meta")``
gives a CPU generator (seeded like one), so random draws match a CPU run too.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

DEVICE = torch.device("meta")
CPU = torch.device("cpu")
aten = torch.ops.aten

COPIES = {aten._to_copy.default, aten.copy_.default}  # may move data between devices
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}


class MixedDevices(RuntimeError):
    """An operation combined device tensors with CPU tensors (what CUDA refuses)."""


class OnDevice(torch.Tensor):
    """A tensor that reports the ``meta`` device and holds its values in ``elem`` (a CPU tensor)."""

    elem: torch.Tensor

    @staticmethod
    def __new__(cls, elem: torch.Tensor) -> "OnDevice":
        out = torch.Tensor._make_wrapper_subclass(cls, elem.size(), strides=elem.stride(),
                                                  storage_offset=elem.storage_offset(), dtype=elem.dtype,
                                                  layout=elem.layout, device=DEVICE, requires_grad=False)
        out.elem = elem
        return out

    def __repr__(self) -> str:
        return f"OnDevice({self.elem!r})"

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        return dispatch(func, args, kwargs or {})


def names_device(value: Any) -> bool:
    return (isinstance(value, torch.device) and value.type == "meta") or value == "meta"


def _tensors(tree: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


def check_devices(func: Any, args: tuple, kwargs: dict) -> None:
    """Raise :class:`MixedDevices` where CUDA would refuse to mix the arguments' devices."""
    if func in COPIES:
        return
    if func in INDEXING:  # indices may stay on the CPU; the indexed tensor and the values may not
        tensors = [args[0]] + [t for t in args[2:3] if isinstance(t, torch.Tensor)]
    else:
        tensors = _tensors((args, kwargs))
    on_device = any(isinstance(t, OnDevice) for t in tensors) or names_device(kwargs.get("device"))
    cpu = [t for t in tensors if not isinstance(t, OnDevice) and t.dim() > 0]
    if on_device and cpu:
        raise MixedDevices(f"{func}: a CPU tensor of shape {tuple(cpu[0].shape)} meets tensors on the device")


def dispatch(func: Any, args: tuple, kwargs: dict) -> Any:
    """Check the devices, run ``func`` on the CPU values, wrap the results that belong on the device."""
    check_devices(func, args, kwargs)
    if "device" in kwargs:
        on_device = names_device(kwargs["device"])
        kwargs = {**kwargs, "device": CPU}
    elif func in COPIES:
        on_device = isinstance(args[0], OnDevice)
    else:
        on_device = any(isinstance(t, OnDevice) for t in _tensors((args, kwargs)))
    unwrap = lambda t: t.elem if isinstance(t, OnDevice) else t  # noqa: E731
    out = func(*tree_map(unwrap, args), **tree_map(unwrap, kwargs))
    if func is aten.copy_.default:
        return args[0]
    if not on_device:
        return out
    return tree_map(lambda t: OnDevice(t) if isinstance(t, torch.Tensor) else t, out)


class _GeneratorType(type):
    real = torch.Generator

    def __instancecheck__(cls, value: Any) -> bool:
        return isinstance(value, cls.real)


class _Generator(metaclass=_GeneratorType):
    """``torch.Generator`` inside :class:`FakeDevice`: a CPU generator for the ``meta`` device."""

    def __new__(cls, device: Any = "cpu") -> torch.Generator:
        return _GeneratorType.real(device=CPU if names_device(device) else device)


class FakeDevice(TorchDispatchMode):
    """Context in which ``meta`` is a computing device (module docstring)."""

    def __enter__(self) -> "FakeDevice":
        torch.Generator = _Generator
        # module.to() must make new parameters: ``param.data = ...`` would keep the old ``elem``
        self._swap = torch.__future__.get_overwrite_module_params_on_conversion()
        torch.__future__.set_overwrite_module_params_on_conversion(True)
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        torch.Generator = _GeneratorType.real
        torch.__future__.set_overwrite_module_params_on_conversion(self._swap)
        return super().__exit__(*exc)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        return dispatch(func, args, kwargs or {})


def on_device(tensor: torch.Tensor) -> bool:
    return isinstance(tensor, OnDevice)


def values(tensor: torch.Tensor) -> torch.Tensor:
    """The CPU values of a device or CPU tensor."""
    return tensor.elem if isinstance(tensor, OnDevice) else tensor
