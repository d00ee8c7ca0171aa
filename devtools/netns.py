"""Hosts of one's own on one machine, for tests/test_hosts.py and the
load bench across hosts (bench/across_hosts.py): Linux network namespaces joined by
veth pairs to a bridge, for what crosses a network (partitions, slow links).

The bridge is this test's gateway, ``10.213.N.1`` in the machine's own
namespace, where the test's Redis listens (and a relay to the broker); each
host is a namespace ``10.213.N.<10+k>`` whose processes reach only the
bridge. Cutting a host takes its cable out at the bridge (the root side of
its veth pair down): its packets go nowhere and its connections hang until
their timeouts, as across a real switch. Everything made is removed on
:meth:`Network.close`. Needs root and iproute2 (``ip netns``); tests skip
with the reason where namespaces cannot be made.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass

#: The networks' block: 10.213.N.0/24, N drawn per network.
BLOCK = "10.213"


def run(*argv: str) -> None:
    """Run a command of ``ip``; raise with its message if it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def why_not() -> str | None:
    """Why namespaces cannot be made here (None: they can)."""
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed (Debian: apt-get install iproute2)"
    name = f"slprobe{random.randrange(10**6)}"
    try:
        run("ip", "netns", "add", name)
    except RuntimeError as error:
        return f"network namespaces cannot be made here ({error}); run as root"
    run("ip", "netns", "del", name)
    return None


@dataclass
class Host:
    """One host: a namespace with one interface on the bridge."""

    name: str
    address: str
    #: The root side of its veth pair: its cable at the bridge.
    cable: str

    def prefix(self) -> list[str]:
        """The argv prefix that runs a command on this host."""
        return ["ip", "netns", "exec", self.name]


class Network:
    """A bridge and the hosts on it; a context manager that removes them."""

    def __init__(self) -> None:
        self.tag = random.randrange(256)
        self.bridge = f"slb{self.tag}x{random.randrange(1000)}"
        self.gateway = f"{BLOCK}.{self.tag}.1"
        self.hosts: list[Host] = []
        run("ip", "link", "add", self.bridge, "type", "bridge")
        try:
            run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            run("ip", "link", "set", self.bridge, "up")
        except RuntimeError:
            self.close()
            raise

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def add_host(self) -> Host:
        """A new host on the bridge, its link up."""
        k = len(self.hosts) + 1
        host = Host(f"{self.bridge}h{k}", f"{BLOCK}.{self.tag}.{10 + k}", f"{self.bridge}v{k}")
        self.hosts.append(host)
        run("ip", "netns", "add", host.name)
        run("ip", "link", "add", host.cable, "type", "veth", "peer", "name", "eth0",
            "netns", host.name)  # fmt: skip
        run("ip", "link", "set", host.cable, "master", self.bridge, "up")
        run("ip", "-n", host.name, "addr", "add", f"{host.address}/24", "dev", "eth0")
        run("ip", "-n", host.name, "link", "set", "eth0", "up")
        run("ip", "-n", host.name, "link", "set", "lo", "up")
        return host

    def cut(self, host: Host) -> None:
        """Take the host's cable out: nothing crosses until :meth:`mend`."""
        run("ip", "link", "set", host.cable, "down")

    def mend(self, host: Host) -> None:
        """Plug the host's cable back in."""
        run("ip", "link", "set", host.cable, "up")

    def close(self) -> None:
        """Remove the hosts (their processes must be stopped first) and the bridge."""
        for host in self.hosts:
            with contextlib.suppress(RuntimeError):
                run("ip", "link", "del", host.cable)
            with contextlib.suppress(RuntimeError):
                run("ip", "netns", "del", host.name)
        with contextlib.suppress(RuntimeError):
            run("ip", "link", "del", self.bridge)


class Relay:
    """A TCP relay from ``listen`` to ``target``, in a thread: the broker on
    the test's own address (the machine's RabbitMQ listens on loopback
    only), and a slow link where ``delay`` is set.

    A slow link is what ``tc qdisc ... netem delay 200ms loss 5%`` would
    make, which this machine's kernel lacks (no sch_netem): every chunk
    each way arrives ``delay`` seconds after it was sent, and a ``loss``
    share of them is held a retransmission timeout longer (``rto``), with
    TCP's ordering (what follows a lost segment waits behind it).
    """

    def __init__(
        self,
        listen: tuple[str, int],
        target: tuple[str, int],
        delay: float = 0.0,
        loss: float = 0.0,
        rto: float = 0.6,
        seed: int = 0,
    ) -> None:
        self.target, self.delay, self.loss, self.rto = target, delay, loss, rto
        self.random = random.Random(seed)
        self.server = socket.create_server(listen, reuse_port=False)
        self.address = self.server.getsockname()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._start(self._accept)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            # Blocking from here: an idle connection (a broker's between
            # heartbeats) must not time out in the relay.
            client.settimeout(None)
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            self._start(self._pump, client, upstream)
            self._start(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy ``source`` to ``sink``, each chunk due ``delay`` (plus, if
        lost, ``rto``) after it came, never before the one ahead of it."""
        if not self.delay:
            with contextlib.suppress(OSError):
                while chunk := source.recv(65536):
                    sink.sendall(chunk)
            self._close(source, sink)
            return
        pending: deque[tuple[float, bytes]] = deque()
        ready = threading.Condition()
        closed = threading.Event()

        def read() -> None:
            with contextlib.suppress(OSError):
                while chunk := source.recv(65536):
                    due = time.monotonic() + self.delay
                    if self.random.random() < self.loss:
                        due += self.rto
                    with ready:
                        # In order: no chunk overtakes a lost one ahead.
                        due = max(due, pending[-1][0]) if pending else due
                        pending.append((due, chunk))
                        ready.notify()
            closed.set()
            with ready:
                ready.notify()

        self._start(read)
        with contextlib.suppress(OSError):
            while True:
                with ready:
                    while not pending and not closed.is_set():
                        ready.wait(0.5)
                    if not pending:
                        break
                    due, chunk = pending.popleft()
                time.sleep(max(0.0, due - time.monotonic()))
                sink.sendall(chunk)
        self._close(source, sink)

    @staticmethod
    def _close(*sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
