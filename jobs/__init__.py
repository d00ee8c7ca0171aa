"""The jobs domain that the API and the worker share, in Redis: job records
and their events (:mod:`jobs.store`; its Lua scripts in ``jobs/lua/``,
registered by :mod:`jobs.scripts`), leases and the reaper that settles the
jobs of lost workers (:mod:`jobs.reaper`), uploaded datasets
(:mod:`jobs.datasets`), which workers are alive (:mod:`jobs.presence`) and
the settings both read (:mod:`jobs.settings`).

Imports redis (and NumPy for dataset arrays) only: no Flask, no Celery
application, no Keras.
"""
