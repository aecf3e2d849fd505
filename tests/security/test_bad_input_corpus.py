"""73 bad inputs (references, digests, sync specs, manifests, local layouts): each one ends with a
non-zero exit and exactly one ``Error: ...`` line on stderr, never a traceback (see
:mod:`tests.helpers.bad_inputs`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.helpers.bad_inputs import build_cases, run_cases
from tests.helpers.fake_registry import FakeRegistry


def test_every_bad_input_gives_one_line_and_no_traceback(tmp_path: Path) -> None:
    with FakeRegistry() as fake:
        cases = build_cases(tmp_path, fake)
        outcomes = run_cases(cases, tmp_path)
    assert Counter(case.category for case in cases) == {
        "reference": 28,
        "spec": 17,
        "manifest": 14,
        "layout": 14,
    }
    broken = [f"{o.case.category} {o.case.label}: {o.problem}" for o in outcomes if o.problem is not None]
    assert not broken, "\n".join(broken)
    # Usage errors (names, specs) are exit 2; what a server or a file contains is exit 1.
    for outcome in outcomes:
        expected = 2 if outcome.case.category in ("reference", "spec") else 1
        assert outcome.returncode == expected, (outcome.case.label, outcome.stderr)
