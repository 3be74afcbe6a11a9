"""The per-message risk-indicator detector: calibration, metrics, and detection with both encoders."""

from __future__ import annotations

import numpy as np
import pytest

from federation.data.indicators import INDICATOR_CODES
from federation.models.encoder import MiniLMEncoder
from federation.models.ngram import HashedNgramEncoder
from federation.scoring.indicators import (
    CALIBRATED_THRESHOLDS,
    PROTOTYPES,
    IndicatorDetector,
    calibrate_thresholds,
    encoder_family,
    indicator_metrics,
)


def test_calibration_picks_the_best_f_beta_cut() -> None:
    codes = list(INDICATOR_CODES)
    sims = np.full((6, len(codes)), 0.1)
    flattery = codes.index("flattery")
    # similarities of six messages to "flattery"; annotated: the 0.9, 0.8 and 0.5 ones
    sims[:, flattery] = [0.9, 0.8, 0.7, 0.5, 0.3, 0.2]
    truth = [("flattery",), ("flattery",), (), ("flattery",), (), ()]
    precise = calibrate_thresholds(sims, truth, beta=0.5)
    assert precise["flattery"] == 0.8  # F0.5: 2 of 2 flagged beats 3 of 4 flagged
    assert calibrate_thresholds(sims, truth, beta=2.0)["flattery"] == 0.5  # recall-leaning: take all three
    assert precise["gift"] > 0.5  # no annotation: a conservative fallback


def test_indicator_metrics_count_per_code_and_micro() -> None:
    predicted = [("gift",), ("gift", "secrecy"), (), ("secrecy",)]
    truth = [("gift",), ("secrecy",), ("gift",), ()]
    m = indicator_metrics(predicted, truth)
    assert (m["gift"]["tp"], m["gift"]["fp"], m["gift"]["fn"]) == (1, 1, 1)
    assert (m["secrecy"]["tp"], m["secrecy"]["fp"], m["secrecy"]["fn"]) == (1, 1, 0)
    assert m["micro"]["precision"] == pytest.approx(2 / 4) and m["micro"]["recall"] == pytest.approx(2 / 3)
    assert m["pressure"]["support"] == 0 and m["pressure"]["precision"] == 0.0


def test_every_code_has_prototypes_and_thresholds() -> None:
    assert set(PROTOTYPES) == set(INDICATOR_CODES)
    for family in ("minilm", "ngram"):
        assert set(CALIBRATED_THRESHOLDS[family]) == set(INDICATOR_CODES)
    assert encoder_family(HashedNgramEncoder().id) == "ngram"
    assert encoder_family("all-MiniLM-L6-v2@0123456789ab") == "minilm"
    assert encoder_family("other") is None


def test_ngram_detector_finds_its_prototypes_and_holds_up_on_synthetic_data(ngram_bundle) -> None:  # noqa: ANN001
    encoder = HashedNgramEncoder()
    detector = IndicatorDetector.for_encoder(encoder)
    for code, phrases in PROTOTYPES.items():
        assert all(code in found for found in detector.detect(encoder.encode(list(phrases))))
    assert detector.detect(encoder.encode(["lol ok", ""])) == [(), ()]
    # held-out: the fixture's synthetic data (another seed than the calibration's)
    grooming = [c for c in [*ngram_bundle.train, *ngram_bundle.test] if c.label == 1]
    texts = [m.text for c in grooming for m in c.messages]
    truth = [m.indicators for c in grooming for m in c.messages]
    micro = indicator_metrics(detector.detect(encoder.encode(texts)), truth)["micro"]
    assert micro["support"] >= 50
    assert micro["precision"] >= 0.6 and micro["recall"] >= 0.15, micro


@pytest.fixture(scope="module")
def minilm() -> tuple[MiniLMEncoder, IndicatorDetector]:
    encoder = MiniLMEncoder(cache=None)
    return encoder, IndicatorDetector.for_encoder(encoder)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("how old are u", "personal_question"),
        ("are ur parents home rn", "risk_check"),
        ("add me on snap", "app_move"),
        ("you are really pretty", "flattery"),
        ("haha that match was fun", None),
        ("what did you have for lunch", None),
    ],
)
def test_minilm_detector_on_paraphrases(minilm, text: str, code: str | None) -> None:  # noqa: ANN001
    encoder, detector = minilm
    found = detector.detect(encoder.encode([text]))[0]
    assert found == ((code,) if code else ())
