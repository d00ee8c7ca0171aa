"""seqlab's Lua scripts, every one: read once from ``jobs/lua/<name>.lua``,
composed from their fragments, and registered on a Redis client by name.
The job store's and the datasets' live here, and so do the API's
``Idempotency-Key`` claims (:mod:`service.jobs.idempotency`): one folder,
one way of loading them.

Each file begins with a comment on the KEYS and ARGV it takes and what it
returns. A script is its own file after the fragments that define the
functions it calls (:data:`SCRIPTS`): ``emit.lua`` writes a job's events,
``holds.lua`` checks a lease token, ``set_for_record.lua`` stores a
value for its job record's lifetime. ``{{NAME}}`` in a file is a constant
filled in when a script is composed (``EVENTS_MAXLEN``, from
:mod:`jobs.store`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from importlib import resources

import redis
from redis.commands.core import Script

#: Every script by name (its own file is ``lua/<name>.lua``), with the
#: fragments prepended to it, in order.
SCRIPTS: Mapping[str, tuple[str, ...]] = {
    "transition": ("emit",),
    "update_live": ("emit",),
    "cancel": ("emit",),
    "remove_finished": (),
    "put_model": ("set_for_record",),
    "put_model_chunk": ("holds", "set_for_record"),
    "claim": ("emit",),
    "renew": ("holds",),
    "update_leased": ("emit", "holds"),
    "finish_leased": ("emit", "holds", "set_for_record"),
    "reap": ("emit",),
    "put_predictions": ("holds", "set_for_record"),
    "reserve_dataset": (),
    "take_stream": (),
    "renew_stream": (),
    "idempotency_claim": (),
    "idempotency_swap": (),
    "push_predict": (),
}

#: ``{{NAME}}`` in a file: the constant ``NAME``, filled in by :func:`compose`.
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")

_FOLDER = "lua"


def lua_files() -> list[str]:
    """The names (without ``.lua``) of the files in ``jobs/lua/``, sorted."""
    folder = resources.files("jobs").joinpath(_FOLDER)
    return sorted(f.name.removesuffix(".lua") for f in folder.iterdir() if f.name.endswith(".lua"))


@functools.cache
def source(name: str) -> str:
    """The text of ``jobs/lua/<name>.lua``, read once."""
    return resources.files("jobs").joinpath(_FOLDER, f"{name}.lua").read_text(encoding="utf-8")


def parts(name: str) -> tuple[str, ...]:
    """The files script ``name`` is made of, in order: its fragments, then its own."""
    return (*SCRIPTS[name], name)


def compose(name: str, constants: Mapping[str, object] | None = None) -> str:
    """The text of script ``name``: its files one after another, each
    ``{{NAME}}`` replaced with ``constants[NAME]``.

    Raises KeyError for an unknown script, ValueError for a placeholder
    without a constant.
    """
    given = constants or {}

    def fill(match: re.Match[str]) -> str:
        if match[1] not in given:
            raise ValueError(f"script {name!r}: no constant for {match[0]}")
        return str(given[match[1]])

    text = "".join(source(part).rstrip("\n") + "\n" for part in parts(name))
    return PLACEHOLDER.sub(fill, text)


class Scripts(Mapping[str, Script]):
    """The scripts registered on one client, by name: ``scripts.claim`` or
    ``scripts["claim"]``, each called as ``script(keys=..., args=...)``."""

    def __init__(self, registered: Mapping[str, Script]) -> None:
        self._registered = dict(registered)

    def __getitem__(self, name: str) -> Script:
        return self._registered[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._registered)

    def __len__(self) -> int:
        return len(self._registered)

    def __getattr__(self, name: str) -> Script:
        if name.startswith("_"):  # never look _registered up in itself
            raise AttributeError(name)
        try:
            return self._registered[name]
        except KeyError:
            raise AttributeError(f"no script named {name!r}") from None


def register(
    client: redis.Redis,
    constants: Mapping[str, object] | None = None,
    names: Iterable[str] | None = None,
) -> Scripts:
    """The scripts ``names`` (default: every one of :data:`SCRIPTS`),
    composed with ``constants`` and registered on ``client`` (this only
    hashes them: Redis loads each on its first call).

    Raises KeyError for an unknown name.
    """
    chosen = SCRIPTS if names is None else names
    return Scripts({name: client.register_script(compose(name, constants)) for name in chosen})
