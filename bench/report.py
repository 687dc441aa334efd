"""The benchmark's printed report: sections of facts, figures, and the bars met or not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Bar:
    name: str
    measured: str
    goal: str
    met: bool


@dataclass
class Report:
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    bars: list[Bar] = field(default_factory=list)
    _section: str = "general"

    def section(self, title: str) -> None:
        self._section = title
        self.facts.setdefault(title, {})
        self._print(f"\n== {title}")

    def fact(self, label: str, value: Any) -> None:
        self.facts.setdefault(self._section, {})[label] = value
        self._print(f"{label:>28}: {value}")

    def note(self, text: str) -> None:
        self.facts.setdefault(self._section, {}).setdefault("notes", []).append(text)
        self._print(f"{'note':>28}: {text}")

    def bar(self, name: str, measured: str, goal: str, met: bool) -> None:
        self.bars.append(Bar(name, measured, goal, met))
        self._print(f"{'bar ' + name:>28}: {measured} (goal {goal}) {'MET' if met else 'NOT MET'}")

    def summary(self) -> None:
        self._print("\n== bars")
        for b in self.bars:
            self._print(f"{'MET    ' if b.met else 'NOT MET'} {b.name}: {b.measured} (goal {b.goal})")

    def as_dict(self) -> dict[str, Any]:
        return {"facts": self.facts, "bars": [b.__dict__ for b in self.bars]}

    @staticmethod
    def _print(text: str) -> None:
        print(text, flush=True)
