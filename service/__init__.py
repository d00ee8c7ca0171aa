"""The seqlab REST API: Keras parameter counts over HTTP, and training jobs.

Gunicorn runs ``service:create_app()``; there is no module-level app. The
routes live in one blueprint package per feature: :mod:`service.params`
(``/params``, ``/layers``), :mod:`service.jobs` (``/train``, ``/jobs``,
``/examples``), :mod:`service.datasets` (``/datasets``) and
:mod:`service.pages` (``/``, ``/ui/...``: the pages for people); this package's
own modules are what every feature shares (auth, problem documents, request
helpers, limits, health and docs).
"""

import os
from typing import Any

from flask import Flask

from jobs import settings


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
        # Celery's messages (SEQLAB_BROKER_URL); None: REDIS_URL's Redis.
        BROKER_URL=os.environ.get("SEQLAB_BROKER_URL") or None,
        # The one queue of every job where SEQLAB_QUEUE pins it; None: jobs
        # are routed by their size to the GPU or the CPU queue.
        SEQLAB_QUEUE=settings.pinned_queue(),
        SEQLAB_GPU_QUEUE=settings.gpu_queue(),
        SEQLAB_CPU_QUEUE=settings.cpu_queue(),
        SEQLAB_CPU_JOB_BYTES=settings.cpu_job_bytes(),
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
        # Threads of each API process that event streams and predict waits may
        # hold together: a number, or "auto", half of gunicorn's --threads
        # (service/jobs/threads.py); the rest always serve other requests.
        STREAM_THREADS=os.environ.get("SEQLAB_STREAM_THREADS") or "auto",
        # Event streams one tenant (or client address) may hold open at once,
        # over every API process and host (counted in Redis).
        MAX_STREAMS_PER_TENANT=os.environ.get("SEQLAB_MAX_STREAMS_PER_TENANT") or 8,
        # Seconds after which an event stream ends (the client reconnects
        # with Last-Event-ID), so that slots turn over.
        STREAM_SECONDS=os.environ.get("SEQLAB_STREAM_SECONDS") or 300,
        # What one training job may ask (service/limits.py), from SEQLAB_* variables.
        **limits.from_environ(),
    )
    app.config.from_prefixed_env()
    # Keep members in the order the API builds them (name, type, shape, ...).
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if test_config is not None:
        app.config.update(test_config)

    from . import auth
    from . import docs
    from . import health
    from . import problems
    from . import queries
    from .datasets import init_app as init_datasets
    from .jobs import init_app as init_jobs
    from .jobs import init_queue
    from .pages import init_app as init_pages
    from .pages import views as pages
    from .params import init_app as init_params
    from .params import views as params
    from .sweeps import init_app as init_sweeps

    # Both connect lazily: the API starts, and /params works, without Redis.
    init_queue(app)
    problems.init_app(app)
    # Every route needs an API key (when keys are set) but params' (/params,
    # /layers), health's (/healthz, /readyz), docs' (/docs, /openapi.yaml),
    # the pages' (shells whose data comes from the guarded routes) and views
    # marked @auth.public.
    auth.init_app(app, open_blueprints=[params.bp, health.bp, docs.bp, pages.bp])
    # After auth: a caller without a key learns nothing about the routes.
    queries.init_app(app)
    health.init_app(app)
    limits.init_app(app)
    init_params(app)
    app.register_blueprint(docs.bp)
    init_jobs(app)
    init_datasets(app)
    init_sweeps(app)
    init_pages(app)
    return app
