"""A model request in any form, validated against the layer registry: the
marshmallow schemas generated from it, and the document of ``POST /params``.

The API (``service``) and the offline ``seqlab params`` command both load
models here; nothing here imports Flask or the web server.
"""
