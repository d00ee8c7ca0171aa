"""``POST /params`` and ``GET /layers``: a model's exact Keras counts, shapes,
summary and memory estimate, answered at once from the engine."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Give the app its ``/params`` answer cache, register the routes, and
    answer the common ``POST /params`` below Flask (``direct.py``)."""
    from . import direct
    from . import views
    from .cache import LRUCache

    app.extensions["params_cache"] = LRUCache(int(app.config["PARAMS_CACHE_SIZE"]))
    app.register_blueprint(views.bp)
    direct.init_app(app)
