"""Training jobs: ``POST /train``, ``/jobs`` and what follows one (events,
plots, model file, predictions), ``/examples``, and what guards a submit
(idempotency keys, the rate limit)."""

from flask import Flask

from jobs import settings


def init_queue(app: Flask) -> None:
    """Connect the app to the job queue: the job and dataset stores, a Celery
    producer and the reaper that settles the jobs of lost workers. All
    connect lazily, so the API starts, and ``/params`` works, without Redis.
    """
    from celery import Celery

    from jobs.datasets import DatasetStore
    from jobs.reaper import Reaper
    from jobs.reaper import send_train_task
    from jobs.store import JobStore

    from .routing import default_queue

    app.extensions["jobs"] = JobStore.from_url(app.config["REDIS_URL"], int(app.config["JOB_TTL"]))
    # Uploads on the jobs' Redis connection pool.
    app.extensions["datasets"] = DatasetStore(
        app.extensions["jobs"].redis, int(app.config["DATASET_TTL"])
    )
    # A producer only: it sends tasks by name and never imports the worker's
    # code. Its result backend is where it reads the answers of predictions.
    app.extensions["celery"] = Celery(
        "seqlab",
        broker=app.config["BROKER_URL"] or app.config["REDIS_URL"],
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
        # The worker's queue types and publisher confirms (RabbitMQ), or its
        # visibility timeout (Celery's Redis transport uses the shortest of
        # the apps that share it).
        **settings.broker_options(app.config["BROKER_URL"] or app.config["REDIS_URL"]),
    )
    # The API settles the jobs of lost workers it reads (see jobs/reaper.py).
    app.extensions["reaper"] = Reaper(
        app.extensions["jobs"],
        lambda job_id, queue, limit: send_train_task(
            app.extensions["celery"], job_id, queue, limit
        ),
        int(app.config["JOB_RETRIES"]),
        default_queue(app),
    )


def init_app(app: Flask) -> None:
    """Register the routes of jobs, their events, plots and predictions."""
    from . import events
    from . import plots
    from . import predict
    from . import ratelimit
    from . import threads
    from . import views

    ratelimit.init_app(app)
    threads.init_app(app)
    app.register_blueprint(views.bp)
    events.init_app(app)
    app.register_blueprint(plots.bp)
    app.register_blueprint(predict.bp)
