"""What every page and file the API serves to a browser shares: one
Content-Security-Policy, and how a static file is answered.

``/docs`` (service/docs.py) and the pages (service/pages/) both load
scripts, styles, images and data from this server only, and no inline
script or style: the policy below says so to the browser, which refuses
anything else (and reports it on the console).
"""

from __future__ import annotations

from pathlib import Path

from flask import Response
from flask import send_from_directory

#: Everything a page may load: scripts, styles, images and requests of
#: this server only (``data:`` images are Swagger UI's inline icons). No
#: ``'unsafe-inline'``: no inline ``<script>``, ``<style>`` or ``style=``.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)
#: Static files change only with a release (or the package that ships them):
#: a day's caching, revalidated after by ``ETag``/``Last-Modified``.
ASSET_MAX_AGE = 86_400


def secured(response: Response) -> Response:
    """The response, with the policy and no content sniffing (a browser
    runs a script only when it is served as one)."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def html_page(body: str) -> Response:
    """A rendered page, secured."""
    return secured(Response(body, mimetype="text/html"))


def asset_response(folder: Path, name: str) -> Response:
    """A file of ``folder`` that the caller has checked against its allowlist,
    cacheable for :data:`ASSET_MAX_AGE`, secured (a 304 when the client's
    copy is current)."""
    response = send_from_directory(folder, name, max_age=ASSET_MAX_AGE)
    # Read now and close the file: a client that never closes the response
    # (the test clients) would otherwise leave it open until the collector
    # finds it. The files are small (Swagger UI's largest is about 1.5 MB).
    response.direct_passthrough = False
    body = response.get_data()
    response.close()
    response.set_data(body)
    return secured(response)
