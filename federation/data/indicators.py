"""Risk-indicator codes: the grooming stages and signals a message can carry.

The codes are what synthetic data annotates per message, what evidence lines report to
analysts, and the only content-level vocabulary allowed in tests: risk indicators, never
explicit descriptions.
"""

from __future__ import annotations

INDICATORS: dict[str, str] = {
    "personal_question": "asks for personal details such as age, school or where the child lives",
    "flattery": "flatters the child: looks, maturity, being special or understood",
    "gift": "offers gifts, game credit, money or favours",
    "risk_check": "checks whether parents are around or who else uses the device",
    "secrecy": "asks the child to keep the conversation or relationship secret",
    "isolation": "sets the child against family or friends, claims to be the only one who understands",
    "app_move": "asks to move the conversation to another app or a private channel",
    "photo_request": "asks for a photo or a video call",
    "meeting_request": "proposes to meet in person",
    "pressure": "pressures, guilt-trips or threatens the child",
    "runaway_offer": "offers to help the child leave home: a place to stay, travel money or tickets, "
    "planning to leave without telling anyone",
}

INDICATOR_CODES: tuple[str, ...] = tuple(INDICATORS)


def is_indicator(code: str) -> bool:
    """Whether ``code`` is a known risk-indicator code."""
    return code in INDICATORS
