"""Start the machine's RabbitMQ for the tests when it is installed and
none answers on 127.0.0.1:5672 (``make test``); standard library only.

The tests use a virtual host of their own on it (tests/conftest.py,
``rabbitmq``) and never touch another's.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

ADDRESS = ("127.0.0.1", 5672)


def answers() -> bool:
    """Whether something accepts connections on RabbitMQ's port."""
    try:
        socket.create_connection(ADDRESS, timeout=2).close()
    except OSError:
        return False
    return True


def main() -> int:
    if answers():
        return 0
    server, ctl = shutil.which("rabbitmq-server"), shutil.which("rabbitmqctl")
    if server is None or ctl is None:
        print("no RabbitMQ on 127.0.0.1:5672 and none installed: its tests skip "
              "(apt-get install rabbitmq-server)")  # fmt: skip
        return 0
    print("starting RabbitMQ (rabbitmq-server -detached) for the broker tests")
    subprocess.run([server, "-detached"], check=False)
    done = subprocess.run([ctl, "-q", "await_startup", "--timeout", "90"], check=False)
    if done.returncode or not answers():
        print("RabbitMQ did not start; its tests skip (or fail under .ci/run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
