"""``make compose-up`` / ``make compose-down``: docker-compose.yml's stack on this host.

Run as ``python -m devtools.compose COMMAND`` from the repository root; it
needs only the standard library (and pip, to fill a wheelhouse).

``up``
    Finds a Docker engine (``DOCKER_HOST``; else this project's own, if it
    runs; else the system's), or starts one of its own (see below). Picks the
    worker: the GPU one (``worker``) where the engine has an NVIDIA runtime,
    else the CPU one (``worker-cpu``, profile ``cpu``); ``SEQLAB_WORKER=gpu``
    or ``cpu`` decides instead. Picks the images (``SEQLAB_IMAGES``): the
    registry's (``redis:7``, ``python:3.11-slim``, TensorFlow's GPU image)
    where they are here or can be pulled, otherwise local ones: a base image
    made from Debian's packages with ``debootstrap`` (``seqlab-base:bookworm``,
    Python 3.11 and redis-server) and the Python packages from a wheelhouse
    filled on this host with ``pip download``, installed with ``--no-index``
    (nothing in the build reaches the network). Then builds, starts the stack
    detached with the API on ``API_PORT``, and waits until every service is
    healthy.
``down [--volumes]``
    Stops and removes the stack's containers and network (and with
    ``--volumes`` its Redis volume: the job records). The engine keeps
    running; ``stop-engine`` stops one this module started.
``base``, ``wheelhouse``, ``build``
    The steps of ``up`` alone: the local base image, the wheelhouse, the images.
``constraints``
    Rewrites docker/constraints.txt from this Python's ``pip freeze``.

Its own engine: when no engine answers and this runs as root, it installs
Debian's ``docker.io`` if ``dockerd`` is missing and starts ``dockerd`` with
its data, socket and log under ``SEQLAB_DOCKER_ROOT`` (default
``.seqlab/docker`` of the checkout, the project's ignored state directory),
which also keeps the wheelhouse. Point ``SEQLAB_DOCKER_ROOT`` at a directory
that outlives the checkout (``.ci/run`` uses ``~/.cache/seqlab/docker``) and a
fresh clone reuses the built layers and wheels. Settings come from the
environment, then from ``.env`` beside docker-compose.yml, as compose reads
them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".seqlab"
COMPOSE_FILE = ROOT / "docker-compose.yml"
#: The base image made from Debian's packages, for the API, the CPU worker and Redis.
BASE_IMAGE = "seqlab-base:bookworm"
#: Debian's suite of the base image: its python3 is 3.11, the version the
#: wheels are for.
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "redis-server")
#: Where a wheelhouse is staged for a build: inside the build context
#: (.dockerignore lets it through), as SEQLAB_WHEELHOUSE names it.
STAGED_WHEELHOUSE = ".seqlab/wheelhouse"
#: docker-compose.yml's default: a wheelhouse without wheels (install from PyPI).
DEFAULT_WHEELHOUSE = "docker/wheelhouse"
#: The settings of this module (beside docker-compose.yml's), with their
#: defaults as .env.example lists them. An empty SEQLAB_DOCKER_ROOT is the
#: checkout's .seqlab/docker.
SETTINGS = {
    "SEQLAB_IMAGES": "auto",
    "SEQLAB_WORKER": "auto",
    "SEQLAB_DOCKER_ROOT": "",
    "SEQLAB_DEBIAN_MIRROR": "http://deb.debian.org/debian",
}
#: The registry images, as docker-compose.yml defaults them.
DEFAULT_IMAGES = {
    "REDIS_IMAGE": "redis:7",
    "SEQLAB_PYTHON_IMAGE": "python:3.11-slim",
    "SEQLAB_GPU_IMAGE": "tensorflow/tensorflow:2.21.0-gpu",
}
#: (extra, packages left out) whose requirements a wheelhouse holds: the API
#: image's and the CPU worker's (docker/*.Dockerfile).
WHEELHOUSE_EXTRAS = (("api", ()), ("worker", ("tensorflow",)))
#: Wheels beyond the extras': redis wants async-timeout below Python 3.11.3,
#: as Debian 12's 3.11.2 is (pip evaluates markers for the Python that runs
#: it, not the images'); setuptools builds the GPU worker's editable install
#: (TensorFlow's image brings the rest of its `worker` extra but Keras 3.15,
#: JAX and Celery, which are here).
EXTRA_WHEELS = ("async-timeout>=4.0.3", "setuptools>=69")
#: The wheels' platforms: glibc 2.36's and every older manylinux (pip takes
#: a given platform literally, without those it includes).
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
#: Seconds the stack gets to become healthy (the worker's first check comes
#: after its 30 s interval).
HEALTHY_TIMEOUT = 300.0
#: Seconds a started dockerd gets to answer.
ENGINE_TIMEOUT = 60.0


class Unavailable(RuntimeError):
    """What this host lacks to run the stack, said to the operator."""


def say(line: str) -> None:
    """One line of progress on stderr (stdout stays for what a caller reads)."""
    print(f"compose | {line}", file=sys.stderr, flush=True)


def settings() -> dict[str, str]:
    """The environment over the ``.env`` file beside docker-compose.yml (as compose reads it)."""
    found: dict[str, str] = {}
    env_file = ROOT / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                name, value = line.split("=", 1)
                found[name.strip()] = value.strip().strip("'\"")
    return {**found, **os.environ}


def docker_root() -> Path:
    """Where this project's own engine keeps its data, socket and log, and the wheelhouse."""
    return Path(settings().get("SEQLAB_DOCKER_ROOT") or STATE / "docker").resolve()


def own_host() -> str:
    """The DOCKER_HOST of this project's own engine."""
    return f"unix://{docker_root() / 'docker.sock'}"


def docker_env(host: str | None) -> dict[str, str]:
    """The environment for docker and compose commands talking to ``host``
    (None: the client's default)."""
    env = {**settings()}
    env.pop("DOCKER_HOST", None)
    if host:
        env["DOCKER_HOST"] = host
    # Without the buildx plugin (Debian's docker.io has none) the client
    # builds with the classic builder only when told to.
    if not _works(["docker", "buildx", "version"], env):
        env["DOCKER_BUILDKIT"] = "0"
        env["COMPOSE_DOCKER_CLI_BUILD"] = "0"
    return env


def _works(argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 20) -> bool:
    """Whether a command runs and exits 0 (quietly)."""
    if shutil.which(argv[0]) is None:
        return False
    try:
        rv = subprocess.run(argv, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return rv.returncode == 0


def answers(host: str | None) -> bool:
    """Whether a Docker engine answers at ``host`` (None: the client's default)."""
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    if host:
        env["DOCKER_HOST"] = host
    return _works(["docker", "version", "--format", "{{.Server.Version}}"], env, timeout=10)


def find_engine() -> str | None:
    """The DOCKER_HOST of an engine that answers ("" for the client's default), or None."""
    explicit = settings().get("DOCKER_HOST")
    if explicit:
        return explicit if answers(explicit) else None
    if answers(own_host()):
        return own_host()
    if answers(None):
        return ""
    return None


def why_no_engine() -> str | None:
    """Why no engine can be had here (None: one answers or can be started)."""
    if find_engine() is not None:
        return None
    explicit = settings().get("DOCKER_HOST")
    if explicit:
        return f"no Docker engine answers at DOCKER_HOST={explicit}"
    if os.geteuid() != 0:
        return "no Docker engine answers, and starting one needs root"
    if shutil.which("dockerd") is None and shutil.which("apt-get") is None:
        return "no Docker engine answers, and without apt-get none can be installed"
    socket = docker_root() / "docker.sock"
    if len(str(socket)) > 100:
        return f"the socket path {socket} is too long for a Unix socket: set SEQLAB_DOCKER_ROOT"
    return None


def apt_install(*packages: str) -> None:
    """Install Debian packages (root), updating the package lists if the first try fails."""
    if shutil.which("apt-get") is None:
        raise Unavailable(f"install {' '.join(packages)}: no apt-get here")
    say(f"apt-get install {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    quiet = {"stdout": subprocess.DEVNULL, "env": env}
    install = ["apt-get", "install", "-y", "-q", *packages]
    if subprocess.run(install, **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], **quiet)
        if subprocess.run(install, **quiet).returncode != 0:
            raise Unavailable(f"apt-get could not install {' '.join(packages)}")


def start_engine() -> str:
    """Start this project's own dockerd (installing docker.io if needed); its DOCKER_HOST."""
    reason = why_no_engine()
    if reason:
        raise Unavailable(reason)
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        apt_install("docker.io")
    root = docker_root()
    root.mkdir(parents=True, exist_ok=True)
    say(f"starting a Docker engine of its own in {root}")
    with open(root / "dockerd.log", "ab") as log:
        process = subprocess.Popen(
            ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "run"),
             "--host", own_host(), "--pidfile", str(root / "dockerd.pid")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            # Its own session: it outlives this command, as a system engine would.
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + ENGINE_TIMEOUT
    while time.monotonic() < deadline:
        if answers(own_host()):
            return own_host()
        if process.poll() is not None:
            break
        time.sleep(0.5)
    tail = (root / "dockerd.log").read_text(errors="replace").splitlines()[-15:]
    raise Unavailable("dockerd did not start:\n" + "\n".join(tail))


def engine(start: bool = True) -> str | None:
    """The DOCKER_HOST of an engine that answers, started if ``start`` and none does."""
    host = find_engine()
    if host is None and start:
        host = start_engine()
    return host


def stop_engine() -> bool:
    """Stop this project's own dockerd, if it runs; whether one was stopped."""
    pidfile = docker_root() / "dockerd.pid"
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return True


def compose_command(env: dict[str, str]) -> list[str]:
    """`docker compose` (v2) where the plugin is installed, else `docker-compose` (v1)."""
    if _works(["docker", "compose", "version"], env):
        return ["docker", "compose"]
    if shutil.which("docker-compose") is None:
        if os.geteuid() != 0:
            raise Unavailable("no compose: install the docker compose plugin or docker-compose")
        apt_install("docker-compose")
    return ["docker-compose"]


def compose(
    env: dict[str, str], *args: str, check: bool = True, **kwargs
) -> subprocess.CompletedProcess:
    """Run compose on docker-compose.yml, under the project name ``env`` gives."""
    argv = [*compose_command(env), "--project-directory", str(ROOT), "--file", str(COMPOSE_FILE),
            "--project-name", project_name(env), *args]  # fmt: skip
    return subprocess.run(argv, cwd=ROOT, env=env, check=check, **kwargs)


def project_name(env: dict[str, str]) -> str:
    """COMPOSE_PROJECT_NAME, else ``seqlab`` (not compose's default, the
    directory's name, which differs between checkouts)."""
    return env.get("COMPOSE_PROJECT_NAME") or "seqlab"


def image_present(env: dict[str, str], ref: str) -> bool:
    """Whether the engine has the image ``ref``."""
    return _works(["docker", "image", "inspect", ref], env)


def has_nvidia_runtime(env: dict[str, str]) -> bool:
    """Whether the engine can run the GPU worker (the NVIDIA Container Toolkit's runtime)."""
    rv = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], env=env,
                        capture_output=True, text=True)  # fmt: skip
    return rv.returncode == 0 and "nvidia" in rv.stdout


def choose_worker(env: dict[str, str]) -> str:
    """``worker`` (GPU) or ``worker-cpu``: SEQLAB_WORKER, else what the engine can run."""
    wanted = env.get("SEQLAB_WORKER") or SETTINGS["SEQLAB_WORKER"]
    if wanted not in ("auto", "gpu", "cpu"):
        raise Unavailable(f"SEQLAB_WORKER={wanted}: say auto, gpu or cpu")
    if wanted == "auto":
        wanted = "gpu" if has_nvidia_runtime(env) else "cpu"
        if wanted == "cpu":
            say("no NVIDIA runtime in this Docker engine: the CPU worker (profile cpu)")
    return "worker" if wanted == "gpu" else "worker-cpu"


def registry_images(env: dict[str, str], worker: str) -> list[str]:
    """The images the stack is built from, as the settings name them."""
    names = ["REDIS_IMAGE", "SEQLAB_PYTHON_IMAGE"]
    if worker == "worker":
        names.append("SEQLAB_GPU_IMAGE")
    return [env.get(name) or DEFAULT_IMAGES[name] for name in names]


def can_have(env: dict[str, str], ref: str) -> bool:
    """Whether the image is here, or a pull of it succeeds."""
    if image_present(env, ref):
        return True
    say(f"docker pull {ref}")
    return _works(["docker", "pull", ref], env, timeout=1800)


def choose_images(env: dict[str, str], worker: str) -> str:
    """``registry`` or ``local``: SEQLAB_IMAGES, else whether the registry's can be had."""
    wanted = env.get("SEQLAB_IMAGES") or SETTINGS["SEQLAB_IMAGES"]
    if wanted not in ("auto", "registry", "local"):
        raise Unavailable(f"SEQLAB_IMAGES={wanted}: say auto, registry or local")
    if wanted == "auto":
        pullable = all(can_have(env, ref) for ref in registry_images(env, worker))
        wanted = "registry" if pullable else "local"
        if wanted == "local":
            say("the registry's images cannot be had: local ones, from Debian's packages")
    return wanted


def build_base(env: dict[str, str]) -> None:
    """The base image from Debian's packages (debootstrap), unless the engine has it."""
    if image_present(env, BASE_IMAGE):
        return
    if os.geteuid() != 0:
        raise Unavailable(f"building {BASE_IMAGE} with debootstrap needs root")
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    mirror = env.get("SEQLAB_DEBIAN_MIRROR") or SETTINGS["SEQLAB_DEBIAN_MIRROR"]
    say(f"{BASE_IMAGE}: debootstrap {SUITE} with {', '.join(BASE_PACKAGES)} from {mirror}")
    docker_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=docker_root(), prefix="base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             SUITE, str(rootfs), mirror],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        # What only apt needs (the image never runs apt: no network to run it
        # with), and documentation: a third of the image.
        for leftover in ("var/lib/apt/lists", "var/cache/apt", "usr/share/doc", "usr/share/man",
                         "usr/share/locale", "usr/share/info"):  # fmt: skip
            for path in (rootfs / leftover).glob("*"):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        changes = [
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "ENV LANG=C.UTF-8",
            'CMD ["python3"]',
        ]
        subprocess.run(
            ["docker", "import", *(f"--change={c}" for c in changes), "-", BASE_IMAGE],
            stdin=tar.stdout, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        tar.wait()


def requirements() -> list[str]:
    """Every requirement of the images a wheelhouse serves (docker/requirements.py)."""
    lines: list[str] = list(EXTRA_WHEELS)
    for extra, without in WHEELHOUSE_EXTRAS:
        flags = [arg for name in without for arg in ("--without", name)]
        rv = subprocess.run(
            [sys.executable, str(ROOT / "docker/requirements.py"), str(ROOT / "pyproject.toml"),
             extra, *flags],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        lines += [line for line in rv.stdout.splitlines() if line not in lines]
    return lines


def fill_wheelhouse() -> Path:
    """The wheelhouse in SEQLAB_DOCKER_ROOT, filled with ``pip download`` unless
    it already holds the wheels of these requirements and constraints.

    A new list gets a new directory (pip's cache makes it quick), so that
    wheels of versions no longer wanted do not pile up.
    """
    wheelhouse = docker_root() / "wheelhouse"
    wanted = requirements()
    constraints = ROOT / "docker/constraints.txt"
    stamp = hashlib.sha256("\n".join([*wanted, constraints.read_text()]).encode()).hexdigest()
    if (wheelhouse / ".stamp").exists() and (wheelhouse / ".stamp").read_text() == stamp:
        return wheelhouse
    filling = wheelhouse.with_name("wheelhouse.new")
    shutil.rmtree(filling, ignore_errors=True)
    filling.mkdir(parents=True)
    say(f"wheelhouse: pip download into {wheelhouse}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listed:
        listed.write("\n".join(wanted) + "\n")
        listed.flush()
        # Wheels only, for the images' CPython 3.11 on x86-64 Linux (glibc
        # 2.36, Debian 12), whatever Python runs this.
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(filling),
             "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
             "--abi", "cp311", *(f"--platform={tag}" for tag in PLATFORMS),
             "--constraint", str(constraints), "--requirement", listed.name],
            check=True,
        )  # fmt: skip
    (filling / ".stamp").write_text(stamp)
    shutil.rmtree(wheelhouse, ignore_errors=True)
    filling.rename(wheelhouse)
    return wheelhouse


def stage_wheelhouse(wheelhouse: Path) -> str:
    """Link the wheelhouse's wheels into the build context; their path there."""
    staged = ROOT / STAGED_WHEELHOUSE
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    for wheel in wheelhouse.glob("*.whl"):
        try:
            os.link(wheel, staged / wheel.name)
        except OSError:  # another file system
            shutil.copy2(wheel, staged / wheel.name)
    return STAGED_WHEELHOUSE


def local_parts(env: dict[str, str], worker: str) -> dict[str, str]:
    """Make the local base image and wheelhouse; the settings that build from them.

    A setting left at its registry default (as a copy of .env.example leaves
    it) is replaced; one that names something else is the operator's and kept.
    """
    build_base(env)
    chosen = {
        name: BASE_IMAGE
        for name in ("REDIS_IMAGE", "SEQLAB_PYTHON_IMAGE")
        if env.get(name, DEFAULT_IMAGES[name]) in ("", DEFAULT_IMAGES[name])
    }
    if worker == "worker":
        gpu = env.get("SEQLAB_GPU_IMAGE") or DEFAULT_IMAGES["SEQLAB_GPU_IMAGE"]
        if not image_present(env, gpu):
            raise Unavailable(
                f"the GPU worker builds on {gpu}, which cannot be made from Debian's packages: "
                "docker load it (or set SEQLAB_GPU_IMAGE), or run the CPU worker "
                "(SEQLAB_WORKER=cpu)"
            )
    given = env.get("SEQLAB_WHEELHOUSE", "")
    if given not in ("", DEFAULT_WHEELHOUSE):
        say(f"wheelhouse: {given} (SEQLAB_WHEELHOUSE)")
    else:
        chosen["SEQLAB_WHEELHOUSE"] = stage_wheelhouse(fill_wheelhouse())
    return chosen


def prepare(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """The compose environment (images chosen, local parts made) and the worker service."""
    worker = choose_worker(env)
    if choose_images(env, worker) == "local":
        env = {**env, **local_parts(env, worker)}
    return env, worker


def services(worker: str) -> list[str]:
    return ["redis", "api", worker]


def wait_healthy(env: dict[str, str], timeout: float = HEALTHY_TIMEOUT) -> None:
    """Wait until every container of the project is running and healthy."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        ids = compose(env, "ps", "-q", capture_output=True, text=True).stdout.split()
        if ids:
            states = container_states(env, ids)
            if states and all(s == "healthy" for s in states.values()):
                return
            if any(s in ("exited", "dead", "unhealthy") for s in states.values()):
                break
        time.sleep(2)
    compose(env, "logs", "--tail", "30", check=False)
    raise Unavailable(f"the stack did not become healthy: {states}")


def container_states(env: dict[str, str], ids: list[str]) -> dict[str, str]:
    """{name: health status, or state where the container has no health check}."""
    rv = subprocess.run(["docker", "inspect", *ids], env=env, capture_output=True, text=True)
    states = {}
    for container in json.loads(rv.stdout or "[]"):
        state = container["State"]
        health = state.get("Health") or {}
        states[container["Name"].lstrip("/")] = health.get("Status", state["Status"])
    return states


def api_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env.get('API_PORT') or '8000'}"


def up() -> None:
    """Bring the stack up detached and wait until it is healthy (the module's ``up``)."""
    host = engine()
    env, worker = prepare(docker_env(host))
    started = time.monotonic()
    say(f"building {', '.join(services(worker)[1:])}")
    compose(env, "--profile", "cpu", "build", *services(worker)[1:])
    say(f"built in {time.monotonic() - started:.0f} s; starting")
    compose(env, "--profile", "cpu", "up", "--detach", "--no-build", *services(worker))
    wait_healthy(env)
    with urllib.request.urlopen(f"{api_url(env)}/healthz", timeout=10) as response:
        response.read()
    say(f"up: {api_url(env)} (project {project_name(env)}, {worker}); make compose-down stops it")


def down(volumes: bool = False) -> None:
    """Remove the stack's containers and network (and volume); the ``down`` command."""
    host = engine(start=False)
    if host is None:
        say("no Docker engine answers: nothing to bring down")
        return
    env = docker_env(host)
    # Every profile: down removes only the services it is told of.
    compose(env, "--profile", "cpu", "--profile", "monitoring", "down", "--remove-orphans",
            *(["--volumes"] if volumes else []))  # fmt: skip


def write_constraints() -> None:
    """docker/constraints.txt from this Python's installed packages."""
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                            check=True, capture_output=True, text=True).stdout  # fmt: skip
    head = (
        "# The versions the images install (pip --constraint): those of the development\n"
        "# environment the tests pass in. Regenerate with python -m devtools.compose constraints.\n"
    )
    lines = [line for line in frozen.splitlines() if line and not line.startswith("#")]
    (ROOT / "docker/constraints.txt").write_text(head + "\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.compose",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "base", "wheelhouse", "build", "stop-engine", "constraints"):
        commands.add_parser(name)
    commands.add_parser("down").add_argument("-v", "--volumes", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down(args.volumes)
        elif args.command == "base":
            build_base(docker_env(engine()))
        elif args.command == "wheelhouse":
            print(fill_wheelhouse())
        elif args.command == "build":
            env, worker = prepare(docker_env(engine()))
            compose(env, "--profile", "cpu", "build", *services(worker)[1:])
        elif args.command == "stop-engine":
            say("stopped" if stop_engine() else "no engine of its own runs")
        elif args.command == "constraints":
            write_constraints()
    except Unavailable as missing:
        say(str(missing))
        return 1
    except subprocess.CalledProcessError as failed:
        say(f"failed: {' '.join(map(str, failed.cmd))}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
