"""Developer commands that are not part of the service (``make up``)."""
