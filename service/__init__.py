"""The seqlab REST API: Keras parameter counts over HTTP.

Gunicorn runs ``service:create_app()``; there is no module-level app.
"""

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure an instance of the Flask application.

    Configuration is layered: the defaults below, then ``FLASK_*``
    environment variables (``FLASK_REDIS_URL=redis://redis:6379/0``; values
    are parsed as JSON where they can be), then ``test_config`` if given.

    :param test_config: settings that override everything else, for tests.
    """
    # An API has no static files; without this Flask would add a /static route.
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(
        # 1 MiB: far more than any model spec needs, and it bounds parsing work.
        MAX_CONTENT_LENGTH=1_048_576,
        # Not used yet: the job queue will read it.
        REDIS_URL="redis://localhost:6379/0",
        # Responses of POST /params kept per process, by request body; 0: none.
        PARAMS_CACHE_SIZE=1024,
    )
    app.config.from_prefixed_env()
    # Keep members in the order the API builds them (name, type, shape, ...).
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if test_config is not None:
        app.config.update(test_config)

    from . import api
    from . import problems
    from .cache import LRUCache

    app.extensions["params_cache"] = LRUCache(int(app.config["PARAMS_CACHE_SIZE"]))
    problems.init_app(app)
    app.register_blueprint(api.bp)
    return app
