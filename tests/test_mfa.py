"""Two-factor primitives without the API: sealing secrets under SECRET_KEY (and the previous
key after a rotation), codes with skew and single use, recovery codes, device names."""
from __future__ import annotations

import datetime as dt

import pyotp
import pytest

from booking_app.services import mfa, sessions
from tests.api.conftest import set_env


def test_seal_is_authenticated_encryption_under_secret_key(monkeypatch):
    set_env(monkeypatch, SECRET_KEY="a" * 40)
    sealed = mfa.seal("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed and mfa.seal("JBSWY3DPEHPK3PXP") != sealed  # fresh nonce
    assert mfa.unseal(sealed) == ("JBSWY3DPEHPK3PXP", False)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError):
        mfa.unseal(tampered)


def test_rotation_opens_old_seals_with_the_previous_key(monkeypatch):
    set_env(monkeypatch, SECRET_KEY="old" * 14)
    sealed = mfa.seal("JBSWY3DPEHPK3PXP")
    set_env(monkeypatch, SECRET_KEY="new" * 14)
    with pytest.raises(ValueError):
        mfa.unseal(sealed)
    set_env(monkeypatch, SECRET_KEY="new" * 14, SECRET_KEY_PREVIOUS="old" * 14)
    assert mfa.unseal(sealed) == ("JBSWY3DPEHPK3PXP", True)  # True: seal it again
    assert mfa.unseal(mfa.seal("JBSWY3DPEHPK3PXP")) == ("JBSWY3DPEHPK3PXP", False)


def test_matching_step_allows_one_step_of_skew_and_no_reuse(monkeypatch):
    now = dt.datetime(2026, 5, 1, 12, 0, 10, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(mfa, "utcnow", lambda: now)
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    step = int(now.timestamp()) // 30
    assert mfa._matching_step(secret, totp.at(now), 0) == step
    assert mfa._matching_step(secret, totp.at(now - dt.timedelta(seconds=30)), 0) == step - 1
    assert mfa._matching_step(secret, totp.at(now + dt.timedelta(seconds=30)), 0) == step + 1
    assert mfa._matching_step(secret, totp.at(now - dt.timedelta(seconds=60)), 0) is None
    assert mfa._matching_step(secret, totp.at(now), step) is None  # used already
    assert mfa._matching_step(secret, "12345", 0) is None and mfa._matching_step(secret, "abcdef", 0) is None


def test_recovery_codes_are_ten_distinct_and_typeable():
    codes = mfa.new_recovery_codes()
    assert len(set(codes)) == 10
    assert all(len(c) == 14 and c.count("-") == 2 for c in codes)
    assert mfa._clean_code(" " + codes[0].upper() + " ") == codes[0].replace("-", "")


@pytest.mark.parametrize("agent, name", [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36", "Chrome on Windows"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari/604.1",
     "Safari on iPhone"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox on macOS"),
    ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36 EdgA/126 Edg/126",
     "Edge on Android"),
    ("python-httpx/0.27.0", "python-httpx/0.27.0"),
    ("", ""),
])
def test_device_names(agent, name):
    assert sessions.device_name(agent) == name
