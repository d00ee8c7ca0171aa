import json

from service import create_app
from service.params.cache import KEY_BYTES
from service.params.cache import LRUCache
from service.params.views import MAX_CACHED_BYTES

BODY = {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": 5}]}


def test_lru_evicts_least_recently_used():
    cache = LRUCache(2)
    cache.put(b"a", b"1")
    cache.put(b"b", b"2")
    assert cache.get(b"a") == b"1"  # b is now the oldest
    cache.put(b"c", b"3")
    assert (cache.get(b"a"), cache.get(b"b"), cache.get(b"c")) == (b"1", None, b"3")
    assert len(cache) == 2


def test_size_zero_keeps_nothing():
    cache = LRUCache(0)
    cache.put(b"a", b"1")
    assert cache.get(b"a") is None


def test_cached_answer_equals_computed_answer(client, app):
    first = client.post("/params", json=BODY)
    second = client.post("/params", json=BODY)
    assert len(app.extensions["params_cache"]) == 1
    uncached = create_app({"TESTING": True, "PARAMS_CACHE_SIZE": 0}).test_client()
    third = uncached.post("/params", json=BODY)
    assert first.get_data() == second.get_data() == third.get_data()
    assert second.content_type == "application/json"


def test_cache_does_not_bypass_content_type_or_validation(client, app):
    client.post("/params", json=BODY)
    raw = json.dumps(BODY)
    assert client.post("/params", data=raw, content_type="text/plain").status_code == 415
    bad = {"input_shape": [5], "layers": [{"type": "LSTM", "units": 5}]}
    assert client.post("/params", json=bad).status_code == 422
    assert client.post("/params", json=bad).status_code == 422
    assert len(app.extensions["params_cache"]) == 1  # errors are not kept


def test_memory_is_bounded_by_digests_and_value_size():
    """Large bodies (whitespace padding to near the 1 MiB limit) are kept by
    a 32-byte digest, and answers over 64 KiB are not kept: the cache holds
    at most size × (32 B + 64 KiB)."""
    size = 4
    app = create_app({"TESTING": True, "PARAMS_CACHE_SIZE": size})
    client = app.test_client()
    for units in range(1, 7):
        body = {"input_shape": [5, 1], "layers": [{"type": "LSTM", "units": units}]}
        data = json.dumps(body) + " " * 900_000
        assert client.post("/params", data=data, content_type="application/json").status_code == 200
    big = {"input_shape": [5, 1], "layers": [{"type": "Dense", "units": 1}] * 150}
    assert len(client.post("/params", json=big).get_data()) > MAX_CACHED_BYTES
    cache = app.extensions["params_cache"]
    assert len(cache) == size
    assert cache.nbytes <= size * (KEY_BYTES + MAX_CACHED_BYTES)
    assert cache.nbytes < 100_000  # each answer here is about 2 KB
