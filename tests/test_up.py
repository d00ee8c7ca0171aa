"""``make up`` as a user runs it: the stack comes up, trains a seed example,
and Ctrl-C leaves no process behind; a part that cannot start (dies before
it is ready) takes the rest down, one that dies once ready is started again."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def proc_stat(pid):
    """(state, parent pid, start time) of a process, from /proc; None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), fields[19]


def descendants(root):
    """{pid: start time} of ``root`` and every process below it."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(entry.name)) is not None:
            parents[int(entry.name)] = stat
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in parents and pid not in found:
            found[pid] = parents[pid][2]
            todo.extend(child for child, stat in parents.items() if stat[1] == pid)
    return found


def alive(pid, started):
    stat = proc_stat(pid)
    return stat is not None and stat[2] == started and stat[0] != "Z"


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


class Launch:
    """A command started in a process group of its own (as a shell runs a
    foreground job), its output in a log, and every process it ever had."""

    def __init__(self, argv, env, log):
        self.log = log
        # A user's shell: no make or pytest state leaks into the command.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env={**base, "PYTHONUNBUFFERED": "1", **env},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.seen = {}  # pid: (start time, command line)

    def output(self):
        return self.log.read_text(errors="replace")

    def tail(self):
        return self.output()[-4000:]

    def look(self):
        """Note the processes running under the command now."""
        for pid, started in descendants(self.process.pid).items():
            self.seen.setdefault(pid, (started, cmdline(pid)))

    def programs(self):
        """The command lines of every process seen, in one string."""
        return " ".join(command for _, command in self.seen.values())

    def wait_for(self, predicate, what, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            self.look()
            assert self.process.poll() is None, f"exited before {what}:\n{self.tail()}"
            assert time.monotonic() < deadline, f"no {what} in {timeout} s:\n{self.tail()}"
            time.sleep(0.2)
        self.look()

    def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            self.look()
            assert time.monotonic() < deadline, f"still running:\n{self.tail()}"
            time.sleep(0.1)
        return self.process.returncode

    def left_behind(self, timeout=10):
        """The processes seen under the command that are still alive."""
        deadline = time.monotonic() + timeout
        while True:
            left = {pid: command for pid, (t, command) in self.seen.items() if alive(pid, t)}
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)

    def kill_everything(self):
        """Cleanup after a failed test: no stray server outlives it."""
        self.look()
        for pid, (started, _) in self.seen.items():
            if alive(pid, started):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def launch(tmp_path):
    launches = []

    def start(argv, **env):
        launches.append(Launch(argv, env, tmp_path / f"out{len(launches)}.log"))
        return launches[-1]

    yield start
    for launched in launches:
        launched.kill_everything()


def get_json(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def answers(url):
    try:
        return get_json(url)[0] == 200
    except OSError:
        return False


def make_up():
    """``make up`` with the environment running these tests: its venv is the
    Makefile's VENV, already installed (-o: do not reinstall it)."""
    venv = sys.prefix
    return ["make", "--no-print-directory", "-o", f"{venv}/.installed", "up", f"VENV={venv}"]


def test_make_up_starts_redis_trains_and_stops_clean_on_ctrl_c(launch, tmp_path):
    api_port, redis_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    # Nothing listens at REDIS_URL: make up has to start a redis-server there.
    up = launch(
        make_up(),
        API_PORT=str(api_port),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        SEQLAB_REDIS_DIR=str(tmp_path / "redis"),  # not the checkout's .seqlab/redis
    )
    up.wait_for(lambda: answers(f"{api}/healthz"), "API on /healthz", timeout=90)
    assert "starting redis-server" in up.output()

    status, job = get_json(f"{api}/train", {"example": "many_to_one"})
    assert status == 202 and job["status"] == "queued"
    # The first job waits for the worker to load Keras.
    up.wait_for(
        lambda: get_json(f"{api}/jobs/{job['id']}")[1]["status"] in ("succeeded", "failed"),
        "finished job",
        timeout=240,
    )
    done = get_json(f"{api}/jobs/{job['id']}")[1]
    assert done["status"] == "succeeded", done
    assert done["result"]["keras_params"] == 170
    for program in ("redis-server", "gunicorn", "celery"):
        assert program in up.programs()

    os.killpg(up.process.pid, signal.SIGINT)  # Ctrl-C: make and the launcher get it
    up.wait_exit(timeout=60)

    assert up.left_behind() == {}
    assert not port_open(api_port) and not port_open(redis_port)
    assert "Warm shutdown" in up.output()


def launch_up(launch, redis_url, api_port: str, **env):
    """``make up``'s program on the Redis at ``redis_url``, serving the API
    on ``api_port``, on a queue of its own, without the warm-up job."""
    return launch(
        [sys.executable, "-m", "devtools.up"],
        API_PORT=api_port,
        REDIS_URL=redis_url,
        SEQLAB_QUEUE=f"test-up-{uuid.uuid4().hex[:8]}",
        SEQLAB_WARM_UP="0",
        **env,
    )


def test_up_uses_a_running_redis_and_stops_on_sigterm(launch, redis_server):
    api_port = free_port()
    up = launch_up(launch, redis_server, str(api_port))
    up.wait_for(lambda: " ready." in up.output(), "worker ready", timeout=90)
    up.wait_for(lambda: answers(f"http://127.0.0.1:{api_port}/healthz"), "API", timeout=30)
    assert f"using the Redis at {redis_server}" in up.output()
    assert "redis-server" not in up.programs()

    up.process.terminate()  # SIGTERM to the launcher alone, as a service manager would
    assert up.wait_exit(timeout=60) == 0
    assert up.left_behind() == {}
    assert not port_open(api_port)


def test_up_stops_everything_and_fails_when_a_part_dies(launch, redis_server):
    with socket.socket() as taken:
        # The API's port is taken: gunicorn gives up, and so must the rest.
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        up = launch_up(launch, redis_server, str(taken.getsockname()[1]))
        assert up.wait_exit(timeout=90) == 1
    assert "api exited with status 1 before it was ever ready: it cannot start" in up.output()
    assert "celery" in up.programs()
    assert up.left_behind() == {}


def test_up_stops_everything_when_the_worker_cannot_start(launch, redis_server):
    api_port = free_port()
    up = launch_up(
        launch,
        redis_server,
        str(api_port),
        SEQLAB_WORKER_CONCURRENCY="many",  # a bad setting only the worker reads
    )
    assert up.wait_exit(timeout=90) == 1
    output = up.output()
    assert "worker exited with status 2 before it was ever ready: it cannot start" in output
    assert "stopping the rest" in output and "starting it again" not in output
    assert "gunicorn" in up.programs()
    assert up.left_behind() == {}
    assert not port_open(api_port)


def test_up_keeps_its_redis_data_in_the_checkout_ignored_by_git(monkeypatch):
    from devtools.up import redis_directory

    monkeypatch.delenv("SEQLAB_REDIS_DIR", raising=False)
    directory = redis_directory("redis://localhost:6399/0")
    assert directory == ROOT / ".seqlab" / "redis" / "6399"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(directory / "appendonlydir")],
                             cwd=ROOT, check=False)  # fmt: skip
    assert ignored.returncode == 0
    monkeypatch.setenv("SEQLAB_REDIS_DIR", "/somewhere/else")
    assert redis_directory("redis://localhost:6399/0") == Path("/somewhere/else")


def test_jobs_outlive_a_restart_of_up(launch, tmp_path):
    api_port, redis_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    env = {
        "API_PORT": str(api_port),
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "SEQLAB_REDIS_DIR": str(tmp_path / "redis"),
        "SEQLAB_QUEUE": f"test-up-{uuid.uuid4().hex[:8]}",
        "SEQLAB_WARM_UP": "0",
    }
    first = launch([sys.executable, "-m", "devtools.up"], **env)
    first.wait_for(lambda: answers(f"{api}/readyz"), "API on /readyz", timeout=90)
    status, job = get_json(f"{api}/train", {"example": "one_to_one"})
    assert status == 202
    first.wait_for(
        lambda: get_json(f"{api}/jobs/{job['id']}")[1]["status"] in ("succeeded", "failed"),
        "finished job",
        timeout=240,
    )
    done = get_json(f"{api}/jobs/{job['id']}")[1]
    assert done["status"] == "succeeded", done
    first.process.terminate()
    assert first.wait_exit(timeout=60) == 0
    assert first.left_behind() == {}
    assert (tmp_path / "redis" / "appendonlydir").is_dir()

    second = launch([sys.executable, "-m", "devtools.up"], **env)
    second.wait_for(lambda: answers(f"{api}/readyz"), "API on /readyz", timeout=90)
    assert "starting redis-server" in second.output()  # a new server, the same data
    assert get_json(f"{api}/jobs/{job['id']}")[1] == done
    second.process.terminate()
    assert second.wait_exit(timeout=60) == 0


def test_up_starts_a_part_that_died_again_and_keeps_the_rest(launch, redis_server):
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    up = launch_up(launch, redis_server, str(api_port))
    # Ready: its first heartbeat is out. A death from now on is a crash, not
    # a failed start, however soon it comes.
    up.wait_for(lambda: "up     | worker is ready (pid " in up.output(), "worker ready", timeout=90)
    up.wait_for(lambda: "up     | api is ready (pid " in up.output(), "API ready", timeout=30)
    assert answers(f"{api}/healthz")
    (worker,) = [
        pid
        for pid, (_, command) in up.seen.items()
        if "celery" in command and (proc_stat(pid) or (0, 0))[1] == up.process.pid
    ]
    assert f"worker is ready (pid {worker})" in up.output()
    os.kill(worker, signal.SIGKILL)
    up.wait_for(lambda: "worker exited with status -9; starting it again in 1 s" in up.output(),
                "the restart's log line", timeout=10)  # fmt: skip
    assert answers(f"{api}/healthz")  # the API stayed up
    up.wait_for(lambda: up.output().count("worker is ready (pid ") == 2, "worker ready again",
                timeout=90)  # fmt: skip
    assert "worker started again (pid " in up.output()
    assert f"worker is ready (pid {worker})" in up.output().split("worker started again")[0]
    assert up.process.poll() is None and answers(f"{api}/healthz")

    up.process.terminate()
    assert up.wait_exit(timeout=60) == 0
    assert up.left_behind() == {}


# --- supervise(): readiness, on real programs --------------------------------


def supervised(child, until, timeout=20):
    """Run supervise() on ``child`` as make up does, every 0.05 s, until
    ``until(child)`` or it answers False; its last answer."""
    from devtools.up import supervise

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not supervise(child, time.monotonic()):
                return False
            if until(child):
                return True
            time.sleep(0.05)
        raise AssertionError("supervise() went on past the timeout")
    finally:
        child.terminate()
        child.kill_group()
        child.output.join(timeout=5)  # the copier closes the pipe


def program(seconds):
    return [sys.executable, "-c", f"import time; time.sleep({seconds})"]


def test_a_part_that_dies_before_it_is_ready_cannot_start(capsys):
    from devtools.up import Child

    child = Child("part", program(0.2), dict(os.environ), lambda _: False)
    assert supervised(child, lambda _: False) is False
    assert "part exited with status 0 before it was ever ready" in capsys.readouterr().out


def test_a_part_that_is_never_ready_cannot_start(capsys, monkeypatch):
    from devtools import up

    monkeypatch.setattr(up, "READY_TIMEOUT", 0.5)
    child = up.Child("part", program(60), dict(os.environ), lambda _: False)
    assert supervised(child, lambda _: False) is False
    assert child.process.poll() is not None  # stopped by supervised(): still running till then
    assert "part is not ready 0.5 s after its start: it cannot start" in capsys.readouterr().out


def test_a_part_that_was_ready_is_started_again_when_it_dies(capsys):
    from devtools.up import Child

    # Ready at once, each run; each run lives 0.3 s.
    child = Child("part", program(0.3), dict(os.environ), lambda c: c.running())
    first = child.process.pid
    assert supervised(child, lambda c: c.process.pid != first and c.ready) is True
    out = capsys.readouterr().out
    assert f"part is ready (pid {first})" in out
    assert "part exited with status 0; starting it again in 1 s" in out
    assert f"part started again (pid {child.process.pid})" in out
    assert f"part is ready (pid {child.process.pid})" in out
