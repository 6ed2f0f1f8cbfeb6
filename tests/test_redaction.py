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
        ("retrying with DB_PASSWORD: hunter2 (from env)", f"retrying with DB_PASSWORD: {MASK} (from env)"),
        ('{"apiKey": "abc123", "user": "bob"}', f'{{"apiKey": "{MASK}", "user": "bob"}}'),
        ("{'client_secret': 's3 cr3t'}", f"{{'client_secret': '{MASK}'}}"),
        ("token=abc&user=bob", f"token={MASK}&user=bob"),
        ('var.sessionToken="FwoGZXIvYXdz"', f'var.sessionToken="{MASK}"'),
        ("PGPASSWD=x; PASSPHRASE = y", f"PGPASSWD={MASK}; PASSPHRASE = {MASK}"),
        ("{aws_session_token: IQoJb3JpZ2luX2Vj, region: x}", f"{{aws_session_token: {MASK}, region: x}}"),
        (r'{\"password\": \"p4ss\"}', rf'{{\"password\": \"{MASK}\"}}'),  # JSON inside a string
        ('password="pa\\"ss"', f'password="{MASK}"'),  # an escaped quote does not end the value
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
        ("auth", True),
        ("basic_auth", True),
        (".dockerconfigjson", True),
        ("oauth", False),
        ("author", False),
        ("auths", False),
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


# -- PEM private keys -------------------------------------------------------------------------

PEM_BODY = (
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
)


@pytest.mark.parametrize("label", ["RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY",
                                   "ENCRYPTED PRIVATE KEY", "PRIVATE KEY", "DSA PRIVATE KEY",
                                   "PGP PRIVATE KEY BLOCK"])
def test_pem_private_key_bodies_are_masked(label: str) -> None:
    text = f"Error: invalid key for git:\n-----BEGIN {label}-----\n{PEM_BODY}-----END {label}-----\nretrying"
    redacted = redact(text)
    assert redacted == f"Error: invalid key for git:\n-----BEGIN {label}-----\n{MASK}\n-----END {label}-----\nretrying"
    assert redact(redacted) == redacted


def test_pem_with_headers_in_json_and_cut_off_is_masked() -> None:
    encrypted = (
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,3F17F5316E2BAC89\n\n"
        f"{PEM_BODY}-----END RSA PRIVATE KEY-----"
    )
    assert "DEK-Info" not in redact(encrypted) and "MIIEow" not in redact(encrypted)
    # In a JSON string the newlines are written as \n; the markers still bound the body.
    in_json = (
        '{"identity": "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n'
        '-----END OPENSSH PRIVATE KEY-----\\n"}'
    )
    assert "b3BlbnNzaC1rZXkt" not in redact(in_json)
    assert "-----END OPENSSH PRIVATE KEY-----" in redact(in_json)
    # A message cut off inside the key (bounded logs): everything after BEGIN is masked.
    cut = "key was: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqGSM49"
    assert redact(cut) == f"key was: -----BEGIN EC PRIVATE KEY-----\n{MASK}"


def test_certificates_and_public_keys_are_kept() -> None:
    text = (
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n"
        "-----END CERTIFICATE-----\n-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"
        "-----END PUBLIC KEY-----\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ci"
    )
    assert redact(text) == text


# -- multi-word values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('password = "correct horse battery staple"', f'password = "{MASK}"'),
        ("password: correct horse battery staple", f"password: {MASK}"),
        ("password: reading glasses", f"password: {MASK}"),  # only Terraform's exact progress words are kept
        ("  db_password: two words  \nuser: bob", f"  db_password: {MASK}\nuser: bob"),
        ("- secret: two words # a comment\n- name: x", f"- secret: {MASK}\n- name: x"),
        ("DB_PASSWORD=two words\nDB_USER=app", f"DB_PASSWORD={MASK}\nDB_USER=app"),
        ("export API_TOKEN=two words", f"export API_TOKEN={MASK}"),
        ("env:\n  token: >-\n    folded secret\n    over lines\n  region: eu-west-1",
         f"env:\n  token: >-\n    {MASK}\n  region: eu-west-1"),
        ("password: |\n  line one\n\n  line two\nnext: kept", f"password: |\n  {MASK}\nnext: kept"),
    ],
)
def test_multi_word_values_are_masked_whole(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected


# -- Docker registry credentials -------------------------------------------------------------------


def test_docker_config_auth_entries_are_masked() -> None:
    config = (
        '{"auths":{"123456789012.dkr.ecr.eu-west-1.amazonaws.com":{"username":"AWS",'
        '"password":"eyJwYXlsb2FkIjoi","auth":"QVdTOmV5SndZWGxzYjJGa0lqb2k="},'
        '"ghcr.io":{"auth":"dXNlcjpnaHBfc2VjcmV0","identitytoken":"tok"}}}'
    )
    redacted = redact(config)
    assert redacted == (
        '{"auths":{"123456789012.dkr.ecr.eu-west-1.amazonaws.com":{"username":"AWS",'
        f'"password":"{MASK}","auth":"{MASK}"}},'
        f'"ghcr.io":{{"auth":"{MASK}","identitytoken":"{MASK}"}}}}}}'
    )


def test_docker_config_in_a_secret_manifest_and_in_escaped_json() -> None:
    manifest = "data:\n  .dockerconfigjson: eyJhdXRocyI6eyJnaGNyLmlvIjp7ImF1dGgiOiJkWE5sY2pwd1lYTnoifX19\n"
    assert redact(manifest) == f"data:\n  .dockerconfigjson: {MASK}\n"
    error = r'Error: parsing {\"auths\":{\"ghcr.io\":{\"auth\":\"dXNlcjpwYXNz\"}}}: invalid'
    assert redact(error) == rf'Error: parsing {{\"auths\":{{\"ghcr.io\":{{\"auth\":\"{MASK}\"}}}}}}: invalid'
    assert redact_data({"auths": {"ghcr.io": {"auth": "dXNlcjpwYXNz"}}}) == {"auths": {"ghcr.io": {"auth": MASK}}}


# -- what must stay readable ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-password-AbCdEf",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/shop/prod/db_password",
        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:iam::123456789012:role/service-role/shop-api-token-rotator",
        "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6a7b/jane",
        "arn:aws:s3:::shop-assets/reports/quarterly/summaries/totals",  # a 40-character lower-case path
        "user: arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
        "aws_secretsmanager_secret.db_password: Creation complete after 1s [id=arn:aws:secretsmanager:x]",
        "aws_ssm_parameter.api_key: Creating...\naws_ssm_parameter.api_key: Still creating... [10s elapsed]",
        "secret_string_version: 3, plan 3f786850e387550fdab836ed7e6dc881de23001b",
        "oauth: enabled; author: jane; auths: 2",
        "credentials:\n  region: eu-west-1",
        "resource aws_iam_access_key.deploy (shop-prod-deploy-key) created",
        "ResourceType: AWS::SecretsManager::Secret",
    ],
)
def test_arns_digests_and_resource_names_are_kept(text: str) -> None:
    assert redact(text) == text
