"""The seqlab REST API: Keras parameter counts over HTTP.

Gunicorn runs ``service:create_app()``; there is no module-level app.
"""

import os
from typing import Any

from flask import Flask

from worker import settings


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure an instance of the Flask application.

    Configuration is layered: the defaults below, then ``FLASK_*``
    environment variables (``FLASK_REDIS_URL=redis://redis:6379/0``; values
    are parsed as JSON where they can be), then ``test_config`` if given.

    :param test_config: settings that override everything else, for tests.
    """
    from . import limits

    # An API has no static files; without this Flask would add a /static route.
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(
        # 1 MiB: far more than any model spec needs, and it bounds parsing work.
        # POST /train has its own, larger one (SEQLAB_MAX_TRAIN_BODY_BYTES).
        MAX_CONTENT_LENGTH=1_048_576,
        # The job queue: broker, Celery results and job records.
        REDIS_URL=settings.redis_url(),
        SEQLAB_QUEUE=settings.queue(),
        JOB_TTL=settings.job_ttl(),
        # Uploaded datasets are kept as long as jobs unless configured.
        DATASET_TTL=int(os.environ.get("SEQLAB_DATASET_TTL") or settings.job_ttl()),
        # Responses of POST /params kept per process, by request body; 0: none.
        PARAMS_CACHE_SIZE=1024,
        # API keys (name:secret,...) and/or a file of name:secret lines;
        # neither: the API is open (service/auth.py).
        API_KEYS=os.environ.get("SEQLAB_API_KEYS"),
        API_KEYS_FILE=os.environ.get("SEQLAB_API_KEYS_FILE"),
        # POST /train per tenant (or client address), e.g. "30/minute"; empty: off.
        TRAIN_RATE_LIMIT=os.environ.get("SEQLAB_TRAIN_RATE_LIMIT"),
        # How long a request waits for a concurrent one with its Idempotency-Key.
        IDEMPOTENCY_WAIT_SECONDS=2.0,
        # Lost workers' jobs: queued again this many times, then failed.
        JOB_RETRIES=settings.job_retries(),
        # Seconds /readyz waits for Redis.
        READINESS_TIMEOUT=0.5,
        # GET /jobs/<id>/events sends a keep-alive comment after this many
        # seconds without an event (proxies close streams idle for longer).
        EVENTS_KEEPALIVE_SECONDS=10,
        # Seconds POST /jobs/<id>/predict waits for a worker's answer (then 504).
        PREDICT_TIMEOUT=float(os.environ.get("SEQLAB_PREDICT_TIMEOUT", "30")),
        # What one training job may ask (service/limits.py), from SEQLAB_* variables.
        **limits.from_environ(),
    )
    app.config.from_prefixed_env()
    # Keep members in the order the API builds them (name, type, shape, ...).
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if test_config is not None:
        app.config.update(test_config)

    from celery import Celery

    from worker.datasets import DatasetStore
    from worker.reaper import Reaper
    from worker.reaper import send_train_task
    from worker.store import JobStore

    from . import api
    from . import auth
    from . import datasets
    from . import docs
    from . import events
    from . import health
    from . import jobs
    from . import plots
    from . import predict
    from . import problems
    from . import ratelimit
    from .cache import LRUCache

    app.extensions["params_cache"] = LRUCache(int(app.config["PARAMS_CACHE_SIZE"]))
    # Both connect lazily: the API starts, and /params works, without Redis.
    app.extensions["jobs"] = JobStore.from_url(app.config["REDIS_URL"], int(app.config["JOB_TTL"]))
    # Uploads on the jobs' Redis connection pool.
    app.extensions["datasets"] = DatasetStore(
        app.extensions["jobs"].redis, int(app.config["DATASET_TTL"])
    )
    # A producer only: it sends tasks by name and never imports the worker's
    # code. Its result backend is where it reads the answers of predictions.
    app.extensions["celery"] = Celery(
        "seqlab",
        broker=app.config["REDIS_URL"],
        backend=app.config["REDIS_URL"],
        set_as_current=False,
    )
    app.extensions["celery"].conf.update(
        task_serializer="json",
        accept_content=["json"],
        # Fail fast (503) rather than hold the request while Redis is away.
        broker_connection_timeout=3,
        broker_connection_max_retries=1,
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0.2},
        # Celery's Redis transport uses the shortest visibility timeout of
        # the apps that share it: the producer's must be the worker's.
        broker_transport_options={"visibility_timeout": settings.visibility_timeout()},
    )
    # The API settles the jobs of lost workers it reads (see worker/reaper.py).
    app.extensions["reaper"] = Reaper(
        app.extensions["jobs"],
        lambda job_id, queue, limit: send_train_task(
            app.extensions["celery"], job_id, queue, limit
        ),
        int(app.config["JOB_RETRIES"]),
        app.config["SEQLAB_QUEUE"],
    )
    problems.init_app(app)
    # Every route needs an API key (when keys are set) but api's (/params,
    # /layers, /healthz, ...), health's (/readyz), docs' (/docs) and views
    # marked @auth.public.
    auth.init_app(app, open_blueprints=[api.bp, health.bp, docs.bp])
    ratelimit.init_app(app)
    health.init_app(app)
    limits.init_app(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(jobs.bp)
    app.register_blueprint(datasets.bp)
    events.init_app(app)
    app.register_blueprint(plots.bp)
    app.register_blueprint(predict.bp)
    return app
