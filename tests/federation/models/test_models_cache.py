"""The SQLite embedding cache: round trips, isolation by encoder, sharing, corruption."""

from __future__ import annotations

import multiprocessing
import pickle
from pathlib import Path

import numpy as np
import pytest

from federation.errors import DataError
from federation.models.cache import EmbeddingCache, default_cache_path, text_key


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_round_trip_more_keys_than_one_query_chunk(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    keys = [text_key(f"message number {i}") for i in range(1203)]
    vectors = _vectors(len(keys))
    cache.put_many("enc", dict(zip(keys, vectors, strict=True)))
    found = cache.get_many("enc", keys + [text_key("never stored")])
    assert set(found) == set(keys)
    for key, vector in zip(keys, vectors, strict=True):
        assert found[key].dtype == np.float32
        np.testing.assert_array_equal(found[key], vector)
    assert cache.count("enc") == len(keys)


def test_encoders_do_not_share_vectors(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    key = text_key("how was school today?")
    cache.put_many("enc-a", [(key, np.ones(4, np.float32))])
    assert cache.get_many("enc-b", [key]) == {}
    assert set(cache.get_many("enc-a", [key])) == {key}


def test_empty_calls_are_no_ops(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put_many("enc", {})
    assert cache.get_many("enc", []) == {}


def test_default_path_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CESAGRAM_CACHE_DIR", str(tmp_path / "cachedir"))
    assert default_cache_path() == tmp_path / "cachedir" / "embeddings.sqlite"
    monkeypatch.delenv("CESAGRAM_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "cesagram" / "embeddings.sqlite"


def test_corrupt_file_raises_data_error_naming_path_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"this is not a sqlite database at all" * 200)
    cache = EmbeddingCache(path)
    with pytest.raises(DataError) as caught:
        cache.get_many("enc", [text_key("x")])
    message = str(caught.value)
    assert str(path) in message
    assert "delete it to rebuild" in message and "only a cache" in message
    assert "\n" not in message


def test_pickles_without_connection_and_reopens(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    key = text_key("send me a photo")
    cache.put_many("enc", {key: np.arange(3, dtype=np.float32)})
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.path == cache.path
    np.testing.assert_array_equal(clone.get_many("enc", [key])[key], np.arange(3, dtype=np.float32))


def _writer(path: str, worker: int) -> None:
    cache = EmbeddingCache(Path(path))
    for round_ in range(20):
        keys = [text_key(f"w{worker} r{round_} m{i}") for i in range(25)]
        # Every worker also writes the same shared keys: INSERT OR IGNORE must cope.
        keys += [text_key(f"shared {i}") for i in range(5)]
        cache.put_many("enc", {k: np.full(4, worker, np.float32) for k in keys})


def test_several_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    EmbeddingCache(path).count()  # create schema before the race, as a first run would
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(path), w)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert EmbeddingCache(path).count("enc") == 3 * 20 * 25 + 5
