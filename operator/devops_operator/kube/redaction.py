"""Masking secrets out of text before it reaches Events, status messages or logs.

Terraform and AWS errors echo what they were given: variables, environment, request bodies.
Anything that leaves the operator for a place many can read goes through `redact` first.
What is masked:
- the value of any `key=value`, `key: value` or `"key": "value"` whose key ends like a secret
  (password, passwd, pwd, secret, token, key, credential(s), passphrase, e.g. `db_password`,
  `aws_secret_access_key`, `apiKey`, `sessionToken`);
- `Bearer`/`Basic` authorization credentials and the password in `scheme://user:password@host`;
- AWS access key ids (`AKIA`/`ASIA` + 16) and 40-character secret access key shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

_SECRET_NAME = r"[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|key|credentials?|passphrase)"
_SECRET_NAME_RE = re.compile(rf"^{_SECRET_NAME}$", re.IGNORECASE)

# key, optional closing quote, separator, then a quoted or bare value (bare stops at delimiters).
_KEY_VALUE_RE = re.compile(
    rf"""(?P<key>\b{_SECRET_NAME}\b["']?\s*[:=]\s*)
         (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s,;&}}\]"')]+))""",
    re.IGNORECASE | re.VERBOSE,
)
_AUTH_HEADER_RE = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_URL_PASSWORD_RE = re.compile(r"(?P<prefix>[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+(?=@)", re.IGNORECASE)
_ACCESS_KEY_ID_RE = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_SECRET_KEY_SHAPE_RE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
_HEX_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9A-F]{40})$")


def _mask_key_value(match: re.Match[str]) -> str:
    if match.group("dq") is not None:
        return f'{match.group("key")}"{MASK}"'
    if match.group("sq") is not None:
        return f"{match.group('key')}'{MASK}'"
    return f"{match.group('key')}{MASK}"


def _mask_secret_key_shape(match: re.Match[str]) -> str:
    # A 40-hex-digit run is a git commit or SHA-1 digest, which the operator reports on purpose;
    # a real secret access key is base64 and practically never all hex.
    return match.group(0) if _HEX_RE.match(match.group(0)) else MASK


def redact(text: str) -> str:
    """The text with every secret-looking value replaced by `***`."""
    text = _KEY_VALUE_RE.sub(_mask_key_value, text)
    text = _AUTH_HEADER_RE.sub(lambda m: f"{m.group('scheme')} {MASK}", text)
    text = _URL_PASSWORD_RE.sub(lambda m: f"{m.group('prefix')}{MASK}", text)
    text = _ACCESS_KEY_ID_RE.sub(MASK, text)
    return _SECRET_KEY_SHAPE_RE.sub(_mask_secret_key_shape, text)


def is_secret_name(name: str) -> bool:
    """Whether a field or variable name says its value is a secret (`db_password`, `apiKey`)."""
    return bool(_SECRET_NAME_RE.match(name))


def redact_data(value: Any) -> Any:
    """A copy of JSON-like data with secret-named fields masked and every string redacted."""
    if isinstance(value, Mapping):
        return {
            key: MASK
            if isinstance(key, str) and is_secret_name(key) and value[key] is not None
            else redact_data(value[key])
            for key in value
        }
    if isinstance(value, list | tuple):
        return [redact_data(item) for item in value]
    if isinstance(value, str):
        return redact(value)
    return value
