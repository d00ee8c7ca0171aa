"""``python -m bench``'s closing table of issue 18's goals (bench/goals.py)."""

import pytest

from bench import goals


@pytest.fixture(autouse=True)
def fresh_rows(monkeypatch):
    rows = {key: goals.Row(row.goal, row.target) for key, row in goals.ROWS.items()}
    monkeypatch.setattr(goals, "ROWS", rows)


def test_every_goal_has_a_row_even_when_its_bench_did_not_run():
    lines = goals.table().splitlines()
    assert lines[1] == "Issue 18 goals"
    assert lines[2].split() == ["goal", "target", "figure", "verdict", "baseline"]
    body = lines[4:]
    assert len(body) == len(goals.ROWS)
    assert all("not run" in line for line in body)


def test_a_recorded_figure_shows_with_its_baseline_and_verdict():
    goals.record("params_sequential", "104× (app median 240 µs)", "Keras 25.0 ms", True)
    goals.record("graph_schema", "2.10×", "as Sequential 14.0 µs", False)
    goals.record("predict_latency", "p50 3.00 ms", "model.predict p50 30.00 ms")
    table = goals.table()
    seq = next(line for line in table.splitlines() if "Sequential" in line and "Keras" in line)
    assert "104× (app median 240 µs)" in seq and "met" in seq and "Keras 25.0 ms" in seq
    graph = next(line for line in table.splitlines() if line.startswith("graph schema"))
    assert "NOT met" in graph
    predict = next(line for line in table.splitlines() if "predict" in line)
    assert "p50 3.00 ms" in predict and "met" not in predict


def test_the_warm_seed_job_has_its_row():
    goals.record(
        "warm_seed_job",
        "one_to_one 0.063 s; many_to_one 0.038 s; many_to_many 0.047 s",
        "baseline one_to_one 0.146 s; many_to_one 0.104 s; many_to_many 0.176 s",
        True,
    )
    line = next(line for line in goals.table().splitlines() if line.startswith("warm seed job"))
    assert "≤ 0.3 s each" in line and "many_to_many 0.047 s" in line and " met " in line
    assert "baseline one_to_one 0.146 s" in line


def test_an_unknown_goal_is_refused():
    with pytest.raises(KeyError):
        goals.record("no_such_goal", "1", "2")
