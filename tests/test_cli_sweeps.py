"""seqlab_cli/sweeps.py: ``seqlab sweep``, its parsing and table, and a
sweep run from the command line against a real API, Redis and worker."""

import json
import zipfile

import click
import pytest
from test_cli import api_url  # noqa: F401 (the module's API, as a fixture here)
from test_cli import seqlab

from seqlab_cli.sweeps import parse_vary
from seqlab_cli.sweeps import sweep_table


def test_vary_options_parse_values_as_json_where_they_are():
    assert parse_vary(("seed=0,1,2", "compile.learning_rate=0.01,0.05")) == {
        "seed": [0, 1, 2],
        "compile.learning_rate": [0.01, 0.05],
    }
    assert parse_vary(("compile.optimizer=adam,sgd",)) == {"compile.optimizer": ["adam", "sgd"]}
    assert parse_vary(("model.input_shape=[[5,1],[5,2]]",)) == {
        "model.input_shape": [[5, 1], [5, 2]]
    }
    with pytest.raises(click.BadParameter, match="PATH=V1,V2"):
        parse_vary(("seed",))


SWEEP = {
    "id": "s" * 32,
    "status": "succeeded",
    "trial_statuses": {"succeeded": 3},
    "vary": {"seed": [0, 1, 2]},
    "objective": {"metric": "loss", "mode": "min"},
    "best": {"trial": 1, "value": 0.1, "metric": "loss", "mode": "min"},
    "trials": [
        {"trial": n, "values": {"seed": n}, "status": "succeeded", "total_params": 170,
         "result": {"epochs_completed": 5, "final_metrics": {"loss": loss}}}
        for n, loss in enumerate((0.5, 0.1, 0.3))
    ],
}  # fmt: skip


def rows(text):
    return [line.split() for line in text.splitlines()[1:]]


def test_the_table_marks_the_best_and_sorts_by_any_column():
    table = sweep_table(SWEEP)
    assert table.splitlines()[0].split() == ["TRIAL", "seed", "STATUS", "PARAMS", "EPOCHS", "loss"]
    assert [r[0] for r in rows(table)] == ["0", "*", "2"]  # the best trial marked
    by_loss = sweep_table(SWEEP, sort="loss")
    assert [r[-1] for r in rows(by_loss)] == ["0.1", "0.3", "0.5"]
    assert [r[-1] for r in rows(sweep_table(SWEEP, sort="LOSS", descending=True))] == [
        "0.5", "0.3", "0.1",
    ]  # fmt: skip
    with pytest.raises(click.BadParameter, match="not a column: one of trial, seed"):
        sweep_table(SWEEP, sort="nope")


@pytest.mark.slow
def test_a_sweep_runs_from_the_command_line(api_url, tmp_path):  # noqa: F811
    rv = seqlab(
        "sweep", "run", "--example", "many_to_one", "--epochs", "30",
        "--vary", "seed=0,1", "--vary", "compile.learning_rate=0.01,0.05",
        "--wait", "--url", api_url,
    )  # fmt: skip
    assert rv.returncode == 0, rv.stderr
    assert "4 trials, 1 model(s)" in rv.stderr
    assert "(4/4 ended)" in rv.stderr
    lines = rv.stdout.splitlines()
    assert lines[0].startswith("sweep ") and ": succeeded (4 succeeded); best trial" in lines[0]
    sweep_id = lines[0].split()[1].rstrip(":")
    assert lines[1].split() == [
        "TRIAL", "seed", "compile.learning_rate", "STATUS", "PARAMS", "EPOCHS", "loss",
    ]  # fmt: skip
    assert len(lines) == 6
    assert sum(line.startswith("*") for line in lines[2:]) == 1
    shown = seqlab("sweep", "show", sweep_id, "--sort", "loss", "--desc", "--url", api_url)
    losses = [float(line.split()[-1]) for line in shown.stdout.splitlines()[2:]]
    assert losses == sorted(losses, reverse=True)
    document = json.loads(seqlab("sweep", "show", sweep_id, "--json", "--url", api_url).stdout)
    assert document["trial_count"] == 4
    listed = seqlab("sweep", "list", "--url", api_url)
    assert sweep_id in listed.stdout
    model = tmp_path / "m.keras"
    assert seqlab("sweep", "model", sweep_id, "2", "-o", model, "--url", api_url).returncode == 0
    assert zipfile.is_zipfile(model)
    picture = tmp_path / "curves.svg"
    assert seqlab("sweep", "plot", sweep_id, "-o", picture, "--url", api_url).returncode == 0
    assert picture.read_bytes().startswith(b"<?xml")
    assert seqlab("sweep", "delete", sweep_id, "--url", api_url).returncode == 0
    gone = seqlab("sweep", "show", sweep_id, "--url", api_url)
    assert gone.returncode == 2
    assert "There is no sweep" in gone.stderr


def test_a_refused_sweep_exits_2_naming_the_field(api_url):  # noqa: F811
    rv = seqlab("sweep", "run", "--example", "many_to_one", "--vary", "model.layers.0.units=4,0",
                "--url", api_url)  # fmt: skip
    assert rv.returncode == 2
    assert "trial 1 (model.layers.0.units = 0)" in rv.stderr
