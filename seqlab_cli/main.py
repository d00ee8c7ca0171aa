"""The ``seqlab`` command: count offline, train on a seqlab API, follow jobs.

Results go to stdout (with ``--json``: one JSON document and nothing else);
progress, messages and errors go to stderr. Exit statuses: 0 success, 1 the
job failed or was cancelled (or ``wait`` timed out), 2 bad usage or a
request the server refused (4xx), 3 the server unreachable or a 5xx, 130
Ctrl-C (which stops watching, never the job).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from .client import DEFAULT_URL
from .client import Api
from .client import submit
from .display import display_for
from .errors import INTERRUPTED
from .errors import JOB_FAILED
from .errors import OK
from .errors import REFUSED
from .errors import ApiError
from .errors import CliError
from .files import is_train_request
from .files import model_of
from .files import npz_bytes
from .files import read_data
from .files import read_json
from .follow import POLL_SECONDS
from .follow import TERMINAL
from .follow import follow
from .follow import patient_get
from .render import job_text
from .render import jobs_table
from .render import params_text
from .sweeps import sweep

#: The job states ``seqlab jobs --status`` filters on.
STATUSES = ("queued", "running", *TERMINAL)


@dataclass
class Settings:
    """The group's options, shared by every command."""

    url: str
    verbose: bool

    def api(self, url: str | None = None) -> Api:
        """The API at the command's ``--url``, else the group's; with
        ``SEQLAB_API_KEY`` (kept out of argv, where ``ps`` would show it)."""
        return Api(url or self.url, os.environ.get("SEQLAB_API_KEY"))


class Group(click.Group):
    """Turns the errors of every command into exit statuses."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CliError as error:
            if ctx.meta.get("seqlab.json") and error.document is not None:
                emit(error.document)  # scripts read the server's `errors` too
            raise
        except KeyboardInterrupt:
            click.echo("\nInterrupted.", err=True)
            ctx.exit(INTERRUPTED)


def emit(document: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _remember_json(ctx: click.Context, _: click.Parameter, value: bool) -> bool:
    ctx.meta["seqlab.json"] = value
    return value


json_option = click.option(
    "--json", "as_json", is_flag=True, callback=_remember_json,
    help="Print one JSON document on stdout, and nothing else there.",
)  # fmt: skip
url_option = click.option(
    "--url", default=None, metavar="URL",
    help="The seqlab API (default: seqlab --url, $SEQLAB_URL, else " + DEFAULT_URL + ").",
)  # fmt: skip


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url", envvar="SEQLAB_URL", default=DEFAULT_URL, show_default=True, metavar="URL",
    help="The seqlab API; also $SEQLAB_URL. An API key is read from $SEQLAB_API_KEY.",
)  # fmt: skip
@click.option("-v", "--verbose", is_flag=True, help="Say how jobs are followed.")
@click.version_option(package_name="seqlab")
@click.pass_context
def cli(ctx: click.Context, url: str, verbose: bool) -> None:
    """Exact Keras parameter counts, offline; training jobs on a seqlab API.

    \b
      seqlab params model.json                 count offline, as model.summary()
      seqlab train --example many_to_many      train on the server, watch it
      seqlab train model.json --data d.npz --epochs 50 --no-wait
      seqlab jobs --status running             list jobs
      seqlab watch ID / wait ID... / cancel ID / model ID -o m.keras / plot ID -o loss.png
      seqlab sweep run --example many_to_one --vary seed=0,1,2,3   many variants at once
    """
    ctx.obj = Settings(url, verbose)


# --- params: offline ---------------------------------------------------------


@cli.command()
@click.argument("spec", required=False, metavar="SPEC")
@click.option("--example", metavar="NAME", help="One of the seed article's models instead.")
@click.option("--batch-size", type=int, help="Batch of the training memory estimate [32].")
@click.option("--optimizer", default="adam", show_default=True,
              help="Optimizer of the training memory estimate.")  # fmt: skip
@click.option("--svg", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also draw the model's graph in FILE (SVG), as plot_model.")  # fmt: skip
@json_option
def params(
    spec: str | None,
    example: str | None,
    batch_size: int | None,
    optimizer: str,
    svg: str | None,
    as_json: bool,
) -> None:
    """Count a model's parameters offline, exactly as Keras 3 (no server, no TensorFlow).

    SPEC is a JSON file, or - for stdin: the compact form ({"input_shape",
    "layers"}), Keras's model.to_json(), or a whole train request. Prints
    the table model.summary() prints, the formula behind each layer's count,
    the MACs and the training memory estimate; --json prints the document
    of POST /params; --svg FILE writes the picture POST /params answers
    to Accept: image/svg+xml.
    """
    # The engine and the API's schemas (Flask and marshmallow, no TensorFlow),
    # imported here so that the other commands do not pay for them.
    from marshmallow import ValidationError

    from modelspec.errors import ApiValidationError
    from modelspec.errors import flatten_errors
    from modelspec.errors import listed_errors
    from modelspec.errors import summarize_errors
    from modelspec.fields import MAX_INT
    from modelspec.params import params_document
    from modelspec.params import params_picture
    from seqlab.examples import EXAMPLES
    from seqlab.memory import OPTIMIZERS

    if (spec is None) == (example is None):
        raise click.UsageError("Give a SPEC file (or - for stdin), or --example NAME.")
    if example is not None and example not in EXAMPLES:
        raise click.BadParameter(f"one of {', '.join(EXAMPLES)}.", param_hint="--example")
    if batch_size is not None and not 1 <= batch_size <= MAX_INT:
        raise click.BadParameter(f"an integer from 1 to {MAX_INT}.", param_hint="--batch-size")
    if optimizer not in OPTIMIZERS:
        raise click.BadParameter(f"one of {', '.join(OPTIMIZERS)}.", param_hint="--optimizer")
    body = EXAMPLES[example]["model"] if example else model_of(read_json(spec))  # type: ignore[arg-type]
    try:
        document = params_document(body, batch_size, optimizer)
    except ValidationError as error:
        errors = flatten_errors(error.normalized_messages())
        detail = summarize_errors(errors)
        raise CliError(detail, REFUSED, _problem(detail, listed_errors(errors))) from None
    except ApiValidationError as error:
        raise CliError(error.detail, REFUSED, _problem(error.detail, error.errors)) from None
    if svg is not None:
        picture = params_picture(body).encode()
        try:
            Path(svg).write_bytes(picture)
        except OSError as error:
            raise CliError(f"Cannot write {svg}: {error}", REFUSED) from None
        click.echo(f"wrote {svg} ({len(picture):,} bytes)", err=True)
    if as_json:
        emit(document)
    else:
        click.echo(params_text(document))


def _problem(detail: str, errors: dict[str, list[str]]) -> dict[str, Any]:
    """The problem document POST /params would answer."""
    return {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "detail": detail, "errors": errors}  # fmt: skip


# --- train and follow --------------------------------------------------------


@cli.command()
@click.argument("spec", required=False, metavar="SPEC")
@click.option("--example", metavar="NAME", help="Start from a seed example (GET /examples).")
@click.option(
    "--data",
    "data_file",
    metavar="FILE",
    help="Training data: FILE.npz (arrays x, y; with x_val, y_val it is uploaded as a "
    "dataset, deleted once a waited-for job ends), X.npy,Y.npy or FILE.json {x, y}.",
)
@click.option("--epochs", type=click.IntRange(min=1), help="fit.epochs")
@click.option("--batch-size", type=click.IntRange(min=1), help="fit.batch_size")
@click.option(
    "--wait/--no-wait",
    default=None,
    help="Follow the job to its end [default: when stderr is a terminal].",
)
@url_option
@json_option
@click.pass_obj
def train(
    settings: Settings,
    spec: str | None,
    example: str | None,
    data_file: str | None,
    epochs: int | None,
    batch_size: int | None,
    wait: bool | None,
    url: str | None,
    as_json: bool,
) -> None:
    """Submit a training job, and follow it to its end with --wait.

    SPEC is a JSON file (or - for stdin): a model in either form of
    POST /params, or a whole POST /train request. The options replace
    its parts. Waiting, the exit status is the job's: 0 succeeded, 1 failed
    or cancelled; Ctrl-C stops watching and leaves the job running.
    """
    request: dict[str, Any] = {}
    if spec is not None:
        document = read_json(spec)
        request = dict(document) if is_train_request(document) else {"model": document}
    if example is not None:
        request["example"] = example
    if not request:
        raise click.UsageError("Give a SPEC file (or - for stdin), or --example NAME.")
    data = read_data(data_file) if data_file is not None else None
    fit = {k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if v is not None}
    if fit:
        given = request.get("fit")
        request["fit"] = {**(given if isinstance(given, dict) else {}), **fit}
    api = settings.api(url)
    dataset = None
    if data is not None and "x_val" in data:
        # Validation arrays travel only in a dataset: upload the four.
        dataset = api.call("POST", "/datasets", npz_bytes(data)).json()["id"]
        click.echo(f"Uploaded {data_file} as dataset {dataset} (x_val, y_val: the "
                   "validation data).", err=True)  # fmt: skip
        request["data"] = {"dataset": dataset}
    elif data is not None:
        request["data"] = data
    job = submit(api, request)
    job_id = job["id"]
    if wait is None:
        wait = sys.stderr.isatty()
    if not wait:
        if as_json:
            emit(job)
        else:
            click.echo(job_id)
        click.echo(f"Queued job {job_id}. Follow it: seqlab watch {job_id}   "
                   f"cancel it: seqlab cancel {job_id}", err=True)  # fmt: skip
        return
    click.echo(f"Queued job {job_id} (Ctrl-C stops watching; seqlab cancel {job_id} "
               "cancels it).", err=True)  # fmt: skip
    status = _watch(settings, api, job_id, as_json)
    if dataset is not None and status != INTERRUPTED:
        # The job has ended and read it: it would only count against the
        # caller's datasets (SEQLAB_MAX_DATASETS) until it expires.
        with contextlib.suppress(ApiError):
            api.call("DELETE", f"/datasets/{dataset}")
    sys.exit(status)


@cli.command()
@click.argument("job_id", metavar="ID")
@url_option
@json_option
@click.pass_obj
def watch(settings: Settings, job_id: str, url: str | None, as_json: bool) -> None:
    """Follow a job to its end with a progress bar; exit with its outcome
    (0 succeeded, 1 failed or cancelled). Ctrl-C stops watching, not the job."""
    api = settings.api(url)
    job = api.get(f"/jobs/{job_id}")  # a 404 before anything is shown
    if job["status"] in TERMINAL:
        _show(job, as_json)
        sys.exit(OK if job["status"] == "succeeded" else JOB_FAILED)
    sys.exit(_watch(settings, api, job_id, as_json))


def _watch(settings: Settings, api: Api, job_id: str, as_json: bool) -> int:
    """Follow a job, show it, and return the exit status of its outcome."""
    try:
        with display_for(job_id, settings.verbose) as display:
            follow(api, job_id, display)
    except KeyboardInterrupt:
        click.echo(f"\nStopped watching; job {job_id} keeps running. "
                   f"Cancel it with: seqlab cancel {job_id}", err=True)  # fmt: skip
        return INTERRUPTED
    job = api.get(f"/jobs/{job_id}")
    _show(job, as_json)
    return OK if job["status"] == "succeeded" else JOB_FAILED


def _show(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit(job)
    else:
        click.echo(job_text(job))


# --- the other job commands --------------------------------------------------


@cli.command()
@click.option("--status", type=click.Choice(STATUSES), help="Only the jobs in this state.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="At most this many jobs, newest first.")  # fmt: skip
@url_option
@json_option
@click.pass_obj
def jobs(
    settings: Settings, status: str | None, limit: int, url: str | None, as_json: bool
) -> None:
    """List jobs, newest first (with API keys: your own)."""
    api = settings.api(url)
    found: list[dict[str, Any]] = []
    token = None
    while len(found) < limit:
        # The API does not filter by status: with --status, read whole pages.
        size = 100 if status else min(limit - len(found), 100)
        page = api.get("/jobs", page_size=size, page_token=token)
        found += [job for job in page["jobs"] if status in (None, job["status"])]
        token = page.get("next_page_token")
        if not token:
            break
    found = found[:limit]
    if as_json:
        emit({"jobs": found})
    elif found:
        click.echo(jobs_table(found))
    else:
        click.echo("No jobs." if status is None else f"No {status} jobs.", err=True)


@cli.command()
@click.argument("job_id", metavar="ID")
@url_option
@json_option
@click.pass_obj
def job(settings: Settings, job_id: str, url: str | None, as_json: bool) -> None:
    """Show a job: its status, progress, or results (loss sparkline, predictions)."""
    _show(settings.api(url).get(f"/jobs/{job_id}"), as_json)


@cli.command()
@click.argument("job_ids", nargs=-1, required=True, metavar="ID...")
@click.option("--timeout", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Give up after this long (exit status 1).")  # fmt: skip
@url_option
@json_option
@click.pass_obj
def wait(
    settings: Settings, job_ids: tuple[str, ...], timeout: float | None, url: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """Wait until every job has ended: exit 0 if all succeeded, 1 if one
    failed or was cancelled or the time ran out."""
    api = settings.api(url)
    deadline = None if timeout is None else time.monotonic() + timeout
    latest = {job_id: api.get(f"/jobs/{job_id}") for job_id in dict.fromkeys(job_ids)}
    pending = list(latest)
    try:
        while True:
            for job_id in list(pending):
                if latest[job_id]["status"] in TERMINAL:
                    pending.remove(job_id)
                    if not as_json:
                        click.echo(f"{job_id} {latest[job_id]['status']}")
            if not pending or (deadline is not None and time.monotonic() >= deadline):
                break
            time.sleep(POLL_SECONDS)
            for job_id in pending:
                latest[job_id] = patient_get(api, f"/jobs/{job_id}")
    except KeyboardInterrupt:
        click.echo("\nStopped waiting; the jobs keep running.", err=True)
        sys.exit(INTERRUPTED)
    if as_json:
        emit({"jobs": list(latest.values()), "timed_out": pending})
    if pending:
        click.echo(f"Timed out after {timeout:g} s; still not ended: {' '.join(pending)}",
                   err=True)  # fmt: skip
        sys.exit(JOB_FAILED)
    sys.exit(OK if all(j["status"] == "succeeded" for j in latest.values()) else JOB_FAILED)


@cli.command()
@click.argument("job_id", metavar="ID")
@url_option
@json_option
@click.pass_obj
def cancel(settings: Settings, job_id: str, url: str | None, as_json: bool) -> None:
    """Cancel a job: a queued one never starts; a running one stops at its
    next epoch, keeping its history and model so far. An ended job: exit 2."""
    answer = settings.api(url).call("POST", f"/jobs/{job_id}/cancel")
    job = answer.json()
    if as_json:
        emit(job)
    elif answer.status == 202:
        click.echo(f"job {job_id}: cancel requested; it stops at its next epoch.")
    else:
        click.echo(f"job {job_id} cancelled.")


def _download(
    settings: Settings, url: str | None, path: str, accept: str, output: Path, as_json: bool
) -> None:
    """Save what ``GET path`` answers in ``output`` (written whole, or not at all)."""
    answer = settings.api(url).call("GET", path, headers={"Accept": accept})
    data, content_type = answer.body, answer.headers.get("Content-Type", "")
    partial = output.with_name(output.name + ".part")
    try:
        partial.write_bytes(data)
        partial.replace(output)
    except OSError as error:
        raise CliError(f"Cannot write {output}: {error}", REFUSED) from None
    if as_json:
        emit({"path": str(output), "bytes": len(data), "content_type": content_type})
    else:
        click.echo(f"wrote {output} ({len(data):,} bytes)")


@cli.command()
@click.argument("job_id", metavar="ID")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write [default: seqlab-ID.keras].")  # fmt: skip
@url_option
@json_option
@click.pass_obj
def model(
    settings: Settings, job_id: str, output: Path | None, url: str | None, as_json: bool
) -> None:
    """Download the trained model as a .keras file (keras.saving.load_model)."""
    output = output or Path(f"seqlab-{job_id}.keras")
    _download(settings, url, f"/jobs/{job_id}/model", "application/octet-stream", output, as_json)


@cli.command()
@click.argument("job_id", metavar="ID")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The file to write: .png or .svg.")  # fmt: skip
@url_option
@json_option
@click.pass_obj
def plot(settings: Settings, job_id: str, output: Path, url: str | None, as_json: bool) -> None:
    """Download the job's loss curves (loss, validation loss and metrics by
    epoch) as PNG or SVG, by the file's extension; the curve so far while it runs."""
    kind = output.suffix.lower().lstrip(".")
    if kind not in ("png", "svg"):
        raise click.BadParameter("the file must end in .png or .svg.", param_hint="-o")
    accept = "image/png" if kind == "png" else "image/svg+xml"
    _download(settings, url, f"/jobs/{job_id}/plot.{kind}", accept, output, as_json)


cli.add_command(sweep)
