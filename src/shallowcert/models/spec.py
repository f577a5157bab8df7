"""Architecture specs: short strings that build ``torch.nn.Sequential`` models.

Two kinds of spec are accepted.

**Named families** (the thesis' students and teachers; widths after the colon)::

    snn:H                  Flatten, Linear(H), ReLU, Linear(classes)
    scnn1:C                Conv(C,5x5,pad 2), ReLU, MaxPool 2, Flatten, Linear(classes)
    scnn2:C1-C2            Conv(C1), ReLU, MaxPool 2, Conv(C2), ReLU, MaxPool 2, Flatten,
                           Linear(classes)
    teacher-svhn[:A-B-C-H] CV-CV-MP-CV-MP-FC (3x3 convs, FC hidden H), default 32-32-64-256
    teacher-cifar10[:A-B-C-D-H]
                           CV-CV-MP-CV-CV-MP-FC, default 32-32-64-64-512
    cert-teacher[:A-B-C-D-H]
                           ReLU-only: four Conv(4x4, stride 2, pad 1), FC hidden H, FC;
                           default 16-32-32-64-100
    wong-small             Conv(16,4x4,s2,p1), ReLU, Conv(32,4x4,s2,p1), ReLU, Flatten,
                           Linear(100), ReLU, Linear(classes)

**Generic layer grammar** (``layers:`` then comma-separated tokens)::

    c16k4s2p1   Conv2d, 16 filters, kernel 4, stride 2 (default 1), padding 1 (default 0)
    fc100       Linear with 100 outputs;  ``fc`` alone = Linear(classes)
    relu  flat  bn (BatchNorm, 1d or 2d by position)  mp2 / mp2s1 (MaxPool)
    ap2 / ap2s1 (AvgPool)  drop0.5 (Dropout)  norm (Normalize with per-channel buffers)

Every named spec expands to the generic grammar, which is what checkpoints store
(``architecture`` in ``model.json``), so that pruned widths reload exactly.
Specs adapt to the dataset's input shape ``(C, H, W)`` and class count. Imported networks
(``shallowcert import --onnx``) may also take ``(H, W)`` or ``(features,)`` inputs (``flat``
flattens any shape) and may end in ``relu`` after their last ``fc``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from torch import nn

from shallowcert.errors import UserError
from shallowcert.models.layers import Normalize

InputShape = tuple[int, int, int]


def _widths(text: str, count: int, default: Sequence[int] | None, name: str) -> list[int]:
    if not text:
        if default is None:
            raise UserError(f"spec '{name}' needs {count} width(s), e.g. '{name}:" + "-".join(["16"] * count) + "'")
        return list(default)
    parts = text.split("-")
    if len(parts) != count or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UserError(f"spec '{name}:{text}' needs {count} positive integer width(s) separated by '-'")
    return [int(p) for p in parts]


def _snn(w: str) -> str:
    (h,) = _widths(w, 1, None, "snn")
    return f"flat,fc{h},relu,fc"


def _scnn1(w: str) -> str:
    (c,) = _widths(w, 1, None, "scnn1")
    return f"c{c}k5p2,relu,mp2,flat,fc"


def _scnn2(w: str) -> str:
    c1, c2 = _widths(w, 2, None, "scnn2")
    return f"c{c1}k5p2,relu,mp2,c{c2}k5p2,relu,mp2,flat,fc"


def _teacher_svhn(w: str) -> str:
    a, b, c, h = _widths(w, 4, (32, 32, 64, 256), "teacher-svhn")
    return f"c{a}k3p1,relu,c{b}k3p1,relu,mp2,c{c}k3p1,relu,mp2,flat,fc{h},relu,fc"


def _teacher_cifar10(w: str) -> str:
    a, b, c, d, h = _widths(w, 5, (32, 32, 64, 64, 512), "teacher-cifar10")
    return f"c{a}k3p1,relu,c{b}k3p1,relu,mp2,c{c}k3p1,relu,c{d}k3p1,relu,mp2,flat,fc{h},relu,fc"


def _cert_teacher(w: str) -> str:
    a, b, c, d, h = _widths(w, 5, (16, 32, 32, 64, 100), "cert-teacher")
    convs = ",".join(f"c{n}k4s2p1,relu" for n in (a, b, c, d))
    return f"{convs},flat,fc{h},relu,fc"


def _wong_small(w: str) -> str:
    if w:
        raise UserError("spec 'wong-small' takes no widths")
    return "c16k4s2p1,relu,c32k4s2p1,relu,flat,fc100,relu,fc"


FAMILIES: dict[str, Callable[[str], str]] = {
    "snn": _snn,
    "scnn1": _scnn1,
    "scnn2": _scnn2,
    "teacher-svhn": _teacher_svhn,
    "teacher-cifar10": _teacher_cifar10,
    "cert-teacher": _cert_teacher,
    "wong-small": _wong_small,
}

_TOKEN = re.compile(
    r"^(?:c(?P<conv>\d+)k(?P<k>\d+)(?:s(?P<s>\d+))?(?:p(?P<p>\d+))?"
    r"|fc(?P<fc>\d*)"
    r"|(?P<pool>mp|ap)(?P<pk>\d+)(?:s(?P<ps>\d+))?"
    r"|drop(?P<drop>0(?:\.\d+)?|1(?:\.0+)?)"
    r"|(?P<word>relu|flat|bn|norm))$"
)


def expand(spec: str) -> str:
    """Return the generic ``layers:`` form of any spec (named or generic)."""
    spec = spec.strip()
    if spec.startswith("layers:"):
        return spec
    name, _, widths = spec.partition(":")
    family = FAMILIES.get(name)
    if family is None:
        known = ", ".join(sorted(FAMILIES))
        raise UserError(f"unknown model spec '{spec}' (known families: {known}; or 'layers:...')")
    return "layers:" + family(widths)


@dataclass
class _Shape:
    """The running activation shape while layers are built: (C, H, W) or (features,)."""

    dims: tuple[int, ...]

    @property
    def spatial(self) -> bool:
        return len(self.dims) == 3


def _conv_out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def build(spec: str, input_shape: Sequence[int], classes: int) -> nn.Sequential:
    """Build the model a spec describes for inputs of shape ``(C, H, W)`` (or ``(H, W)``,
    ``(features,)``) and ``classes`` outputs of the last ``fc`` (only ``relu`` may follow it)."""
    generic = expand(spec)
    tokens = [t.strip() for t in generic[len("layers:"):].split(",") if t.strip()]
    if not tokens:
        raise UserError(f"spec '{spec}' has no layers")
    if not 1 <= len(input_shape) <= 3 or min(input_shape) < 1:
        raise UserError(f"input shape must be (C, H, W) with positive sizes, got {tuple(input_shape)}")
    shape = _Shape(tuple(int(d) for d in input_shape))
    final = len(tokens) - 1
    while final > 0 and tokens[final] == "relu":
        final -= 1
    layers: list[nn.Module] = []
    for i, token in enumerate(tokens):
        m = _TOKEN.match(token)
        if m is None:
            raise UserError(f"spec '{spec}': cannot read layer token '{token}'")
        layers.append(_make_layer(m, shape, classes, last=i == final, spec=spec, token=token))
    if not isinstance(layers[final], nn.Linear) or layers[final].out_features != classes:
        raise UserError(f"spec '{spec}' must end with 'fc' (a Linear layer to the {classes} classes)")
    return nn.Sequential(*layers)


def _make_layer(m: re.Match[str], shape: _Shape, classes: int, *, last: bool, spec: str, token: str) -> nn.Module:
    g = m.groupdict()

    def need_spatial() -> tuple[int, int, int]:
        if not shape.spatial:
            raise UserError(f"spec '{spec}': layer '{token}' needs an image input but comes after flattening")
        return shape.dims  # type: ignore[return-value]

    if g["conv"] is not None:
        c, h, w = need_spatial()
        out, k = int(g["conv"]), int(g["k"])
        s, p = int(g["s"] or 1), int(g["p"] or 0)
        if out < 1 or k < 1 or s < 1:
            raise UserError(f"spec '{spec}': bad convolution '{token}'")
        oh, ow = _conv_out(h, k, s, p), _conv_out(w, k, s, p)
        if oh < 1 or ow < 1:
            raise UserError(f"spec '{spec}': '{token}' shrinks the {h}x{w} input to nothing")
        shape.dims = (out, oh, ow)
        return nn.Conv2d(c, out, k, stride=s, padding=p)
    if g["fc"] is not None:
        if len(shape.dims) != 1:
            raise UserError(f"spec '{spec}': 'flat' must come before '{token}'")
        out = int(g["fc"]) if g["fc"] else classes
        if out < 1:
            raise UserError(f"spec '{spec}': bad linear layer '{token}'")
        if last and out != classes:
            raise UserError(f"spec '{spec}': the last layer has {out} outputs but the dataset has {classes} classes")
        layer = nn.Linear(shape.dims[0], out)
        shape.dims = (out,)
        return layer
    if g["pool"] is not None:
        c, h, w = need_spatial()
        k = int(g["pk"])
        s = int(g["ps"] or k)
        oh, ow = _conv_out(h, k, s, 0), _conv_out(w, k, s, 0)
        if k < 1 or s < 1 or oh < 1 or ow < 1:
            raise UserError(f"spec '{spec}': pooling '{token}' does not fit the {h}x{w} input")
        shape.dims = (c, oh, ow)
        return nn.MaxPool2d(k, s) if g["pool"] == "mp" else nn.AvgPool2d(k, s)
    if g["drop"] is not None:
        return nn.Dropout(float(g["drop"]))
    word = g["word"]
    if word == "relu":
        return nn.ReLU()
    if word == "flat":
        shape.dims = (math.prod(shape.dims),)
        return nn.Flatten()
    if word == "bn":
        return nn.BatchNorm2d(shape.dims[0]) if shape.spatial else nn.BatchNorm1d(shape.dims[0])
    # norm: identity until loaded from a checkpoint or set by the caller
    c, _, _ = need_spatial()
    return Normalize([0.0] * c, [1.0] * c)


def describe(model: nn.Sequential) -> str:
    """The generic ``layers:`` spec of a built model (inverse of :func:`build`).

    Used to save pruned models: their widths differ from the spec they were built from.
    """
    tokens: list[str] = []
    last = len(model) - 1
    for i, layer in enumerate(model):
        if isinstance(layer, nn.Conv2d):
            (k, k2), (s, s2), pad = layer.kernel_size, layer.stride, layer.padding
            if k != k2 or s != s2 or not isinstance(pad, tuple) or pad[0] != pad[1] \
                    or layer.groups != 1 or layer.dilation != (1, 1) or layer.bias is None:
                raise UserError(f"layer {i} ({layer}) is not expressible in the spec grammar")
            tokens.append(f"c{layer.out_channels}k{k}" + (f"s{s}" if s != 1 else "") + (f"p{pad[0]}" if pad[0] else ""))
        elif isinstance(layer, nn.Linear):
            tokens.append("fc" if i == last else f"fc{layer.out_features}")
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            pool_k, pool_s = layer.kernel_size, layer.stride
            if isinstance(pool_k, tuple) or isinstance(pool_s, tuple) or layer.padding not in (0, (0, 0)):
                raise UserError(f"layer {i} ({layer}) is not expressible in the spec grammar")
            tokens.append(("mp" if isinstance(layer, nn.MaxPool2d) else "ap") + f"{pool_k}"
                          + (f"s{pool_s}" if pool_s != pool_k else ""))
        elif isinstance(layer, nn.Dropout):
            tokens.append(f"drop{layer.p:g}")
        elif isinstance(layer, nn.ReLU):
            tokens.append("relu")
        elif isinstance(layer, nn.Flatten):
            tokens.append("flat")
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            tokens.append("bn")
        elif isinstance(layer, Normalize):
            tokens.append("norm")
        else:
            raise UserError(f"layer {i} ({type(layer).__name__}) is not expressible in the spec grammar")
    return "layers:" + ",".join(tokens)
