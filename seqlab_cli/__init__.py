"""``seqlab``: the command line of the seqlab service.

``seqlab params SPEC`` counts a model offline with the engine; the other
commands drive a seqlab API (``--url`` or ``SEQLAB_URL``): submit a training
job, follow it with a live progress bar (``GET /jobs/<id>/events``, else
polling), list, wait for, cancel and download jobs.

A package apart from ``seqlab`` so that the engine stays pure standard
library and light to import: this one needs click (and rich for the
progress bar, NumPy for ``.npy``/``.npz`` data: the ``cli`` extra).
"""
