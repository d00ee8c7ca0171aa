"""API keys and tenants: who is calling, and which objects they may see.

With ``SEQLAB_API_KEYS`` (``alice:s3cr3t,bob:t0ken``) or
``SEQLAB_API_KEYS_FILE`` (one ``name:secret`` a line) set, every route needs
``Authorization: Bearer <secret>`` except the open ones: the routes of the
blueprints that :func:`init_app` is told are open (``api``: ``/params``,
``/layers``, ``/healthz``, ``/openapi.yaml``...) and views marked
:func:`public`. A route added later is guarded unless it says otherwise.

The key's name is the caller's tenant (:func:`caller`). Objects record the
tenant that made them, and :func:`owned_by_caller` is the one rule that
decides whether the caller may see one; an object of another tenant is
answered as a missing one.

Only SHA-256 digests of the secrets are kept, compared in constant time;
no secret is logged or stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

from flask import Blueprint
from flask import Flask
from flask import current_app
from flask import g
from flask import request
from werkzeug.exceptions import Unauthorized

#: A tenant's name: it appears in Redis keys and logs, so a plain token.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: RFC 6750's b64token: what an ``Authorization: Bearer`` header can carry.
SECRET = re.compile(r"[A-Za-z0-9._~+/-]+=*")
#: Shorter secrets work but are guessable; start-up says so (by name).
SHORT_SECRET = 16

REALM = "seqlab"

View = TypeVar("View", bound=Callable[..., object])


class ApiKeyError(ValueError):
    """The API key configuration is malformed; the app refuses to start."""


@dataclass(frozen=True)
class KeyRing:
    """The tenants' names by the SHA-256 digest of their secret."""

    digests: tuple[tuple[bytes, str], ...]
    #: The names whose secret is shorter than SHORT_SECRET characters.
    short: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return sorted(name for _, name in self.digests)

    def tenant_of(self, token: str) -> str | None:
        """The name whose secret is ``token``, None if none is.

        Every digest is compared, in constant time, so the answer's timing
        tells nothing about how close a guess came.
        """
        digest = _digest(token)
        found = None
        for known, name in self.digests:
            if hmac.compare_digest(known, digest):
                found = name
        return found


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


def parse_keys(entries: Iterable[tuple[str, str]]) -> KeyRing:
    """Check ``(where, "name:secret")`` entries and build the key ring.

    :raise ApiKeyError: naming the entry (``SEQLAB_API_KEYS_FILE keys.txt
        line 3``) and what is wrong, never the secret: a missing ``:``, a
        name or secret of the wrong form, an empty secret, a name or a
        secret given twice.
    """
    names: dict[str, str] = {}  # name: where it is given
    digests: dict[bytes, tuple[str, str]] = {}  # digest: (name, where)
    short: list[str] = []
    for where, entry in entries:
        name, colon, secret = entry.strip().partition(":")
        if not colon:
            raise ApiKeyError(f"{where}: expected name:secret, found no ':'.")
        if not NAME.fullmatch(name):
            raise ApiKeyError(
                f"{where}: the name {name[:64]!r} is not 1 to 64 letters, digits, '_', '.' "
                "or '-' (starting with a letter or digit)."
            )
        if not secret:
            raise ApiKeyError(f"{where}: the secret of {name!r} is empty.")
        if not SECRET.fullmatch(secret):
            raise ApiKeyError(
                f"{where}: the secret of {name!r} has characters that a Bearer token cannot "
                "carry; use letters, digits, '-', '.', '_', '~', '+', '/' (and '=' at the end), "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'."
            )
        if name in names:
            raise ApiKeyError(f"{where}: the name {name!r} is also given at {names[name]}.")
        digest = _digest(secret)
        if digest in digests:
            # Two tenants with one secret could not be told apart.
            raise ApiKeyError(
                f"{where}: the secret of {name!r} is also the secret at {digests[digest][1]}."
            )
        names[name], digests[digest] = where, (name, where)
        if len(secret) < SHORT_SECRET:
            short.append(name)
    pairs = tuple((digest, name) for digest, (name, _) in digests.items())
    return KeyRing(pairs, tuple(short))


def load_keys(keys: str | None, keys_file: str | None) -> KeyRing | None:
    """The key ring of ``SEQLAB_API_KEYS`` and ``SEQLAB_API_KEYS_FILE``
    (both may be set: their keys are merged); None when neither is.

    An empty variable counts as unset (compose passes ``${VAR:-}``), but a
    keys file that holds no key is refused: whoever named it meant to
    close the API.

    :raise ApiKeyError: as :func:`parse_keys`, or when the file cannot be
        read or holds no key.
    """
    entries: list[tuple[str, str]] = []
    if keys and keys.strip():
        for i, entry in enumerate(keys.split(","), 1):
            if entry.strip():  # a trailing comma is harmless
                entries.append((f"SEQLAB_API_KEYS entry {i}", entry))
    if keys_file:
        try:
            with open(keys_file, encoding="utf-8") as lines:
                found = [
                    (f"SEQLAB_API_KEYS_FILE {keys_file} line {n}", line)
                    for n, line in enumerate(lines, 1)
                    if line.strip() and not line.lstrip().startswith("#")
                ]
        except (OSError, UnicodeDecodeError) as error:
            raise ApiKeyError(
                f"SEQLAB_API_KEYS_FILE {keys_file}: cannot be read: {error}"
            ) from None
        if not found:
            raise ApiKeyError(
                f"SEQLAB_API_KEYS_FILE {keys_file}: holds no key (expected name:secret lines)."
            )
        entries += found
    if not entries:
        return None
    return parse_keys(entries)


def public(view: View) -> View:
    """Mark a view as open to everyone, even with API keys set."""
    view.seqlab_public = True  # type: ignore[attr-defined]
    return view


def init_app(app: Flask, open_blueprints: Iterable[Blueprint]) -> None:
    """Read the keys from the app's config (``API_KEYS``, ``API_KEYS_FILE``)
    and guard every route but those of ``open_blueprints`` and :func:`public`
    views.

    :raise ApiKeyError: on malformed configuration, before serving anything.
    """
    ring = load_keys(app.config.get("API_KEYS"), app.config.get("API_KEYS_FILE"))
    app.extensions["api_keys"] = ring
    app.extensions["open_blueprints"] = frozenset(bp.name for bp in open_blueprints)
    if ring is None:
        app.logger.warning(
            "API keys are off: any client may submit, read, cancel and delete any job. "
            "Set SEQLAB_API_KEYS or SEQLAB_API_KEYS_FILE to give each tenant a key."
        )
    else:
        app.logger.info("API keys on for %d tenants: %s", len(ring.digests), ", ".join(ring.names))
        if ring.short:
            app.logger.warning(
                "the API keys of %s are shorter than %d characters, and so easy to guess",
                ", ".join(ring.short),
                SHORT_SECRET,
            )
    app.before_request(_guard)


def keys_on() -> bool:
    """Whether this app has API keys (and so tenants)."""
    return current_app.extensions["api_keys"] is not None


def caller() -> str | None:
    """The tenant of the current request; None without API keys (or on an
    open route)."""
    return g.get("tenant")


def owned_by_caller(owner: str | None) -> bool:
    """Whether the caller may see an object that ``owner`` made.

    Without API keys every object is everyone's (as objects made then carry
    no owner). With keys an object is its tenant's alone; one made while
    the API was open belongs to nobody.
    """
    return not keys_on() or (owner is not None and owner == caller())


def _is_open() -> bool:
    if request.endpoint is None:  # no route matched: let it be the 404 or 405 it is
        return True
    if request.blueprint in current_app.extensions["open_blueprints"]:
        return True
    view = current_app.view_functions.get(request.endpoint)
    return bool(getattr(view, "seqlab_public", False))


def _guard() -> None:
    ring: KeyRing | None = current_app.extensions["api_keys"]
    if ring is None or _is_open():
        return
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        # No credentials (or another scheme): RFC 6750 §3.1 gives no error code.
        raise BearerChallenge(
            "This route needs an API key: send the header 'Authorization: Bearer <key>'."
        )
    tenant = ring.tenant_of(token.strip())
    if tenant is None:
        # Who tried, not what: the token itself is never logged.
        current_app.logger.warning(
            "refused an unknown API key from %s for %s %s",
            request.remote_addr,
            request.method,
            request.path,
        )
        raise BearerChallenge("The API key is not valid.", "invalid_token")
    g.tenant = tenant


class BearerChallenge(Unauthorized):
    """A 401 with RFC 6750's challenge: ``Bearer realm="seqlab"``, plus
    ``error="invalid_token"`` when a token was sent but is not a key."""

    def __init__(self, detail: str, error: str | None = None) -> None:
        super().__init__(detail)
        self.challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        # The problem handler copies these; werkzeug's own would drop the quotes.
        return [*super().get_headers(*args, **kwargs), ("WWW-Authenticate", self.challenge)]
