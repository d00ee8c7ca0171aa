"""Pages for people, served by the API itself: ``GET /`` the parameter
calculator, ``GET /ui/jobs`` the caller's jobs, ``GET /ui/jobs/<id>`` one
job live, and ``GET /ui/static/<name>`` the scripts and styles they load.

Each page is a shell rendered by Flask: its scripts (plain ES modules in
``static/``, hand-written, no build step) read everything from the JSON
API with ``fetch``, so the API's own rules (API keys, tenants, limits)
decide what a page shows; the pages themselves are open to everyone and
hold no data. Every page and file carries the Content-Security-Policy of
``/docs`` (service/web.py): nothing loads from another host, and no script
or style is inline.
"""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the pages and their files."""
    from . import views

    app.register_blueprint(views.bp)
