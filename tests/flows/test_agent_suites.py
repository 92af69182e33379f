"""Agent test suites: the YAML format, a clear error for an unknown expectation, and the checks on a call."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.agent_tests import check, load_suite

ROOT = Path(__file__).resolve().parents[2]


def test_the_repo_suite_loads() -> None:
    suite = load_suite((ROOT / "data" / "agent-tests" / "booking.yaml").read_text())
    assert [s.kind for s in suite.scenarios] == ["scripted", "simulated"]
    assert suite.agent["flow"]["start_node"] == "greet"


def test_an_unknown_expectation_is_a_clear_error() -> None:
    text = "scenarios:\n  - name: x\n    expect:\n      - {kind: sentiment_positive}\n"
    with pytest.raises(ValueError, match=r"scenarios\.0\.expect\.0: unknown expectation 'sentiment_positive'; "
                                         r"use one of call_ended, extracted"):
        load_suite(text)
    with pytest.raises(ValueError, match="not valid YAML"):
        load_suite("scenarios: [")
    with pytest.raises(ValueError, match="scenarios.0.caller.0.keys"):
        load_suite("scenarios:\n  - name: x\n    caller: [{keys: '12a'}]\n")


def test_checks_against_a_recorded_call() -> None:
    suite = load_suite("""
scenarios:
  - name: x
    expect:
      - {kind: tool_called, name: collect_digits, detail_contains: keypad}
      - {kind: reply_contains, words: [Booked, friday]}
      - {kind: extracted, variable: date, equals: friday}
      - {kind: call_ended, reason: agent_hangup}
      - {kind: transferred}
""")
    call = {"turns": [{"speaker": "agent", "text": "You are booked for Friday."}],
            "tools": [{"name": "collect_digits", "detail": "6 digits by keypad: ••••••"}],
            "flow_variables": {"date": "Friday"}, "ended_at": "2030-01-01T00:00:00Z", "end_reason": "agent_hangup"}
    assert check(suite.scenarios[0].expect, call) == ["expected {'kind': 'transferred'}"]
