"""The ``seqlab`` command, run as a program: offline counts against the
engine and POST /params (and Keras's own summary), and the job commands
against a real API (gunicorn), the test Redis and a real Celery worker.

Each command runs in a subprocess: the installed console script when the
venv has one (``make install``), else ``python -m seqlab_cli``; this
checkout's code either way (``PYTHONPATH``).
"""

import contextlib
import http.server
import json
import os
import pty
import queue as queues
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port
from conftest import serve_api
from specs import NAN_JOB
from tenants import Tenants

from seqlab import analyze
from seqlab.cost import model_file_bytes
from seqlab.examples import EXAMPLES
from seqlab_cli.client import Api
from seqlab_cli.follow import follow
from seqlab_cli.render import sparkline
from seqlab_cli.sse import Event
from seqlab_cli.sse import EventParser

ROOT = Path(__file__).resolve().parent.parent
#: The console script that ``make install`` puts beside the venv's python.
SCRIPT = shutil.which("seqlab", path=str(Path(sys.executable).parent))
COMMAND = [SCRIPT] if SCRIPT else [sys.executable, "-m", "seqlab_cli"]
#: What each seed model counts (the article's and Keras's figures).
TOTALS = {
    "one_to_one": 146,
    "many_to_one": 170,
    "many_to_many": 146,
    "encoder_decoder": 2611,
    "attention": 2659,
}
#: A job that runs until it is cancelled.
LONG = {"example": "many_to_one", "fit": {"epochs": 100_000}}


def environment(**extra):
    """The environment of a seqlab subprocess: this checkout first, and none
    of the caller's SEQLAB_URL or SEQLAB_API_KEY."""
    env = {k: v for k, v in os.environ.items() if k not in ("SEQLAB_URL", "SEQLAB_API_KEY")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra}


def seqlab(*args, stdin=None, timeout=180, **env):
    """Run ``seqlab args...``; the completed process, text mode."""
    return subprocess.run(
        [*COMMAND, *map(str, args)], input=stdin, capture_output=True, text=True, cwd=ROOT,
        env=environment(**env), timeout=timeout,
    )  # fmt: skip


def write_json(path, document):
    path.write_text(json.dumps(document))
    return path


def table_rows(stdout):
    """The layer names in the first cell of the summary's rows."""
    return [line.split("│")[1].split()[0] for line in stdout.splitlines()
            if line.startswith("│ ") and line.split("│")[1].strip()
            and not line.split("│")[1].strip().startswith("(")]  # fmt: skip


# --- seqlab params: offline ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXAMPLES))
@pytest.mark.parametrize("source", ["file", "stdin"])
def test_params_counts_the_seed_models(tmp_path, name, source):
    model = EXAMPLES[name]["model"]
    if source == "file":
        rv = seqlab("params", write_json(tmp_path / "model.json", model))
    else:
        rv = seqlab("params", "-", stdin=json.dumps(model))
    assert rv.returncode == 0, rv.stderr
    assert rv.stderr == ""
    assert f"Total params: {TOTALS[name]:,} " in rv.stdout
    report = analyze(model)
    assert table_rows(rv.stdout) == [layer.name for layer in report.layers]
    for layer in report.layers:  # the formula of each layer, sublayers included
        assert f"{layer.name} ({layer.type}): {layer.formula}" in rv.stdout
    last = rv.stdout.splitlines()[-1]
    assert last.startswith("Trained model file (adam state): at most ")
    assert last.endswith(f"({model_file_bytes(report):,} B)")


def functional_report(spec):
    """Keras's to_json and summary of a graph spec, built as the worker builds it."""
    from worker.builder import build_model

    model = build_model(spec)
    lines = []
    model.summary(print_fn=lines.append)
    return {"json": model.to_json(), "summary": "".join(lines)}


@pytest.mark.keras
@pytest.mark.slow
def test_params_reads_keras_to_json_and_prints_keras_summary(tmp_path):
    from keras_oracle import keras_report

    for name in sorted(EXAMPLES):
        if "inputs" in EXAMPLES[name]["model"]:  # a Functional preset
            keras = functional_report(EXAMPLES[name]["model"])
        else:
            keras = keras_report(EXAMPLES[name]["model"])
        rv = seqlab("params", write_json(tmp_path / f"{name}.json", json.loads(keras["json"])))
        assert rv.returncode == 0, rv.stderr
        assert f"Total params: {TOTALS[name]:,} " in rv.stdout
        # Keras's own table, byte for byte, is what seqlab prints first.
        assert rv.stdout.startswith(keras["summary"].rstrip("\n") + "\n")


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_params_json_is_the_document_of_post_params(client, tmp_path, name):
    model = EXAMPLES[name]["model"]
    rv = seqlab("params", write_json(tmp_path / "m.json", model), "--json")
    assert rv.returncode == 0, rv.stderr
    assert json.loads(rv.stdout) == client.post("/params", json=model).get_json()
    rv = seqlab("params", "--example", name, "--json", "--batch-size", 8, "--optimizer", "sgd")
    expected = client.post("/params?train_batch_size=8&optimizer=sgd", json=model).get_json()
    assert json.loads(rv.stdout) == expected


def test_params_takes_a_train_request_file(tmp_path):
    rv = seqlab("params", write_json(tmp_path / "request.json", NAN_JOB))
    assert rv.returncode == 0, rv.stderr
    assert "Total params: 2 " in rv.stdout


@pytest.mark.parametrize(
    "model",
    [
        {"input_shape": [5], "layers": [{"type": "LSTM", "units": 5}]},  # Keras refuses it
        {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 0}]},  # the schema does
    ],
)
def test_a_refused_model_exits_2_with_the_detail_on_one_line(client, tmp_path, model):
    problem = client.post("/params", json=model).get_json()
    path = write_json(tmp_path / "m.json", model)
    rv = seqlab("params", path)
    assert (rv.returncode, rv.stdout) == (2, "")
    assert rv.stderr == f"seqlab: {problem['detail']}\n"
    rv = seqlab("params", path, "--json")
    assert rv.returncode == 2
    assert json.loads(rv.stdout) == problem


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["params"], "Give a SPEC file"),
        (["params", "missing.json"], "Cannot read missing.json"),
        (["params", "--example", "nope"], "Invalid value for --example"),
        (["params", "--example", "one_to_one", "--optimizer", "magic"], "--optimizer"),
        (["train"], "Give a SPEC file"),
        (["plot", "0" * 32, "-o", "loss.jpg"], ".png or .svg"),
        (["wait"], "Missing argument"),
        (["jobs", "--status", "lost"], "Invalid value for '--status'"),
        (["jobs", "--url", "localhost:8000"], "Not an http(s) URL: 'localhost:8000'"),
    ],
)
def test_bad_usage_exits_2(args, message):
    rv = seqlab(*args)
    assert rv.returncode == 2
    assert message in rv.stderr
    assert rv.stdout == ""


def test_bad_data_files_exit_2_naming_the_file(tmp_path):
    import numpy as np

    np.savez(tmp_path / "d.npz", x=np.zeros((1, 5, 1)), z=np.zeros((1, 5)))
    rv = seqlab("train", "--example", "many_to_one", "--data", tmp_path / "d.npz", "--url",
                "http://127.0.0.1:9")  # fmt: skip
    assert rv.returncode == 2
    assert rv.stderr == f"seqlab: {tmp_path / 'd.npz'} has no array y (it holds: x, z).\n"
    np.save(tmp_path / "x.npy", np.array([[np.nan]]))
    np.save(tmp_path / "y.npy", np.zeros((1, 1)))
    rv = seqlab(
        "train",
        "--example",
        "many_to_one",
        "--data",
        f"{tmp_path / 'x.npy'},{tmp_path / 'y.npy'}",
        "--url",
        "http://127.0.0.1:9",
    )
    assert rv.returncode == 2
    assert "NaN or infinity" in rv.stderr


# --- the job commands against a real API, Redis and worker -------------------------


@contextlib.contextmanager
def api(redis_url, queue, **env):
    """The API under gunicorn (gthread, as ``make up``) on the test Redis
    and queue; yields its URL once healthy."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "gunicorn.log"
        with serve_api(log, REDIS_URL=redis_url, SEQLAB_QUEUE=queue, **env) as url:
            yield url


@pytest.fixture(scope="module")
def api_url(redis_url, queue, worker):
    with api(redis_url, queue) as url:
        yield url


def has_route(spec, suffix):
    """Whether this checkout's API has a job route ending in ``suffix`` (the
    events and plot routes are built beside this command: the tests take
    whichever is there)."""
    return any(path.startswith("/jobs/") and path.endswith(suffix) for path in spec["paths"])


@pytest.mark.slow
def test_train_waits_for_a_succeeded_job(api_url, spec, tmp_path):
    rv = seqlab("-v", "train", "--example", "many_to_many", "--wait", "--json", "--url", api_url)
    assert rv.returncode == 0, rv.stderr
    job = json.loads(rv.stdout)  # one document, and nothing else on stdout
    assert job["status"] == "succeeded"
    assert job["example"] == "many_to_many"
    assert job["result"]["final_metrics"]["loss"] < 1e-3
    assert f"job {job['id']} succeeded" in rv.stderr
    assert "\x1b[" not in rv.stderr and "━" not in rv.stderr  # no bar without a terminal
    if has_route(spec, "/events"):
        assert "following /jobs/" in rv.stderr and "polling" not in rv.stderr
    else:  # the route is not there (404): the command polls
        assert f"polling /jobs/{job['id']}" in rv.stderr

    shown = seqlab("job", job["id"], "--url", api_url)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"job {job['id']} succeeded (many_to_many) in ")
    assert "(log scale)" in shown.stdout  # the loss falls by more than two decades
    predictions = json.loads(shown.stdout.split("predictions")[1].split("\n")[0])
    assert len(predictions[0]) == 5  # few: printed

    listed = seqlab("jobs", "--status", "succeeded", "--json", "--url", api_url)
    assert listed.returncode == 0, listed.stderr
    assert job["id"] in [j["id"] for j in json.loads(listed.stdout)["jobs"]]
    table = seqlab("jobs", "--url", api_url)
    assert job["id"] in table.stdout and table.stdout.startswith("ID ")

    model = seqlab("model", job["id"], "-o", tmp_path / "m.keras", "--url", api_url)
    assert model.returncode == 0, model.stderr
    assert (tmp_path / "m.keras").read_bytes()[:2] == b"PK"  # a .keras file is a zip

    plot = seqlab("plot", job["id"], "-o", tmp_path / "loss.png", "--url", api_url)
    if has_route(spec, "/plot.png"):
        assert plot.returncode == 0, plot.stderr
        assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # the route is not there yet: the 404 is a refusal
        assert plot.returncode == 2
        assert plot.stderr.startswith("seqlab: HTTP 404: ")
        assert not (tmp_path / "loss.png").exists()


@pytest.mark.slow
def test_train_sends_the_validation_arrays_of_an_npz(api_url, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = {"x": rng.random((8, 5, 1)), "y": rng.random((8, 5)),
              "x_val": rng.random((4, 5, 1)), "y_val": rng.random((4, 5))}  # fmt: skip
    np.savez(tmp_path / "d.npz", **arrays)
    rv = seqlab("train", "--example", "many_to_one", "--data", tmp_path / "d.npz",
                "--epochs", "2", "--wait", "--json", "--url", api_url)  # fmt: skip
    assert rv.returncode == 0, rv.stderr
    job = json.loads(rv.stdout)
    # Trained on the file's arrays, validated on its x_val and y_val.
    assert job["request"]["data_shapes"]["x"] == [8, 5, 1]
    assert len(job["result"]["history"]["val_loss"]) == 2
    dataset = job["request"]["data_shapes"]["dataset"]
    assert f"as dataset {dataset}" in rv.stderr
    # The job has ended: its upload is deleted.
    with urllib.request.urlopen(f"{api_url}/datasets") as answer:
        assert dataset not in [d["id"] for d in json.load(answer)["datasets"]]
    # One validation array alone is refused before anything is sent.
    np.savez(tmp_path / "half.npz", x=arrays["x"], y=arrays["y"], y_val=arrays["y_val"])
    rv = seqlab("train", "--example", "many_to_one", "--data", tmp_path / "half.npz",
                "--url", "http://127.0.0.1:9")  # fmt: skip
    assert rv.returncode == 2
    assert "has y_val but no x_val" in rv.stderr


class DroppingProxy(http.server.BaseHTTPRequestHandler):
    """Forwards requests to ``target``; the first POST /train reaches the
    API, but its answer is lost: the client gets a 502."""

    target = ""
    keys: list = []

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        request = urllib.request.Request(self.target + self.path, data=body, headers=headers,
                                         method=self.command)  # fmt: skip
        try:
            with urllib.request.urlopen(request) as answer:
                status, data, replayed = answer.status, answer.read(), answer.headers
        except urllib.error.HTTPError as error:
            status, data, replayed = error.code, error.read(), error.headers
        if self.command == "POST" and self.path == "/train":
            self.keys.append((self.headers.get("Idempotency-Key"), json.loads(data)["id"],
                              replayed.get("Idempotent-Replayed")))  # fmt: skip
            if len(self.keys) == 1:
                status, data = 502, b'{"detail": "the answer was lost"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _forward

    def log_message(self, *args):
        pass


def test_a_retried_submit_is_not_a_second_job(api_url):
    DroppingProxy.target, DroppingProxy.keys = api_url, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), DroppingProxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proxy = f"http://127.0.0.1:{server.server_address[1]}"
        rv = seqlab("train", "--example", "many_to_one", "--epochs", "1", "--url", proxy)
    finally:
        server.shutdown()
        server.server_close()
    assert rv.returncode == 0, rv.stderr
    (key, created, _), (again, replayed, header) = DroppingProxy.keys
    assert key == again and len(key) == 36  # a uuid, the same on the retry
    assert created == replayed == rv.stdout.strip() and header == "true"
    # Another invocation is another submit: a key of its own.
    other = seqlab("train", "--example", "many_to_one", "--epochs", "1", "--url", api_url)
    assert other.returncode == 0 and other.stdout.strip() != created


@pytest.mark.slow
def test_a_failed_job_exits_1(api_url, tmp_path):
    rv = seqlab("train", write_json(tmp_path / "nan.json", NAN_JOB), "--wait", "--url", api_url)
    assert rv.returncode == 1, rv.stderr
    assert rv.stdout.splitlines()[0].startswith("job ")
    assert "failed" in rv.stdout.splitlines()[0]
    assert "loss became" in rv.stdout  # the error, in the job's text
    job_id = rv.stdout.split()[1]
    again = seqlab("watch", job_id, "--json", "--url", api_url)  # an ended job: at once
    assert again.returncode == 1
    assert json.loads(again.stdout)["status"] == "failed"


@pytest.mark.slow
def test_no_wait_prints_the_id_then_wait_times_out_and_cancel(api_url):
    rv = seqlab("train", "--example", "many_to_one", "--epochs", 100_000, "--no-wait",
                "--url", api_url)  # fmt: skip
    assert rv.returncode == 0, rv.stderr
    job_id = rv.stdout.strip()
    assert len(job_id) == 32 and f"seqlab cancel {job_id}" in rv.stderr

    started = time.monotonic()
    waited = seqlab("wait", job_id, "--timeout", 1, "--url", api_url)
    assert waited.returncode == 1
    assert f"Timed out after 1 s; still not ended: {job_id}" in waited.stderr
    assert time.monotonic() - started < 30

    cancelled = seqlab("cancel", job_id, "--url", api_url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert job_id in cancelled.stdout
    waited = seqlab("wait", job_id, "--json", "--timeout", 60, "--url", api_url)
    assert waited.returncode == 1  # cancelled is not succeeded
    assert json.loads(waited.stdout)["jobs"][0]["status"] == "cancelled"
    again = seqlab("cancel", job_id, "--url", api_url)  # it has ended: 409
    assert again.returncode == 2
    assert again.stderr.startswith("seqlab: HTTP 409: ")


def test_a_server_that_is_not_there_exits_3():
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["jobs"], ["job", "0" * 32], ["train", "--example", "many_to_one"]):
        rv = seqlab(*args, "--url", url)
        assert rv.returncode == 3, rv.stderr
        assert rv.stderr.startswith(f"seqlab: Cannot reach the seqlab API at {url}: ")
        assert rv.stdout == ""


def test_a_5xx_exits_3(tmp_path):
    # Redis not there: the API answers the job routes 503.
    with api(f"redis://127.0.0.1:{free_port()}/0", "none") as url:
        rv = seqlab("jobs", "--url", url, SEQLAB_URL="http://127.0.0.1:9")
    assert rv.returncode == 3
    assert rv.stderr.startswith("seqlab: HTTP 503: ")


def test_url_from_the_environment_and_an_unknown_job_exits_2(api_url):
    rv = seqlab("job", "f" * 32, SEQLAB_URL=api_url)
    assert rv.returncode == 2
    assert (
        rv.stderr
        == f"seqlab: HTTP 404: There is no job '{'f' * 32}' (jobs are kept for a limited time).\n"
    )  # noqa: E501


def test_the_api_key_is_sent_as_a_bearer_token(redis_url, queue, worker):
    tenants = Tenants("alice")
    with api(redis_url, queue, SEQLAB_API_KEYS=tenants.config) as url:
        refused = seqlab("jobs", "--url", url)
        wrong = seqlab("jobs", "--url", url, SEQLAB_API_KEY="not-a-key")
        allowed = seqlab("jobs", "--json", "--url", url, SEQLAB_API_KEY=tenants.secrets["alice"])
    assert refused.returncode == 2
    assert refused.stderr.startswith("seqlab: HTTP 401: This route needs an API key")
    assert (wrong.returncode, wrong.stderr) == (2, "seqlab: HTTP 401: The API key is not valid.\n")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout) == {"jobs": []}  # alice's own: none yet


def _lines(stream, into):
    for line in iter(stream.readline, ""):
        into.put(line)


#: Runs a command with Ctrl-C's default action, as a terminal's foreground
#: process has it: a suite started in the background of a shell without job
#: control inherits SIGINT ignored, and Python then never raises
#: KeyboardInterrupt (the command watched the job to its end). Set in a
#: program that then execs the command (which keeps it), not in a
#: ``preexec_fn``: that runs this process's at-fork hooks, and JAX's warns
#: (an error here) once an earlier test has used JAX in the suite's process.
DEFAULT_SIGINT = [
    sys.executable, "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]  # fmt: skip


@pytest.mark.slow
def test_ctrl_c_stops_watching_and_the_job_keeps_running(api_url, tmp_path):
    command = [*DEFAULT_SIGINT, *COMMAND, "train", write_json(tmp_path / "long.json", LONG),
               "--wait", "--url", api_url]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=ROOT, env=environment()) as process:  # fmt: skip
        try:
            lines: queues.Queue = queues.Queue()
            reader = threading.Thread(target=_lines, args=(process.stderr, lines))
            reader.start()
            seen = []
            while not any(line.endswith(" running\n") for line in seen):
                seen.append(lines.get(timeout=120))
            job_id = seen[-1].split()[1]
            process.send_signal(signal.SIGINT)
            status = process.wait(timeout=30)
            # On a failure, show what the command printed: it tells whether
            # the job ended before the signal or the signal was lost.
            reader.join(timeout=10)
            assert status == 130, "".join(seen + list(lines.queue))
            seen += list(lines.queue)
            assert process.stdout.read() == ""
        finally:
            process.kill()
    stderr = "".join(seen)
    assert f"Stopped watching; job {job_id} keeps running. " in stderr
    assert f"Cancel it with: seqlab cancel {job_id}" in stderr

    time.sleep(1.0)
    job = json.loads(seqlab("job", job_id, "--json", "--url", api_url).stdout)
    assert job["status"] == "running" and "cancel_requested" not in job
    assert seqlab("cancel", job_id, "--url", api_url).returncode == 0
    assert seqlab("wait", job_id, "--timeout", 60, "--url", api_url).returncode == 1


@pytest.mark.slow
def test_a_terminal_gets_a_live_progress_bar(api_url):
    leader, follower = pty.openpty()
    command = [*COMMAND, "train", "--example", "many_to_many", "--url", api_url]  # waits: a tty
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
        cwd=ROOT,
        env=environment(TERM="xterm-256color", COLUMNS="120"),
    ) as process:
        os.close(follower)
        shown = b""
        try:
            while select.select([leader], [], [], 120)[0]:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the program has closed its end
                    break
                if not chunk:
                    break
                shown += chunk
            assert process.wait(timeout=60) == 0
            stdout = process.stdout.read()
        finally:
            os.close(leader)
            process.kill()
    terminal = shown.decode(errors="replace")
    assert "━" in terminal  # rich's bar
    for part in ("epoch 1000/1000", "loss ", "ETA "):
        assert part in terminal
    assert stdout.startswith("job ")


def test_the_job_commands_start_without_the_api_or_numpy():
    # Only `params` imports marshmallow (modelspec's request schemas), only
    # .npy/.npz data NumPy, only a terminal rich: the rest start at once.
    code = "import sys, seqlab_cli.main; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env=environment(), check=True).stdout  # fmt: skip
    loaded = {name.split(".")[0] for name in out.split()}
    assert not loaded & {"flask", "marshmallow", "werkzeug", "numpy", "rich", "service", "worker"}


@pytest.mark.skipif(SCRIPT is None, reason="the seqlab console script is not installed in this "
                    "venv: `make install` installs it")  # fmt: skip
def test_the_installed_console_script():
    rv = subprocess.run([SCRIPT, "params", "--example", "many_to_one"], capture_output=True,
                        text=True, cwd=ROOT, env=environment(), timeout=60)  # fmt: skip
    assert rv.returncode == 0, rv.stderr
    assert "Total params: 170 " in rv.stdout


# --- the events client, on a recorded stream ----------------------------------------

JOB = "0123456789abcdef0123456789abcdef"
#: A stream as the contract describes it, with what a proxy may add.
RECORDED = [
    ("1-0", "status", {"status": "queued", "at": "2025-01-01T00:00:00+00:00"}),
    ("2-0", "status", {"status": "running", "at": "2025-01-01T00:00:01+00:00", "attempt": 1}),
    ("3-0", "progress", {"epoch": 1, "epochs": 3, "step": 1, "steps_per_epoch": 1, "loss": 0.5,
                         "metrics": {"loss": 0.5}, "eta_seconds": 0.2}),
    ("4-0", "progress", {"epoch": 2, "epochs": 3, "step": 1, "steps_per_epoch": 1, "loss": 0.25,
                         "metrics": {"loss": 0.25}, "eta_seconds": 0.1}),
    ("5-0", "progress", {"epoch": 3, "epochs": 3, "step": 1, "steps_per_epoch": 1, "loss": 0.125,
                         "metrics": {"loss": 0.125}, "eta_seconds": 0.0}),
    ("6-0", "status", {"status": "succeeded", "at": "2025-01-01T00:00:02+00:00",
                       "final_metrics": {"loss": 0.125}}),
]  # fmt: skip


def sse_text(events):
    return "".join(f"id: {i}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"
                   for i, kind, data in events)  # fmt: skip


def test_the_event_parser_follows_the_sse_rules():
    text = "retry: 2000\n\n: keep-alive\n" + sse_text(RECORDED[:2]).replace("\n", "\r\n")
    text += "data: first\ndata:second\nevent: note\n\nid: 7-0\n: only a comment\n\nunfinished"
    parser = EventParser()
    events = list(parser.parse(text.splitlines(keepends=True)))
    assert events == [
        Event("status", json.dumps(RECORDED[0][2]), "1-0"),
        Event("status", json.dumps(RECORDED[1][2]), "2-0"),
        Event("note", "first\nsecond", "2-0"),  # the last id carries over
    ]
    assert (parser.retry_ms, parser.last_id) == (2000, "7-0")


class Recorder:
    """A Listener that keeps everything it is told."""

    def __init__(self):
        self.events, self.notes = [], []

    def status(self, event):
        self.events.append(("status", event))

    def progress(self, progress):
        self.events.append(("progress", progress))

    def note(self, message):
        self.notes.append(message)


@contextlib.contextmanager
def recorded_api(drop_after=None, events_route=True):
    """A server that plays RECORDED as GET /jobs/<JOB>/events, resuming after
    Last-Event-ID and closing the first connection after ``drop_after``
    events; without ``events_route`` that route is a 404 and GET /jobs/<JOB>
    answers the finished job. Yields (url, the Last-Event-ID of each request)."""
    asked = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == f"/jobs/{JOB}/events" and events_route:
                last = self.headers.get("Last-Event-ID")
                asked.append(last)
                ids = [i for i, _, _ in RECORDED]
                start = ids.index(last) + 1 if last else 0
                end = len(RECORDED) if len(asked) > 1 or drop_after is None else drop_after
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(("retry: 10\n\n: keep-alive\n\n"
                                  + sse_text(RECORDED[start:end])).encode())  # fmt: skip
            elif self.path == f"/jobs/{JOB}":
                body = json.dumps({"id": JOB, "status": "succeeded", "progress": RECORDED[4][2],
                                   "attempt": 1}).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                body = json.dumps(
                    {
                        "title": "Not Found",
                        "status": 404,
                        "detail": "The requested URL was not found.",
                    }
                ).encode()
                self.send_response(404)
                self.send_header("Content-Type", "application/problem+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


def test_the_follower_resumes_a_dropped_stream_without_gaps_or_repeats():
    listener = Recorder()
    with recorded_api(drop_after=3) as (url, asked):
        follow(Api(url), JOB, listener, sleep=lambda _: None)
    assert asked == [None, "3-0"]  # the reconnect resumed after the last event seen
    assert listener.events == [(kind, data) for _, kind, data in RECORDED]


def test_the_follower_polls_where_there_is_no_event_stream():
    listener = Recorder()
    with recorded_api(events_route=False) as (url, asked):
        follow(Api(url), JOB, listener, sleep=lambda _: None)
    assert listener.events == [("progress", RECORDED[4][2]),
                               ("status", {"status": "succeeded", "attempt": 1})]  # fmt: skip
    assert any(note.startswith("no event stream (HTTP 404") for note in listener.notes)


def test_sparkline_draws_a_falling_loss_on_a_log_scale():
    loss = [0.2 * 0.98**i for i in range(1000)]  # 0.2 down to 3e-10
    line, log = sparkline(loss)
    assert log and len(line) == 40
    assert line[0] == "█" and line[-1] == "▁"
    assert list(line) == sorted(line, reverse=True)
    assert sparkline([1.0, 2.0, 3.0]) == ("▁▅█", False)
    assert sparkline([0.5] * 3) == ("▁▁▁", False)
    assert sparkline([]) == ("", False)


def test_job_text_counts_predictions_by_output_name():
    """A Functional model's predictions (an object by output name) are few or
    many by their numbers, as a list's are, and rounded the same way."""
    from seqlab_cli.render import job_text

    job = {"id": "j" * 32, "status": "succeeded",
           "result": {"predictions": {"reg": [[0.123456]], "cls": [[0.5, 0.25]]}}}  # fmt: skip
    assert 'predictions  {"reg": [[0.1235]], "cls": [[0.5, 0.25]]}' in job_text(job)
    job["result"]["predictions"] = {"reg": [[0.5]] * 5000, "cls": [[0.5]] * 5000}
    assert "10000 numbers" in job_text(job)
