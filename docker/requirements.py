"""Print pyproject.toml's dependencies and one extra's, one a line, for ``pip -r``.

Usage: ``python3 requirements.py PYPROJECT EXTRA [--without NAME]...``

The images install the project's dependencies, not the project itself (its
code is copied to /app and found on PYTHONPATH), so that a change of code
reuses the cached layer of the dependencies. Run with the base image's
``python3`` inside a build (3.11+, for tomllib: nothing else is needed), and by
``devtools.compose`` to fill a wheelhouse with the same list. ``--without``
leaves a package out: the CPU worker image takes the ``worker`` extra without
``tensorflow`` (it trains with JAX).
"""

import re
import sys
import tomllib


def requirement_name(requirement: str) -> str:
    """The normalised project name of a requirement line (PEP 503)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    if name is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def requirements(pyproject: dict, extra: str, without: set[str]) -> list[str]:
    """The base dependencies and ``extra``'s, first occurrence kept, less ``without``."""
    project = pyproject["project"]
    listed = project["dependencies"] + project["optional-dependencies"][extra]
    chosen: dict[str, str] = {}
    for requirement in listed:
        name = requirement_name(requirement)
        if name not in without and name not in chosen:
            chosen[name] = requirement
    return list(chosen.values())


def main(argv: list[str]) -> int:
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, extra, rest = argv[0], argv[1], argv[2:]
    without = {requirement_name(name) for flag, name in zip(rest[::2], rest[1::2], strict=True)
               if flag == "--without"}  # fmt: skip
    with open(path, "rb") as file:
        print("\n".join(requirements(tomllib.load(file), extra, without)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
