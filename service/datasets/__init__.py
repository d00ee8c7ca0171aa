"""``/datasets``: uploaded training data (``.npz``), and the checks that hold
any training data (uploaded or inline) to the model it trains."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the routes; the store is :func:`service.jobs.init_queue`'s."""
    from . import views

    app.register_blueprint(views.bp)
