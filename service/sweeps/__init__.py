"""Sweeps: many variants of one train request, trained together where they
share a structure, compared side by side (``/sweeps``)."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the sweep routes and their store (on the jobs' Redis)."""
    from jobs.sweeps import SweepStore

    from . import live
    from . import views

    app.extensions["sweeps"] = SweepStore(app.extensions["jobs"])
    app.register_blueprint(views.bp)
    app.register_blueprint(live.bp)
