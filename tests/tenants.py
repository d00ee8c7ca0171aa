"""API keys for tests: tenants with names of their own, so that tests on
one Redis never see each other's jobs, indexes or rate limits.

Import as ``from tenants import Tenants`` (pytest puts ``tests/`` on
``sys.path``).
"""

import secrets
import uuid

from service import create_app


class Tenants:
    """Fresh tenants, ``alice-<hex>`` and ``bob-<hex>``, with strong secrets."""

    def __init__(self, *names: str) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.names = {name: f"{name}-{suffix}" for name in names or ("alice", "bob")}
        self.secrets = {name: secrets.token_urlsafe(32) for name in self.names}

    @property
    def config(self) -> str:
        """The value of SEQLAB_API_KEYS for them."""
        return ",".join(f"{self.names[n]}:{self.secrets[n]}" for n in self.names)

    def bearer(self, name: str) -> dict[str, str]:
        """The Authorization header of one of them."""
        return {"Authorization": f"Bearer {self.secrets[name]}"}

    def app(self, redis_url: str, queue: str, **config):
        """An app with their keys on the test Redis, sending jobs to ``queue``."""
        return create_app(
            {
                "TESTING": True,
                "REDIS_URL": redis_url,
                "SEQLAB_QUEUE": queue,
                "API_KEYS": self.config,
                **config,
            }
        )
