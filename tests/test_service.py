"""The app factory (service/__init__.py ``create_app``): its configuration,
and no route of Flask's own."""

from service import create_app


def test_config():
    assert not create_app().testing
    assert create_app({"TESTING": True}).testing


def test_config_defaults(monkeypatch):
    # The default, not whatever Redis the caller's environment names.
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = create_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 1_048_576
    assert app.config["REDIS_URL"] == "redis://localhost:6379/0"


def test_config_from_env(monkeypatch):
    monkeypatch.setenv("FLASK_REDIS_URL", "redis://redis:6379/1")
    monkeypatch.setenv("FLASK_MAX_CONTENT_LENGTH", "2048")
    app = create_app()
    assert app.config["REDIS_URL"] == "redis://redis:6379/1"
    assert app.config["MAX_CONTENT_LENGTH"] == 2048
    # test_config wins over the environment.
    assert create_app({"MAX_CONTENT_LENGTH": 10}).config["MAX_CONTENT_LENGTH"] == 10


def test_no_static_route(client):
    assert client.get("/static/x").status_code == 404
