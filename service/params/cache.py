"""A small thread-safe LRU cache for computed responses."""

import hashlib
import threading
from collections import OrderedDict

#: Size of a key made by :func:`digest_key`.
KEY_BYTES = 32


def digest_key(body: bytes) -> bytes:
    """A fixed-size key for a request body (SHA-256).

    Keying on the body itself would keep every body (up to the 1 MiB
    request limit) as long as its answer: about 1 GiB for 1,024 entries.
    """
    return hashlib.sha256(body).digest()


class LRUCache:
    """Keep the ``maxsize`` most recently used values; ``maxsize=0`` keeps none.

    ``POST /params`` is a pure function of the request body, and clients
    (an editor re-checking a model as it is typed, a notebook re-run) send
    the same body again and again: answering those from memory is exact.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        """The value for ``key``, marked as recently used, or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: bytes, value: bytes) -> None:
        """Store ``value``, evicting the least recently used beyond maxsize."""
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    @property
    def nbytes(self) -> int:
        """The bytes the keys and values hold (not Python's per-object overhead)."""
        with self._lock:
            return sum(len(k) + len(v) for k, v in self._data.items())

    def __len__(self) -> int:
        return len(self._data)
