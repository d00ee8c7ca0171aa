"""``POST /params`` and ``GET /layers``: a model's exact Keras counts, shapes,
summary and memory estimate, answered at once from the engine."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Give the app its ``/params`` answer cache and register the routes."""
    from . import views
    from .cache import LRUCache

    app.extensions["params_cache"] = LRUCache(int(app.config["PARAMS_CACHE_SIZE"]))
    app.register_blueprint(views.bp)
