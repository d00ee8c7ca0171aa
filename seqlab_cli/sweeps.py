"""``seqlab sweep``: many variants of one train request, side by side.

Tables and parsing are plain functions (``parse_vary``, ``sweep_table``);
the commands are thin over them and the API's ``/sweeps`` routes.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import click

from .client import STREAM_TIMEOUT
from .client import Api
from .client import submit
from .errors import INTERRUPTED
from .errors import JOB_FAILED
from .errors import OK
from .errors import ApiError
from .files import is_train_request
from .files import read_json
from .render import number
from .sse import DROPPED
from .sse import EventParser

TERMINAL = ("succeeded", "failed", "cancelled")


def parse_value(text: str) -> Any:
    """A value as JSON where it is one (``0.01``, ``true``, ``[5, 1]``),
    else the text itself (``adam``)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_vary(items: tuple[str, ...]) -> dict[str, list[Any]]:
    """``--vary PATH=V1,V2`` options as ``vary``: each path with its values,
    split at commas, each read as JSON where it is one; a JSON list after
    the ``=`` is the list of values itself (``model.input_shape=[[5,1],[5,2]]``).

    >>> parse_vary(("seed=0,1", "compile.optimizer=adam,sgd"))
    {'seed': [0, 1], 'compile.optimizer': ['adam', 'sgd']}
    """
    vary: dict[str, list[Any]] = {}
    for item in items:
        path, sep, values = item.partition("=")
        if not sep or not path or not values:
            raise click.BadParameter(f"{item!r}: give PATH=V1,V2,...", param_hint="--vary")
        whole = parse_value(values) if values.lstrip().startswith("[") else None
        vary[path] = (
            whole if isinstance(whole, list) else [parse_value(v) for v in values.split(",")]
        )
    return vary


def columns(sweep: dict[str, Any]) -> list[str]:
    """The table's columns: the trial, each varied path, its status,
    parameters and epochs, then the objective's metric and the loss (and
    every other value the trials logged, after them)."""
    metrics: list[str] = []
    for trial in sweep.get("trials", []):
        for name in (trial.get("result") or {}).get("final_metrics") or {}:
            if name not in metrics:
                metrics.append(name)
    first = [sweep["objective"]["metric"], "loss"]
    ordered = list(dict.fromkeys([m for m in first if m in metrics or m == first[0]] + metrics))
    return ["trial", *sweep["vary"], "status", "params", "epochs", *ordered]


def row(sweep: dict[str, Any], trial: dict[str, Any]) -> dict[str, Any]:
    """One trial's cells, by column (None where it has no value yet)."""
    result = trial.get("result") or {}
    cells: dict[str, Any] = {
        "trial": trial["trial"],
        **{path: trial["values"].get(path) for path in sweep["vary"]},
        "status": trial["status"],
        "params": trial.get("total_params"),
        "epochs": result.get("epochs_completed", (trial.get("progress") or {}).get("epoch")),
    }
    cells.update(result.get("final_metrics") or {})
    return cells


def sort_key(value: Any) -> tuple[int, Any]:
    """Numbers by value, then text, then the empty cells last."""
    if isinstance(value, bool) or value is None:
        return (2, "") if value is None else (1, str(value))
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return (0, value)
    return (1, json.dumps(value) if not isinstance(value, str) else value)


def sweep_table(sweep: dict[str, Any], sort: str | None = None, descending: bool = False) -> str:
    """The trials as a table, the best marked ``*``; sorted by the column
    ``sort`` names (a header or a varied path, any case), else by trial."""
    names = columns(sweep)
    rows = [row(sweep, trial) for trial in sweep.get("trials", [])]
    if sort is not None:
        wanted = next((n for n in names if n.lower() == sort.lower()), None)
        if wanted is None:
            raise click.BadParameter(
                f"{sort!r} is not a column: one of {', '.join(names)}.", param_hint="--sort"
            )
        rows.sort(key=lambda cells: sort_key(cells.get(wanted)), reverse=descending)
        if descending:  # the empty cells stay last
            rows.sort(key=lambda cells: cells.get(wanted) is None)
    best = (sweep.get("best") or {}).get("trial")
    lines = [["", *(n.upper() if n in ("trial", "status", "params", "epochs") else n
                    for n in names)]]  # fmt: skip
    for cells in rows:
        mark = "*" if cells["trial"] == best else ""
        lines.append([mark, *(_cell(cells.get(n)) for n in names)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
    return text


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return number(value)
    return value if isinstance(value, str) else json.dumps(value)


def summary_line(sweep: dict[str, Any]) -> str:
    """The sweep in a line: id, status, counts by status, the best trial."""
    counts = ", ".join(f"{n} {s}" for s, n in sweep["trial_statuses"].items())
    best = sweep.get("best")
    told = f"; best trial {best['trial']}: {best['metric']} {number(best['value'])}" if best else ""
    return f"sweep {sweep['id']}: {sweep['status']} ({counts}){told}"


def follow_sweep(api: Api, sweep_id: str, total: int) -> None:
    """Print a line on stderr as each trial ends, until the sweep has; its
    event stream, reconnected if it drops, or polling where there is none."""
    ended: set[int] = set()
    while True:
        try:
            with api.open("GET", f"/sweeps/{sweep_id}/events",
                          headers={"Accept": "text/event-stream"},
                          timeout=STREAM_TIMEOUT) as response:  # fmt: skip
                parser = EventParser()
                for raw in response:
                    event = parser.feed(raw.decode("utf-8", "replace"))
                    if event is None:
                        continue
                    data = json.loads(event.data)
                    if event.type == "trial" and data["status"] in TERMINAL:
                        if data["trial"] not in ended:
                            ended.add(data["trial"])
                            loss = (data.get("final_metrics") or {}).get("loss")
                            told = f" loss {number(loss)}" if loss is not None else ""
                            click.echo(f"  trial {data['trial']} {data['status']}{told} "
                                       f"({len(ended)}/{total} ended)", err=True)  # fmt: skip
                    elif event.type == "status" and data["status"] in TERMINAL:
                        return
        except DROPPED:
            time.sleep(1.0)  # the stream broke: read it again
        except ApiError as error:
            if error.status is not None:
                raise
            time.sleep(1.0)
        if api.get(f"/sweeps/{sweep_id}")["status"] in TERMINAL:
            return


@click.group()
def sweep() -> None:
    """Sweeps: many variants of one train request, trained together.

    \b
      seqlab sweep run --example many_to_one --vary seed=0,1,2,3 \\
                       --vary compile.learning_rate=0.01,0.05
      seqlab sweep show ID --sort loss        the trials as a table
      seqlab sweep list / cancel ID / delete ID
      seqlab sweep model ID N -o m.keras / plot ID -o curves.png
    """


def _api(url: str | None) -> Api:
    settings = click.get_current_context().obj
    return settings.api(url)  # type: ignore[no-any-return]


url_option = click.option("--url", default=None, metavar="URL", help="The seqlab API.")
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout, nothing else."
)


def emit(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@sweep.command("run")
@click.argument("spec", required=False, metavar="SPEC")
@click.option("--example", metavar="NAME", help="Start from a seed example (GET /examples).")
@click.option("--vary", "vary_items", multiple=True, required=True, metavar="PATH=V1,V2",
              help="A dotted path of the request and its values (repeat for more).")  # fmt: skip
@click.option("--objective", metavar="METRIC", help="What ranks the trials [val_loss, else loss].")
@click.option("--mode", type=click.Choice(["min", "max"]), default="min", show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), help="fit.epochs")
@click.option("--wait/--no-wait", default=None,
              help="Follow the sweep to its end [default: when stderr is a terminal].")  # fmt: skip
@click.option("--sort", metavar="COLUMN", help="Sort the final table by this column.")
@url_option
@json_option
def run(
    spec: str | None, example: str | None, vary_items: tuple[str, ...], objective: str | None,
    mode: str, epochs: int | None, wait: bool | None, sort: str | None, url: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Queue a sweep; waiting, print a line as each trial ends, then the
    table. Exit 0 when every trial succeeded, 1 otherwise."""
    body: dict[str, Any] = {}
    if spec is not None:
        document = read_json(spec)
        body = dict(document) if is_train_request(document) else {"model": document}
    if example is not None:
        body["example"] = example
    if not body:
        raise click.UsageError("Give a SPEC file (or - for stdin), or --example NAME.")
    if epochs is not None:
        body["fit"] = {**(body.get("fit") or {}), "epochs": epochs}
    body["vary"] = parse_vary(vary_items)
    if objective is not None:
        body["objective"] = {"metric": objective, "mode": mode}
    api = _api(url)
    created = submit(api, body, "/sweeps")
    sweep_id = created["id"]
    if wait is None:
        wait = sys.stderr.isatty()
    if not wait:
        if as_json:
            emit(created)
        else:
            click.echo(sweep_id)
        click.echo(f"Queued sweep {sweep_id} ({created['trial_count']} trials). "
                   f"See it: seqlab sweep show {sweep_id}", err=True)  # fmt: skip
        return
    click.echo(f"Queued sweep {sweep_id}: {created['trial_count']} trials, "
               f"{len(created['models'])} model(s).", err=True)  # fmt: skip
    try:
        follow_sweep(api, sweep_id, created["trial_count"])
    except KeyboardInterrupt:
        click.echo(f"\nStopped watching; sweep {sweep_id} keeps running. "
                   f"Cancel it with: seqlab sweep cancel {sweep_id}", err=True)  # fmt: skip
        sys.exit(INTERRUPTED)
    done = api.get(f"/sweeps/{sweep_id}")
    _show(done, sort, False, as_json)
    sys.exit(OK if done["status"] == "succeeded" else JOB_FAILED)


def _show(document: dict[str, Any], sort: str | None, descending: bool, as_json: bool) -> None:
    if as_json:
        emit(document)
        return
    click.echo(summary_line(document))
    click.echo(sweep_table(document, sort, descending))


@sweep.command("show")
@click.argument("sweep_id", metavar="ID")
@click.option("--sort", metavar="COLUMN", help="A column's header or varied path.")
@click.option("--desc", "descending", is_flag=True, help="Largest first.")
@url_option
@json_option
def show(sweep_id: str, sort: str | None, descending: bool, url: str | None,
         as_json: bool) -> None:  # fmt: skip
    """A sweep's trials as a table, sortable by any column; the best marked *."""
    _show(_api(url).get(f"/sweeps/{sweep_id}"), sort, descending, as_json)


@sweep.command("list")
@url_option
@json_option
def list_(url: str | None, as_json: bool) -> None:
    """The newest sweeps, one line each."""
    sweeps = _api(url).get("/sweeps")["sweeps"]
    if as_json:
        emit(sweeps)
        return
    for one in sweeps:
        click.echo(summary_line(one))


@sweep.command("cancel")
@click.argument("sweep_id", metavar="ID")
@url_option
def cancel(sweep_id: str, url: str | None) -> None:
    """Cancel every trial that has not ended."""
    answer = _api(url).call("POST", f"/sweeps/{sweep_id}/cancel").json()
    click.echo(summary_line(answer))


@sweep.command("delete")
@click.argument("sweep_id", metavar="ID")
@url_option
def delete(sweep_id: str, url: str | None) -> None:
    """Delete an ended sweep with every trial's job and model."""
    _api(url).call("DELETE", f"/sweeps/{sweep_id}")
    click.echo(f"sweep {sweep_id} deleted.")


def _download(url: str | None, path: str, accept: str, output: Path) -> None:
    answer = _api(url).call("GET", path, headers={"Accept": accept})
    output.write_bytes(answer.body)
    click.echo(f"wrote {output} ({len(answer.body):,} bytes)")


@sweep.command("model")
@click.argument("sweep_id", metavar="ID")
@click.argument("trial", type=click.IntRange(min=0), metavar="N")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write [default: seqlab-ID-N.keras].")  # fmt: skip
@url_option
def model(sweep_id: str, trial: int, output: Path | None, url: str | None) -> None:
    """Download trial N's trained model as a .keras file."""
    output = output or Path(f"seqlab-{sweep_id}-{trial}.keras")
    _download(url, f"/sweeps/{sweep_id}/trials/{trial}/model", "application/octet-stream", output)


@sweep.command("plot")
@click.argument("sweep_id", metavar="ID")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write: .png or .svg.")  # fmt: skip
@url_option
def plot(sweep_id: str, output: Path, url: str | None) -> None:
    """Download every trial's curves, overlaid, as PNG or SVG."""
    kind = output.suffix.lower().lstrip(".")
    if kind not in ("png", "svg"):
        raise click.BadParameter("the file must end in .png or .svg.", param_hint="-o")
    accept = "image/png" if kind == "png" else "image/svg+xml"
    _download(url, f"/sweeps/{sweep_id}/plot.{kind}", accept, output)
