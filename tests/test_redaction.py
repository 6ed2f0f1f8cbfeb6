"""Secrets never leave the operator in text: pure tests of `redact` and `redact_data`."""

from __future__ import annotations

import pytest

from devops_operator.kube.redaction import MASK, is_secret_name, redact, redact_data

# AWS's documented example credentials (not real).
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2", f"password={MASK}"),
        ("DB_PASSWORD: hunter2 (from env)", f"DB_PASSWORD: {MASK} (from env)"),
        ('{"apiKey": "abc123", "user": "bob"}', f'{{"apiKey": "{MASK}", "user": "bob"}}'),
        ("{'client_secret': 's3 cr3t'}", f"{{'client_secret': '{MASK}'}}"),
        ("token=abc&user=bob", f"token={MASK}&user=bob"),
        ('var.sessionToken="FwoGZXIvYXdz"', f'var.sessionToken="{MASK}"'),
        ("PGPASSWD=x; PASSPHRASE = y", f"PGPASSWD={MASK}; PASSPHRASE = {MASK}"),
        ("aws_session_token: IQoJb3JpZ2luX2Vj,", f"aws_session_token: {MASK},"),
    ],
)
def test_values_of_secret_named_keys_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_aws_access_key_ids_are_masked() -> None:
    text = f"InvalidClientTokenId: {ACCESS_KEY_ID} and temporary ASIAY34FZKBOKMUTVV7A"
    assert redact(text) == f"InvalidClientTokenId: {MASK} and temporary {MASK}"


def test_secret_access_key_shapes_are_masked_anywhere() -> None:
    text = f"export AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY}\nthen echo {SECRET_ACCESS_KEY}."
    redacted = redact(text)
    assert SECRET_ACCESS_KEY not in redacted
    assert redacted == f"export AWS_SECRET_ACCESS_KEY={MASK}\nthen echo {MASK}."


def test_commit_ids_and_digests_are_kept() -> None:
    sha1 = "3f786850e387550fdab836ed7e6dc881de23001b"
    sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    text = f"applied plan {sha256} from commit {sha1} ({sha1.upper()})"
    assert redact(text) == text


def test_authorization_and_url_credentials_are_masked() -> None:
    text = (
        "GET with Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.payload.sig failed; "
        "retrying postgres://admin:s3cret@db.internal:5432/app"
    )
    redacted = redact(text)
    assert "eyJhbGci" not in redacted and "s3cret" not in redacted
    assert f"Bearer {MASK}" in redacted
    assert f"postgres://admin:{MASK}@db.internal:5432/app" in redacted


@pytest.mark.parametrize(
    "text",
    [
        "KeyError: 'spec'",
        "secretRef: db-credentials-ref",
        "secretName: terraform-state",
        "Error: creating S3 bucket (my-bucket): BucketAlreadyExists",
        "Basic auth is disabled",
        "https://console.aws.amazon.com/ec2/home?region=us-east-1",
        "",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact(text) == text


def test_redaction_is_idempotent() -> None:
    text = f"password=hunter2 key {ACCESS_KEY_ID} {SECRET_ACCESS_KEY} Bearer abcdefghijkl"
    once = redact(text)
    assert redact(once) == once


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("aws_secret_access_key", True),
        ("apiKey", True),
        ("GITHUB_TOKEN", True),
        ("credentials", True),
        ("secretName", False),
        ("keyId", False),
        ("region", False),
    ],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_redact_data_masks_secret_fields_and_strings_recursively() -> None:
    data = {
        "region": "eu-west-1",
        "variables": {"db_password": "hunter2", "instance_count": 3, "apiKey": None},
        "env": [{"name": "X", "value": f"id={ACCESS_KEY_ID}"}],
        "log": ("token=abc",),
    }
    assert redact_data(data) == {
        "region": "eu-west-1",
        "variables": {"db_password": MASK, "instance_count": 3, "apiKey": None},
        "env": [{"name": "X", "value": f"id={MASK}"}],
        "log": [f"token={MASK}"],
    }
    assert data["variables"]["db_password"] == "hunter2"  # type: ignore[index]  # input untouched
