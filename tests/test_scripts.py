"""seqlab's Lua scripts (jobs/lua/, jobs/scripts.py): every file is used,
every script's fragments exist, each file says what it takes and returns.
No Redis server needed: registering a script only hashes it."""

import re
import tomllib
from pathlib import Path

import pytest
import redis

from jobs import scripts
from jobs.store import EVENTS_MAXLEN

ROOT = Path(__file__).resolve().parent.parent
FILES = scripts.lua_files()
FRAGMENTS = sorted(set(FILES) - set(scripts.SCRIPTS))
CONSTANTS = {"EVENTS_MAXLEN": EVENTS_MAXLEN}


def header(name):
    """The leading comment lines of a file, without their ``--``."""
    lines = []
    for line in scripts.source(name).splitlines():
        if not line.startswith("--"):
            break
        lines.append(line.removeprefix("--").strip())
    return " ".join(lines)


def body(name):
    """The code of a file: its lines that are not comments."""
    lines = scripts.source(name).splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--"))


def defined(name):
    return set(re.findall(r"local function (\w+)", scripts.source(name)))


def called(name):
    return set(re.findall(r"\b(\w+)\(", body(name)))


def test_there_are_scripts_and_fragments():
    assert len(scripts.SCRIPTS) >= 10
    assert FRAGMENTS == ["emit", "holds", "set_for_record"]


def test_every_file_is_part_of_some_script():
    used = {part for name in scripts.SCRIPTS for part in scripts.parts(name)}
    assert set(FILES) == used


@pytest.mark.parametrize("name", sorted(scripts.SCRIPTS))
def test_every_part_of_a_script_is_a_file(name):
    parts = scripts.parts(name)
    assert parts[-1] == name
    assert set(parts) <= set(FILES)
    assert set(parts[:-1]) <= set(FRAGMENTS), "a script is prepended with fragments only"


@pytest.mark.parametrize("name", FILES)
def test_each_file_begins_with_what_it_takes_and_returns(name):
    assert scripts.source(name).startswith("-- ")
    text = header(name)
    assert text.startswith(f"{name}: ")
    for word in ("KEYS", "ARGV", "Returns"):
        assert word in text, f"{name}.lua: its first comment names no {word}"


@pytest.mark.parametrize("name", FILES)
def test_the_header_names_every_key_and_argument_used(name):
    for array in ("KEYS", "ARGV"):
        used = set(re.findall(rf"{array}\[(\d+)\]", body(name)))
        named = set(re.findall(rf"{array}\[(\d+)", header(name)))
        assert used <= named, f"{name}.lua: {array} {sorted(used - named)} not in its comment"


@pytest.mark.parametrize("name", sorted(scripts.SCRIPTS))
def test_a_script_has_the_fragments_it_calls_and_no_others(name):
    *fragments, own = scripts.parts(name)
    for i, fragment in enumerate(fragments):
        later = [*fragments[i + 1 :], own]
        assert defined(fragment) & set().union(*map(called, later)), f"{fragment} unused"
    for i, part in enumerate(scripts.parts(name)):
        for fragment in FRAGMENTS:
            if fragment != part and called(part) & defined(fragment):
                assert fragment in fragments[:i], f"{part}.lua calls {fragment}.lua's functions"
    if fragments:
        assert f"Prepended: {', '.join(f + '.lua' for f in fragments)}." in header(name)


@pytest.mark.parametrize("name", sorted(scripts.SCRIPTS))
def test_a_script_is_its_files_with_the_constants_filled_in(name):
    text = scripts.compose(name, CONSTANTS)
    assert "{{" not in text
    for part in scripts.parts(name):
        assert scripts.source(part).replace("{{EVENTS_MAXLEN}}", str(EVENTS_MAXLEN)) in text
    if "emit" in scripts.parts(name):
        assert f"'MAXLEN', '~', '{EVENTS_MAXLEN}'" in text
        with pytest.raises(ValueError, match="EVENTS_MAXLEN"):
            scripts.compose(name)


#: The modules that call the scripts.
USERS = ("jobs/store.py", "jobs/datasets.py", "service/jobs/idempotency.py")


def test_the_store_uses_every_script():
    source = "".join((ROOT / path).read_text(encoding="utf-8") for path in USERS)
    for name in scripts.SCRIPTS:
        assert f"self.scripts.{name}(" in source


def test_no_module_keeps_lua_of_its_own():
    # One way of loading Lua: a script is a file here, never a string in code.
    for path in ROOT.glob("*/**/*.py"):
        # The project's own code: not tests, nor hidden folders (.venv, and
        # .seqlab, where a plain `make test` keeps the compose engine's images).
        inside = path.relative_to(ROOT).parts
        if "tests" not in inside and not any(part.startswith(".") for part in inside):
            source = path.read_text(encoding="utf-8")
            assert "register_script(" not in source or path.name == "scripts.py", path


def test_registered_scripts_are_had_by_name():
    client = redis.Redis()  # never connected: register_script only hashes
    registered = scripts.register(client, CONSTANTS)
    assert sorted(registered) == sorted(scripts.SCRIPTS)
    assert registered.claim is registered["claim"]
    assert registered.claim.script == scripts.compose("claim", CONSTANTS)
    with pytest.raises(AttributeError):
        _ = registered.no_such_script
    with pytest.raises(KeyError):
        _ = registered["no_such_script"]
    some = scripts.register(client, names=("idempotency_claim", "idempotency_swap"))
    assert sorted(some) == ["idempotency_claim", "idempotency_swap"]
    assert some.idempotency_swap.script == scripts.compose("idempotency_swap")
    with pytest.raises(KeyError):
        scripts.register(client, names=("no_such_script",))


def test_a_built_package_ships_the_files():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["jobs"]
    shipped = {p.stem for pattern in patterns for p in (ROOT / "jobs").glob(pattern)}
    assert shipped == set(FILES)


# --- every key a script touches is one of its KEYS ---------------------------
#
# Redis Cluster's rule, and what lets Redis see a script's keys: a script
# names a key only as KEYS[...], never builds one ('..', or a value read
# from Redis). The fragments' functions take keys as parameters; their
# callers pass KEYS[...].

#: The argument positions (after the command's name) that are keys, for every
#: command the scripts call; None: all of them. A command missing here fails
#: the check until its keys are written down.
KEY_ARGUMENTS = {
    "DEL": None, "EXISTS": None, "TIME": (),
    **dict.fromkeys(
        ("EXPIRE", "GET", "HDEL", "HEXISTS", "HGET", "HGETALL", "HSET", "PEXPIRE", "PTTL", "RPUSH",
         "SET", "XADD", "ZADD", "ZCARD", "ZRANGE", "ZREM", "ZREMRANGEBYSCORE"),
        (0,),
    ),
}  # fmt: skip
A_KEY = re.compile(r"KEYS\[\w+\]")


def arguments(text, start):
    """The arguments, as written, of the call whose '(' is at ``start``."""
    args, depth, quote, begun = [], 0, None, start + 1
    for i in range(start, len(text)):
        c = text[i]
        if quote:
            quote = None if c == quote and text[i - 1] != "\\" else quote
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return [*args, text[begun:i].strip()]
        elif c == "," and depth == 1:
            args.append(text[begun:i].strip())
            begun = i + 1
    raise AssertionError(f"unbalanced call at {start}")


def calls_of(function, text):
    """The arguments of every call of ``function`` (not its definition)."""
    pattern = rf"(?<![\w.])(?<!function ){re.escape(function)}\("
    return [arguments(text, m.end() - 1) for m in re.finditer(pattern, text)]


def redis_keys(text):
    """Every key argument of every ``redis.call`` in ``text``, as written."""
    keys = []
    for command, *rest in calls_of("redis.call", text):
        name = command.strip("'\"")
        assert name in KEY_ARGUMENTS, f"where does {name} take its keys? (KEY_ARGUMENTS)"
        positions = KEY_ARGUMENTS[name]
        keys += rest if positions is None else [rest[p] for p in positions]
    return keys


def parameters(name):
    """{function: its parameters}, for the functions file ``name`` defines."""
    found = re.findall(r"local function (\w+)\(([^)]*)\)", body(name))
    return {function: [p.strip() for p in listed.split(",")] for function, listed in found}


def fragment_functions():
    """{function: the positions of its parameters that are keys}, for every
    function the fragments define: those used as keys, by Redis or by
    another fragment function."""
    params = {f: ps for fragment in FRAGMENTS for f, ps in parameters(fragment).items()}
    text = "\n".join(body(fragment) for fragment in FRAGMENTS)
    used = set(redis_keys(text))
    while True:  # a parameter passed on where a key goes is a key too
        positions = {f: [i for i, p in enumerate(ps) if p in used] for f, ps in params.items()}
        more = {args[i] for f, ps in positions.items() for args in calls_of(f, text) for i in ps}
        if more <= used:
            return positions
        used |= more


@pytest.mark.parametrize("name", FILES)
def test_every_key_a_file_touches_is_one_of_its_keys(name):
    text = body(name)
    functions = fragment_functions()
    keys = redis_keys(text)
    for function, positions in functions.items():
        keys += [args[i] for args in calls_of(function, text) for i in positions]
    # Inside a fragment, its functions' key parameters stand for KEYS too.
    own = {ps[i] for f, ps in parameters(name).items() for i in functions[f]}
    for key in keys:
        assert A_KEY.fullmatch(key) or key in own, f"{name}.lua builds a key: {key}"


def test_the_key_check_sees_a_built_key():
    built = "redis.call('DEL', KEYS[3] .. ':' .. n)\nredis.call('ZREM', KEYS[k], ARGV[1])"
    assert redis_keys(built) == ["KEYS[3] .. ':' .. n", "KEYS[k]"]
    assert not A_KEY.fullmatch(redis_keys(built)[0])
    assert fragment_functions() == {
        "emit": [0, 1], "emit_status": [0, 1], "set_fields": [0, 1], "holds": [0],
        "set_for_record": [0, 1],
    }  # fmt: skip
