"""Run states and the transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    CREATED = "CREATED"
    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({State.FINISHED, State.FAILED, State.CANCELLED})

#: A run may only move forward; a terminal run may be resubmitted (retry policy) which
#: goes back to SUBMITTED and is recorded in its history.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATED: frozenset({State.SUBMITTED, State.RUNNING, State.FAILED, State.CANCELLED}),
    State.SUBMITTED: frozenset(
        {State.SUBMITTED, State.RUNNING, State.FINISHED, State.FAILED, State.CANCELLED}
    ),
    State.RUNNING: frozenset({State.RUNNING, State.FINISHED, State.FAILED, State.CANCELLED}),
    State.FINISHED: frozenset(),
    State.FAILED: frozenset({State.SUBMITTED}),
    State.CANCELLED: frozenset({State.SUBMITTED}),
}


def parse_state(value: str) -> State:
    try:
        return State(value.upper())
    except ValueError:
        from autopot.errors import StoreError

        raise StoreError(
            f"unknown state {value!r}; use one of {', '.join(s.value for s in State)}",
            field="state",
        ) from None
