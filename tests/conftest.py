import os
from pathlib import Path

import pytest
import yaml

from service import create_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_flask_env(monkeypatch):
    # create_app() reads FLASK_* variables; a developer's own must not leak in.
    for key in list(os.environ):
        if key.startswith("FLASK_"):
            monkeypatch.delenv(key)


@pytest.fixture
def app():
    return create_app({"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def spec():
    """The committed OpenAPI document, parsed; treat it as read-only."""
    return yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
