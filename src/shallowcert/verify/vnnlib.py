"""Read a VNN-LIB property (the VNN-COMP subset) into a :class:`Property`.

Accepted::

    (declare-const X_i Real)   (declare-const Y_j Real)
    (assert C)   C = a comparison, (and C ...) or (or (and C ...) ...)
    comparison  = (<= E E) | (>= E E) | (< E E) | (> E E) | (= E E)
    E           = number | X_i | Y_j | (+ E ...) | (- E) | (- E E ...) | (* number E) | (* E number)

Comparisons on inputs only must be bounds on one ``X_i``; they make the input box, which
must be bounded in every ``X_i``. Comparisons on outputs only make the unsafe set
``OR_k {y : A_k y <= b_k}``; top-level assertions are conjoined, several ``or`` assertions
are multiplied out. Input bounds inside an ``or`` are accepted when every disjunct has the
same ones (then they are the box). Strict comparisons are read as non-strict, as VNN-COMP
does. ``X_i`` follows the row-major flattening of the model input of shape ``input_shape``.

Mistakes raise :class:`UserError` as one line ``FILE:LINE: what``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import torch

from shallowcert.errors import UserError
from shallowcert.verify.property import Conjunction, Property

_VARIABLE = re.compile(r"^([XY])_(\d+)$")
_IGNORED = {"set-logic", "set-info", "set-option", "check-sat", "get-model", "exit"}
_MAX_DISJUNCTS = 10_000


@dataclass(frozen=True)
class _Atom:
    text: str
    line: int


@dataclass(frozen=True)
class _List:
    items: list[_Expr]
    line: int


_Expr = Union[_Atom, _List]


@dataclass
class _Linear:
    """``sum coeffs[var] * var + constant``; variables are ``("X", i)`` or ``("Y", j)``."""

    coeffs: dict[tuple[str, int], float] = field(default_factory=dict)
    constant: float = 0.0

    def scaled(self, factor: float) -> _Linear:
        return _Linear({k: v * factor for k, v in self.coeffs.items()}, self.constant * factor)

    def plus(self, other: _Linear) -> _Linear:
        coeffs = dict(self.coeffs)
        for k, v in other.coeffs.items():
            coeffs[k] = coeffs.get(k, 0.0) + v
        return _Linear(coeffs, self.constant + other.constant)


@dataclass
class _Clause:
    """A conjunction: input bounds ``{i: (lower, upper)}`` and output rows ``a . y <= b``."""

    bounds: dict[int, tuple[float, float]] = field(default_factory=dict)
    rows: list[tuple[dict[int, float], float]] = field(default_factory=list)

    def absorb(self, other: _Clause) -> None:
        """Conjoin ``other`` into this clause (in place)."""
        for i, (lo, hi) in other.bounds.items():
            old_lo, old_hi = self.bounds.get(i, (-math.inf, math.inf))
            self.bounds[i] = (max(lo, old_lo), min(hi, old_hi))
        self.rows.extend(other.rows)

    def merged(self, other: _Clause) -> _Clause:
        clause = _Clause(dict(self.bounds), list(self.rows))
        clause.absorb(other)
        return clause


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.declared: dict[str, set[int]] = {"X": set(), "Y": set()}

    def fail(self, line: int, message: str) -> UserError:
        return UserError(f"{self.source}:{line}: {message}")

    # -- tokens and s-expressions ------------------------------------------------------
    def parse(self, text: str) -> list[_Expr]:
        stack: list[list[_Expr]] = [[]]
        opened: list[int] = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            for token in re.findall(r"\(|\)|[^\s()]+", line.split(";", 1)[0]):
                if token == "(":
                    stack.append([])
                    opened.append(line_number)
                elif token == ")":
                    if not opened:
                        raise self.fail(line_number, "unbalanced ')'")
                    items = stack.pop()
                    stack[-1].append(_List(items, opened.pop()))
                else:
                    stack[-1].append(_Atom(token, line_number))
        if opened:
            raise self.fail(opened[-1], "unbalanced '(' (never closed)")
        return stack[0]

    # -- the top level ---------------------------------------------------------------
    def read(self, forms: list[_Expr]) -> list[_Clause]:
        """The property as a disjunction of clauses (input bounds + output rows each)."""
        common = _Clause()  # the single-clause assertions, conjoined in place
        disjunctions: list[list[_Clause]] = []
        for form in forms:
            if not isinstance(form, _List) or not form.items or not isinstance(form.items[0], _Atom):
                raise self.fail(form.line, "expected (declare-const ...) or (assert ...)")
            head = form.items[0].text
            if head == "declare-const":
                self.declare(form)
            elif head == "assert":
                if len(form.items) != 2:
                    raise self.fail(form.line, "assert takes one formula")
                clauses = self.formula(form.items[1])
                if len(clauses) == 1:
                    common.absorb(clauses[0])
                else:
                    disjunctions.append(clauses)
                if math.prod(len(d) for d in disjunctions) > _MAX_DISJUNCTS:
                    raise self.fail(form.line, f"the property has more than {_MAX_DISJUNCTS} disjuncts")
            elif head not in _IGNORED:
                raise self.fail(form.line, f"unsupported command '{head}'")
        result = [common]
        for clauses in disjunctions:
            result = [a.merged(b) for a in result for b in clauses]
        return result

    def declare(self, form: _List) -> None:
        items = form.items
        if len(items) != 3 or not all(isinstance(i, _Atom) for i in items):
            raise self.fail(form.line, "expected (declare-const NAME Real)")
        name, sort = items[1].text, items[2].text  # type: ignore[union-attr]
        match = _VARIABLE.match(name)
        if match is None:
            raise self.fail(form.line, f"variables must be named X_i (inputs) or Y_j (outputs), got '{name}'")
        if sort != "Real":
            raise self.fail(form.line, f"variable {name} must be Real, is {sort}")
        self.declared[match.group(1)].add(int(match.group(2)))

    # -- formulas ----------------------------------------------------------------------
    def formula(self, expr: _Expr) -> list[_Clause]:
        """A formula as a disjunction of clauses."""
        head = self.head(expr)
        if head == "or":
            return [clause for sub in expr.items[1:] for clause in self.formula(sub)]  # type: ignore[union-attr]
        if head == "and":
            clauses = [_Clause()]
            for sub in expr.items[1:]:  # type: ignore[union-attr]
                parts = self.formula(sub)
                if len(parts) == 1 and len(clauses) == 1:
                    clauses[0].absorb(parts[0])
                else:
                    clauses = [a.merged(b) for a in clauses for b in parts]
            return clauses
        return [self.comparison(expr)]

    def head(self, expr: _Expr) -> str:
        if not isinstance(expr, _List) or not expr.items or not isinstance(expr.items[0], _Atom):
            raise self.fail(expr.line, f"expected a formula such as (<= Y_0 Y_1), got '{_show(expr)}'")
        return expr.items[0].text

    def comparison(self, expr: _Expr) -> _Clause:
        head = self.head(expr)
        if head not in ("<=", ">=", "<", ">", "="):
            raise self.fail(expr.line, f"unsupported construct '{head}' (expected <=, >=, <, >, =, and, or)")
        items = expr.items  # type: ignore[union-attr]
        if len(items) != 3:
            raise self.fail(expr.line, f"'{head}' needs two terms")
        left, right = self.term(items[1]), self.term(items[2])
        difference = left.plus(right.scaled(-1.0))  # left - right
        if head in ("<=", "<"):
            sides = [difference]
        elif head in (">=", ">"):
            sides = [difference.scaled(-1.0)]
        else:
            sides = [difference, difference.scaled(-1.0)]
        clause = _Clause()
        for side in sides:  # side <= 0
            clause.absorb(self.constraint(side, expr.line))
        return clause

    def constraint(self, side: _Linear, line: int) -> _Clause:
        """``side <= 0`` as input bounds or an output row."""
        coeffs = {k: v for k, v in side.coeffs.items() if v != 0.0}
        kinds = {kind for kind, _ in coeffs}
        if not coeffs:
            raise self.fail(line, "a comparison without variables")
        if kinds == {"Y"}:
            return _Clause(rows=[({j: v for (_, j), v in coeffs.items()}, 0.0 - side.constant)])
        if kinds == {"X"} and len(coeffs) == 1:
            ((_, i), a), = coeffs.items()
            value = 0.0 - side.constant / a  # a * x + c <= 0
            return _Clause(bounds={i: (-math.inf, value) if a > 0 else (value, math.inf)})
        if kinds == {"X"}:
            raise self.fail(line, "input constraints must bound one variable (general linear input "
                                  "constraints are not supported)")
        raise self.fail(line, "a comparison mixing inputs X and outputs Y is not supported")

    def term(self, expr: _Expr) -> _Linear:
        if isinstance(expr, _Atom):
            match = _VARIABLE.match(expr.text)
            if match is not None:
                kind, index = match.group(1), int(match.group(2))
                if index not in self.declared[kind]:
                    raise self.fail(expr.line, f"unknown variable {expr.text} (not declared)")
                return _Linear({(kind, index): 1.0})
            try:
                return _Linear(constant=float(expr.text))
            except ValueError:
                raise self.fail(expr.line, f"unknown variable or number '{expr.text}'") from None
        head = self.head(expr)
        args = [self.term(e) for e in expr.items[1:]]
        if head == "+" and args:
            total = _Linear()
            for a in args:
                total = total.plus(a)
            return total
        if head == "-" and len(args) == 1:
            return args[0].scaled(-1.0)
        if head == "-" and len(args) > 1:
            total = args[0]
            for a in args[1:]:
                total = total.plus(a.scaled(-1.0))
            return total
        if head == "*" and len(args) == 2:
            constant = [a for a in args if not a.coeffs]
            if constant:
                other = args[1] if constant[0] is args[0] else args[0]
                return other.scaled(constant[0].constant)
            raise self.fail(expr.line, "'*' needs a number as one factor (the property must be linear)")
        raise self.fail(expr.line, f"unsupported term '{_show(expr)}'")


def _show(expr: _Expr) -> str:
    if isinstance(expr, _Atom):
        return expr.text
    text = "(" + " ".join(_show(e) for e in expr.items) + ")"
    return text if len(text) <= 60 else text[:57] + "..."


def read_vnnlib(path: str | Path, *, input_shape: Sequence[int], outputs: int) -> Property:
    """Read the VNN-LIB file at ``path`` for a model with inputs of ``input_shape`` (no batch
    dimension) and ``outputs`` outputs. Box and unsafe-set tensors are float64 on the CPU."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{source}: cannot read the property ({exc.__class__.__name__}: {exc})") from None
    return parse_vnnlib(text, input_shape=input_shape, outputs=outputs, source=source)


def parse_vnnlib(text: str, *, input_shape: Sequence[int], outputs: int, source: str = "<vnnlib>") -> Property:
    """:func:`read_vnnlib` on the text of a property (``source`` names it in errors)."""
    reader = _Reader(source)
    clauses = reader.read(reader.parse(text))
    size = math.prod(int(d) for d in input_shape)
    _check_declared(reader, size, outputs)
    shared = clauses[0].bounds
    if any(c.bounds != shared for c in clauses[1:]):
        raise UserError(f"{source}: the disjuncts bound the inputs differently; only one input box per property "
                        "is supported (split the property into one file per box)")
    box = [shared.get(i, (-math.inf, math.inf)) for i in range(size)]
    unbounded = [i for i, (lo, hi) in enumerate(box) if not (math.isfinite(lo) and math.isfinite(hi))]
    if unbounded:
        raise UserError(f"{source}: input X_{unbounded[0]} is unbounded (every input needs a lower and an upper bound)")
    empty = [i for i, (lo, hi) in enumerate(box) if lo > hi]
    if empty:
        raise UserError(f"{source}: the input box is empty at X_{empty[0]} ({box[empty[0]][0]} > {box[empty[0]][1]})")
    lower, upper = torch.tensor(box, dtype=torch.float64).T.contiguous()
    if any(not c.rows for c in clauses):
        raise UserError(f"{source}: a disjunct has no output constraint (every input would be unsafe)")
    unsafe = tuple(_conjunction(c, outputs) for c in clauses)
    shape = tuple(int(d) for d in input_shape)
    return Property(lower.reshape(shape), upper.reshape(shape), unsafe)


def _check_declared(reader: _Reader, size: int, outputs: int) -> None:
    for kind, count, what in (("X", size, "the model's inputs"), ("Y", outputs, "the model's outputs")):
        declared = reader.declared[kind]
        if declared != set(range(count)):
            raise UserError(f"{reader.source}: declares {len(declared)} {kind} variables "
                            f"({kind}_{min(declared, default=0)}..{kind}_{max(declared, default=-1)}), "
                            f"{what} need {kind}_0..{kind}_{count - 1}")


def _conjunction(clause: _Clause, outputs: int) -> Conjunction:
    matrix = torch.zeros(len(clause.rows), outputs, dtype=torch.float64)
    bound = torch.zeros(len(clause.rows), dtype=torch.float64)
    for r, (coeffs, b) in enumerate(clause.rows):
        for j, a in coeffs.items():
            matrix[r, j] = a
        bound[r] = b
    return Conjunction(matrix, bound)
