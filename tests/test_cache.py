import json

from service import create_app
from service.cache import LRUCache

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
