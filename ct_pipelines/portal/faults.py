"""Fault injection for the local portal, so publisher retries and error handling can be tested
against the failures data.ct.gov actually produces (429 with Retry-After, 5xx, 413, slow answers,
dropped connections, a 202 that sodapy mistakes for success).

Every fault except ``reset_after_apply`` fires before the request is applied, so a client that
retries it is safe; ``reset_after_apply`` applies the write and then drops the connection, to
test that a retried upsert is idempotent.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["429", "500", "503", "202", "slow", "413", "reset", "reset_after_apply"]
FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "202", "slow", "413", "reset", "reset_after_apply")


@dataclass
class FaultRule:
    """One fault: which requests it applies to and when it fires.

    ``at`` lists 1-based numbers among the requests this rule matches (``at=[1, 3]``: the first and
    third matching request); ``probability`` fires at random with ``seed``; with neither it fires on
    every matching request. ``413`` fires only for bodies over ``max_body_bytes`` when that is set.
    """

    kind: FaultKind
    at: Iterable[int] | None = None
    probability: float | None = None
    methods: Iterable[str] | None = None
    path_prefix: str = "/"
    retry_after: int | None = 1
    delay: float = 2.0
    max_body_bytes: int | None = None
    seed: int | None = None
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}")
        if self.probability is not None and not 0 <= self.probability <= 1:
            raise ValueError("probability must be between 0 and 1")
        self.at = set(self.at) if self.at is not None else None
        self.methods = {m.upper() for m in self.methods} if self.methods is not None else None
        self._random = random.Random(self.seed)

    def matches(self, method: str, path: str) -> bool:
        return (self.methods is None or method.upper() in self.methods) and path.startswith(self.path_prefix)

    def decide(self, body_size: int | None) -> bool:
        """Count this matching request and say whether the fault fires on it."""
        self.seen += 1
        if self.kind == "413" and self.max_body_bytes is not None and (body_size or 0) <= self.max_body_bytes:
            return False
        if self.at is not None:
            fire = self.seen in self.at
        elif self.probability is not None:
            fire = self._random.random() < self.probability
        else:
            fire = True
        self.fired += fire
        return fire


@dataclass
class FaultPlan:
    """The rules in force; the first rule that fires decides the fault of a request."""

    rules: list[FaultRule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def choose(self, method: str, path: str, body_size: int | None) -> FaultRule | None:
        with self._lock:
            chosen = None
            for rule in self.rules:
                if rule.matches(method, path) and rule.decide(body_size) and chosen is None:
                    chosen = rule
            return chosen

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    @property
    def fired(self) -> int:
        return sum(rule.fired for rule in self.rules)
