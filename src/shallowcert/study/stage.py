"""A stage of the study: a name, the config sections it reads, and the work it does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from shallowcert.study.context import StageContext


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    sections: tuple[str, ...]  # config sections whose change invalidates this stage
    run: Callable[[StageContext], dict[str, Any]]  # writes artifacts to ctx.out, returns results
