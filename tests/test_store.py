"""The job store (worker/store.py) on a real Redis: keys, lifetimes and
the state changes that must be atomic."""

import os
from pathlib import Path

import redis


def parent_pid(pid):
    """The parent of a process, from /proc (the tests run on Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def test_tests_use_a_redis_of_their_own_unless_one_is_named(redis_server):
    # The fixture flushes its database: it may do so only to a Redis it
    # started, or to the one that SEQLAB_TEST_REDIS_URL names on purpose.
    named = os.environ.get("SEQLAB_TEST_REDIS_URL")
    if named:
        assert redis_server == named
        return
    info = redis.Redis.from_url(redis_server).info("server")
    assert parent_pid(info["process_id"]) == os.getpid()
