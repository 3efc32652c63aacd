"""A case's staged deadlines (GB/T 30428 style: fence off in 3 h, repair in 8 h, restore in
5 days), worked out from its category, filing time and own deadline. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.grid.catalogue import Category


@dataclass(frozen=True)
class StageState:
    name: str
    due_at: float  # unix seconds
    done: bool


def stage_states(
    category: Category, created_at: float, deadline_at: float, stage_index: int
) -> list[StageState]:
    """Every stage of the case with its deadline. The case's deadline is its last stage's;
    the others keep their share of it, so a mode that shortened the case (emergency: 48 h
    -> 12 h) shortened every stage alike."""
    span_s = max(0.0, deadline_at - created_at)
    last_h = category.time_limit_h
    return [
        StageState(s.name, created_at + span_s * s.within_h / last_h, i < stage_index)
        for i, s in enumerate(category.stages)
    ]


def next_due(states: list[StageState]) -> StageState | None:
    """The first stage not done: the one being worked on."""
    return next((s for s in states if not s.done), None)
