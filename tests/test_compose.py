"""docker-compose.yml, as a real compose implementation resolves it, and the
Dockerfiles it builds. These run without Docker; tests/test_compose_stack.py
builds and runs the stack where an engine can be had (the GPU worker only
here: it needs TensorFlow's image and an NVIDIA runtime)."""

import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from devtools import compose

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"


def env_example():
    """{name: value} of the settings .env.example documents."""
    pairs = re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE.read_text(), re.MULTILINE)
    return dict(pairs)


def compose_command():
    """`docker compose` (v2) where it works, else `docker-compose` (v1)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail(
        "no compose implementation to check docker-compose.yml with: install one "
        "(Debian: apt-get install docker-compose; .ci/run does)"
    )


def resolve(tmp_path, env_file=None, **env):
    """The compose file as compose resolves it, with only ``env`` set (and
    ``env_file`` as its .env): no setting of the caller's leaks in."""
    if env_file is None:
        env_file = tmp_path / "empty.env"
        env_file.write_text("")
    settings = env_example()
    clean = {k: v for k, v in os.environ.items() if k not in settings}
    rv = subprocess.run(
        [*compose_command(), "--project-directory", str(ROOT),
         "--file", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file), "config"],
        cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True,
    )  # fmt: skip
    assert rv.returncode == 0, rv.stderr
    return yaml.safe_load(rv.stdout)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return resolve(tmp_path_factory.mktemp("compose"))


def seconds(duration):
    """Seconds in a compose duration: `2m`, `1m30s`, `2m0s`, `10s`, `500ms`."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"([\d.]+)(h|ms|us|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def argv(command):
    return shlex.split(command) if isinstance(command, str) else list(command)


def volume_mounts(service):
    """(source, target) of a service's volumes, short or long syntax."""
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            yield source, target
        else:
            yield volume.get("source"), volume["target"]


def test_default_services_and_profiles(config):
    services = config["services"]
    default = {name for name, s in services.items() if not s.get("profiles")}
    assert default == {"redis", "api", "worker"}
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert services["flower"]["profiles"] == ["monitoring"]


def test_redis_persists_to_a_named_volume_and_never_evicts(config):
    redis = config["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = " ".join(argv(redis["command"]))
    assert "--appendonly yes" in command
    assert "--appendfsync everysec" in command
    assert "--maxmemory-policy noeviction" in command
    [(volume, target)] = volume_mounts(redis)
    assert target == "/data"
    assert volume in config["volumes"]  # a named volume, not a host directory


def test_every_service_has_a_health_check(config):
    services = config["services"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    api = " ".join(services["api"]["healthcheck"]["test"])
    assert "/healthz" in api and "curl" not in api  # python:3.11-slim has no curl
    for name, node in (("worker", "gpu0"), ("worker-cpu", "cpu")):
        service = services[name]
        check = service["healthcheck"]
        assert check["test"][0] == "CMD-SHELL"
        # $$ in the file: the container's HOSTNAME, not the host's at parse time.
        assert re.search(rf"inspect ping -d {node}@\$\$?HOSTNAME -t \d+", check["test"][1])
        assert f"--hostname {node}@%h" in " ".join(argv(service["command"]))
        assert seconds(check["start_period"]) >= 60  # TensorFlow's image starts slowly
        assert seconds(check["timeout"]) > 5


def test_worker_reserves_one_nvidia_gpu(config):
    services = config["services"]
    [device] = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert int(device["count"]) == 1
    for name in ("api", "worker-cpu", "redis"):
        assert "deploy" not in services[name]


def test_api_and_workers_wait_for_a_healthy_redis(config):
    for name in ("api", "worker", "worker-cpu", "flower"):
        depends = config["services"][name]["depends_on"]
        assert depends["redis"]["condition"] == "service_healthy", name


def test_worker_stops_warm_and_restarts(config):
    for name in ("worker", "worker-cpu"):
        worker = config["services"][name]
        # Compose's default is 10 s before SIGKILL; a warm shutdown waits for the job.
        assert seconds(worker["stop_grace_period"]) >= 60
        assert worker["restart"] == "unless-stopped"
    worker = config["services"]["worker"]
    command = argv(worker["command"])
    assert command[:4] == ["celery", "-A", "worker.celery_app", "worker"]
    assert command[command.index("--concurrency") + 1] == "1"
    assert worker["environment"]["KERAS_BACKEND"] == "tensorflow"
    assert worker["environment"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


@pytest.mark.parametrize("queue", [None, "cpu-only"])
def test_workers_serve_the_queues_the_api_sends_to(tmp_path, queue):
    config = resolve(tmp_path, **({"SEQLAB_QUEUE": queue} if queue else {}))
    services = config["services"]
    api = services["api"]["environment"]
    # Unset: routed by size to `gpu` and `cpu` (jobs/settings.py); set: pinned.
    assert (api["SEQLAB_QUEUE"] or None) == queue
    assert api["REDIS_URL"] == "redis://redis:6379/0"
    for name in ("worker", "worker-cpu"):
        environment = services[name]["environment"]
        assert environment["SEQLAB_QUEUE"] == api["SEQLAB_QUEUE"]
        assert environment["SEQLAB_CPU_JOB_BYTES"] == api["SEQLAB_CPU_JOB_BYTES"]
        assert environment["REDIS_URL"] == api["REDIS_URL"]
    # The GPU worker serves what settings.worker_queues() says (the pinned
    # queue, else both); the CPU worker the `cpu` queue, or the pinned one.
    assert "-Q" not in argv(services["worker"]["command"])
    command = argv(services["worker-cpu"]["command"])
    assert command[command.index("-Q") + 1] == (queue or "cpu")
    assert "8000" in str(services["api"]["ports"][0])


def test_the_rabbitmq_profile(tmp_path):
    config = resolve(tmp_path)
    rabbitmq = config["services"]["rabbitmq"]
    assert rabbitmq["profiles"] == ["rabbitmq"]
    assert rabbitmq["healthcheck"]["test"][-1] == "ping"
    # Late acknowledgement: a delivery may be held as long as a job runs.
    timeout_ms = int(rabbitmq["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"].split()[-1])
    assert timeout_ms > 1000 * (3600 + 45)
    assert config["services"]["api"]["environment"]["SEQLAB_BROKER_URL"] == ""
    url = "amqp://seqlab:seqlab@rabbitmq:5672//"
    config = resolve(tmp_path, SEQLAB_BROKER_URL=url)
    for name in ("api", "worker", "worker-cpu"):
        assert config["services"][name]["environment"]["SEQLAB_BROKER_URL"] == url


def test_env_example_holds_the_defaults(tmp_path, config):
    # Copying .env.example to .env changes nothing.
    assert resolve(tmp_path, env_file=ENV_EXAMPLE) == config


def test_env_example_lists_every_setting_of_the_compose_file():
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    # and those of `make compose-up` (devtools/compose.py), which reads .env too
    assert used | set(compose.SETTINGS) == set(env_example())


def test_env_example_holds_the_defaults_of_make_compose_up():
    example = env_example()
    for name, default in compose.SETTINGS.items():
        assert example[name] == default, name


def test_env_example_settings_are_in_the_readme_configuration_table():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.MULTILINE))
    assert set(env_example()) <= documented, set(env_example()) - documented


def dockerfile(name):
    """(instruction, arguments) of a Dockerfile, continuation lines joined."""
    text = (ROOT / "docker" / name).read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def build_arg_default(steps, name):
    """The default of a Dockerfile's ``ARG name=default``."""
    [default] = [args.split("=", 1)[1] for op, args in steps
                 if op == "ARG" and args.startswith(f"{name}=")]  # fmt: skip
    return default


def requirements(extra, *without):
    """docker/requirements.py's list for an extra, as an image build runs it."""
    flags = [arg for name in without for arg in ("--without", name)]
    rv = subprocess.run(
        ["python3", ROOT / "docker/requirements.py", ROOT / "pyproject.toml", extra, *flags],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return {re.match(r"[A-Za-z0-9._-]+", line).group(0).lower() for line in rv.stdout.split()}


def test_api_image_installs_no_tensorflow(config):
    build = config["services"]["api"]["build"]
    assert build["dockerfile"] == "docker/api.Dockerfile"
    steps = dockerfile("api.Dockerfile")
    assert build_arg_default(steps, "BASE_IMAGE") == build["args"]["BASE_IMAGE"]
    assert build["args"]["BASE_IMAGE"] == "python:3.11-slim"
    # The wheelhouse stays in the first stage: the image copies the venv alone.
    stages = [args for op, args in steps if op == "FROM"]
    assert stages == ["${BASE_IMAGE} AS deps", "${BASE_IMAGE}"]
    assert ("COPY", "--from=deps /opt/seqlab /opt/seqlab") in steps
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "install-deps.sh api" in runs
    installed = requirements("api")
    assert {"flask", "gunicorn", "celery", "redis", "numpy"} <= installed
    assert not installed & {"tensorflow", "jax", "keras", "torch"}


def test_cpu_worker_image_trains_with_jax_without_tensorflow(config):
    service = config["services"]["worker-cpu"]
    assert service["build"]["dockerfile"] == "docker/worker-cpu.Dockerfile"
    assert service["build"]["args"]["BASE_IMAGE"] == "python:3.11-slim"
    assert service["environment"]["KERAS_BACKEND"] == "jax"
    steps = dockerfile("worker-cpu.Dockerfile")
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "install-deps.sh worker --without tensorflow" in runs
    installed = requirements("worker", "tensorflow")
    assert {"keras", "jax", "celery", "redis"} <= installed
    assert "tensorflow" not in installed


def test_worker_image_is_tensorflows_gpu_image_at_the_pinned_version(config):
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    [pin] = [r for r in pyproject["project"]["optional-dependencies"]["worker"]
             if r.startswith("tensorflow==")]  # fmt: skip
    image = f"tensorflow/tensorflow:{pin.split('==')[1]}-gpu"
    steps = dockerfile("worker.Dockerfile")
    assert build_arg_default(steps, "BASE_IMAGE") == image
    assert [args for op, args in steps if op == "FROM"] == ["${BASE_IMAGE}"]
    build = config["services"]["worker"]["build"]
    assert build["dockerfile"] == "docker/worker.Dockerfile"
    assert build["args"]["BASE_IMAGE"] == image
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert '".[worker]"' in runs


@pytest.mark.parametrize("name", ["api.Dockerfile", "worker-cpu.Dockerfile", "worker.Dockerfile"])
def test_images_install_from_a_wheelhouse_without_an_index(name):
    steps = dockerfile(name)
    assert build_arg_default(steps, "WHEELHOUSE") == "docker/wheelhouse"
    assert ("COPY", "${WHEELHOUSE} /tmp/wheelhouse/") in steps
    script = " ".join(args for op, args in steps if op == "RUN")
    if "install-deps.sh" in script:
        script = (ROOT / "docker/install-deps.sh").read_text()
    assert "--no-index --find-links /tmp/wheelhouse" in script
    # The default wheelhouse has no wheels: pip reads PyPI.
    assert not list((ROOT / "docker/wheelhouse").glob("*.whl"))


def test_local_parts_replace_the_registry_images_in_the_build(tmp_path):
    local = {
        "REDIS_IMAGE": compose.BASE_IMAGE,
        "SEQLAB_PYTHON_IMAGE": compose.BASE_IMAGE,
        "SEQLAB_WHEELHOUSE": compose.STAGED_WHEELHOUSE,
    }
    services = resolve(tmp_path, **local)["services"]
    assert services["redis"]["image"] == compose.BASE_IMAGE
    for name in ("api", "worker-cpu"):
        assert services[name]["build"]["args"] == {
            "BASE_IMAGE": compose.BASE_IMAGE,
            "WHEELHOUSE": compose.STAGED_WHEELHOUSE,
        }
    # The GPU worker keeps TensorFlow's image: it cannot be made from Debian's packages.
    assert services["worker"]["build"]["args"]["BASE_IMAGE"].startswith("tensorflow/tensorflow:")
    assert compose.DEFAULT_IMAGES == {
        "REDIS_IMAGE": resolve(tmp_path)["services"]["redis"]["image"],
        "SEQLAB_PYTHON_IMAGE": "python:3.11-slim",
        "SEQLAB_GPU_IMAGE": services["worker"]["build"]["args"]["BASE_IMAGE"],
    }


def test_the_build_context_lets_the_staged_wheelhouse_through_only():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".seqlab/*" in ignored and f"!{compose.STAGED_WHEELHOUSE}" in ignored


@pytest.mark.parametrize(("env", "threads"), [({}, "16"), ({"WEB_THREADS": "7"}, "7")])
def test_api_image_serves_with_threads_so_that_streams_do_not_hold_processes(
    config, tmp_path, env, threads
):
    [command] = [json.loads(args) for op, args in dockerfile("api.Dockerfile") if op == "CMD"]
    assert command[:2] == ["sh", "-c"]
    # The CMD's shell line, run with a gunicorn that prints its arguments.
    fake = tmp_path / "gunicorn"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", **env}
    ran = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    out = ran.stdout.splitlines()
    assert out[out.index("--worker-class") + 1] == "gthread"
    assert out[out.index("--threads") + 1] == threads
    assert out[out.index("--bind") + 1] == "0.0.0.0:8000" and out[-1] == "service:create_app()"
    assert config["services"]["api"]["environment"]["WEB_THREADS"] == "16"


def test_without_root_no_engine_is_said_not_started(monkeypatch, tmp_path):
    # What tests/test_compose_stack.py skips with, and make compose-up says.
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("SEQLAB_DOCKER_ROOT", str(tmp_path))
    monkeypatch.setattr(compose, "answers", lambda host: False)
    monkeypatch.setattr(compose.os, "geteuid", lambda: 1000)
    assert compose.why_no_engine() == "no Docker engine answers, and starting one needs root"
    with pytest.raises(compose.Unavailable, match="needs root"):
        compose.start_engine()
    assert compose.main(["up"]) == 1


def test_an_explicit_docker_host_is_the_only_one_tried(monkeypatch):
    asked = []
    monkeypatch.setenv("DOCKER_HOST", "tcp://192.0.2.1:2375")
    monkeypatch.setattr(compose, "answers", lambda host: asked.append(host) or False)
    assert compose.why_no_engine() == "no Docker engine answers at DOCKER_HOST=tcp://192.0.2.1:2375"
    assert set(asked) == {"tcp://192.0.2.1:2375"}


@pytest.mark.parametrize(
    ("choose", "setting", "value"),
    [
        (lambda env: compose.choose_images(env, "worker-cpu"), "SEQLAB_IMAGES", "cloud"),
        (compose.choose_worker, "SEQLAB_WORKER", "tpu"),
    ],
)
def test_make_compose_up_refuses_unknown_choices(choose, setting, value):
    with pytest.raises(compose.Unavailable, match=f"{setting}={value}"):
        choose({setting: value})
