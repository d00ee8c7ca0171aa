"""The pages' routes: thin, each renders a shell or sends an allowlisted file."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from flask import Blueprint
from flask import Response
from flask import render_template
from flask import url_for
from werkzeug.exceptions import NotFound

from jobs.store import STATUSES
from jobs.store import is_job_id
from jobs.sweeps import is_sweep_id
from seqlab.memory import OPTIMIZERS

from ..web import asset_response
from ..web import html_page

bp = Blueprint("pages", __name__, template_folder="templates")

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The files the pages load, and no other (tests/test_pages.py holds this
#: list to the folder).
ASSETS = frozenset(
    {"seqlab.css", "favicon.svg", "api.js", "dom.js", "events.js", "chart.js",
     "layerform.js", "names.js", "calculator.js", "jobs.js", "job.js", "sweeps.js",
     "sweep.js"}
)  # fmt: skip


@cache
def assets_version() -> str:
    """A digest of the files' contents: their URLs change with any of them,
    so that a browser never runs a day-old script against a newer API."""
    digest = hashlib.sha256()
    for name in sorted(ASSETS):
        digest.update(name.encode() + b"\0" + (STATIC_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


@bp.context_processor
def _asset_urls() -> dict[str, object]:
    return {"asset_url": lambda name: url_for("pages.asset", version=assets_version(), name=name)}


@bp.get("/")
def calculator() -> Response:
    """The parameter calculator, on the seed's many_to_many model."""
    return html_page(render_template("pages/calculator.html", optimizers=OPTIMIZERS))


@bp.get("/ui/jobs")
def jobs_page() -> Response:
    """The caller's jobs, newest first (the list comes from ``GET /jobs``)."""
    return html_page(render_template("pages/jobs.html", statuses=STATUSES))


@bp.get("/ui/jobs/<job_id>")
def job_page(job_id: str) -> Response:
    """One job, live (its data comes from ``GET /jobs/<id>`` and its events).

    :raise 404: for a string that is not a job id's form; whether the job
        exists, and is the caller's, the API answers to the page.
    """
    if not is_job_id(job_id):
        raise NotFound(f"No job has the id {job_id[:64]!r}.")
    return html_page(render_template("pages/job.html", job_id=job_id))


@bp.get("/ui/sweeps")
def sweeps_page() -> Response:
    """The caller's sweeps, newest first (from ``GET /sweeps``)."""
    return html_page(render_template("pages/sweeps.html"))


@bp.get("/ui/sweeps/<sweep_id>")
def sweep_page(sweep_id: str) -> Response:
    """One sweep, live: its trials as a sortable table and their curves.

    :raise 404: for a string that is not a sweep id's form.
    """
    if not is_sweep_id(sweep_id):
        raise NotFound(f"No sweep has the id {sweep_id[:64]!r}.")
    return html_page(render_template("pages/sweep.html", sweep_id=sweep_id))


@bp.get("/ui/static/<version>/<name>")
def asset(version: str, name: str) -> Response:
    """A script, style or icon of the pages, cacheable for a day. The
    ``version`` in the path (see :func:`assets_version`) only makes new
    files new URLs: any version is answered with the current file, so that
    a page rendered just before a restart still loads.

    :raise 404: for any other name.
    """
    if name not in ASSETS:
        raise NotFound(f"The pages have no file {name[:64]!r}.")
    return asset_response(STATIC_DIR, name)
