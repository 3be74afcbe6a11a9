"""The pilot PKI, made once per module for the deploy tests that need certificates."""

from __future__ import annotations

import pytest

from deploy.pki import generate_pilot_certificates


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return generate_pilot_certificates(tmp_path_factory.mktemp("certs"), hosts=["superlink.example.org", "10.0.0.5"])
