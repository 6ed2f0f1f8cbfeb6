"""Masking secrets out of text before it reaches Events, status messages or logs.

Terraform and AWS errors echo what they were given: variables, environment, request bodies.
Anything that leaves the operator for a place many can read goes through `redact` first.
What is masked:
- the body of a PEM private key (`-----BEGIN ... PRIVATE KEY-----` to its END line, or to the end
  of the text when it was cut off); certificates and public keys are public and kept;
- the value of any `key=value`, `key: value` or `"key": "value"` whose key ends like a secret
  (password, passwd, pwd, secret, token, key, credential(s), passphrase, e.g. `db_password`,
  `aws_secret_access_key`, `apiKey`, `sessionToken`), Docker's `auth` (base64 of user:password)
  and `.dockerconfigjson`; a quoted value whole, spaces included; in a YAML or env line
  (`password: two words`, `DB_PASSWORD=two words`) up to the end of the line, a YAML block scalar
  (`password: |`) with its indented lines; elsewhere up to the next space or delimiter;
- `Bearer`/`Basic` authorization credentials and the password in `scheme://user:password@host`;
- AWS access key ids (`AKIA`/`ASIA` + 16) and 40-character secret access key shapes.

What stays readable on purpose: git commit ids and digests (hex), ARNs (`...:secret:name` in an
ARN is a resource name, not a key and its value) and resource names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

_SECRET_NAME = (
    r"(?:[A-Za-z0-9_.-]*(?:password|passwd|pwd|secret|token|key|credentials?|passphrase|dockerconfigjson|dockercfg)"
    # Docker's `auth`, alone or as the last word (`basic_auth`), but not `oauth` or `author`.
    r"|(?:[A-Za-z0-9_.-]*[_.-])?auth)"
)
_SECRET_NAME_RE = re.compile(rf"^{_SECRET_NAME}$", re.IGNORECASE)

_PEM_PRIVATE_KEY_RE = re.compile(
    r"(?P<begin>-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----)"
    r"(?P<body>.*?)"
    r"(?P<end>-----END (?P=label)-----|\Z)",
    re.DOTALL,
)
# Terraform reports progress as `<resource address>: Creating...`: a resource named db_password
# is a name, and what follows it is no value.
_TERRAFORM_PROGRESS = (
    r"(?!(?-i:(?:Creating|Modifying|Destroying|Reading|Refreshing\ state|Still\ (?:creating|modifying|destroying"
    r"|reading))\.\.\.|(?:Creation|Modifications|Destruction|Read)\ complete\ after))"
)
# A YAML block scalar under a secret key: its more-indented lines are the value.
_YAML_BLOCK_RE = re.compile(
    rf"""^(?P<indent>[ \t]*)(?P<key>(?:-[ \t]+)?["']?{_SECRET_NAME}["']?[ \t]*:[ \t]*[|>][-+0-9]*[ \t]*)\n
         (?P<body>(?:(?:[ \t]*\n)*(?P=indent)[ \t]+\S[^\n]*(?:\n|\Z))+)""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)
# `key: value` starting a YAML line: the unquoted value runs to the end of the line.
_YAML_LINE_RE = re.compile(
    rf"""^(?P<key>[ \t]*(?:-[ \t]+)?["']?{_SECRET_NAME}["']?[ \t]*:[ \t]+)
         {_TERRAFORM_PROGRESS}(?P<value>[^\s"'|>][^\n]*?)[ \t]*$""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)
# `KEY=value` starting an env line: the unquoted value runs to the end of the line or a shell separator.
_ENV_LINE_RE = re.compile(
    rf"""^(?P<key>[ \t]*(?:export[ \t]+)?{_SECRET_NAME}[ \t]*=[ \t]*)
         (?P<value>[^\s"';&][^;&\n]*?)[ \t]*(?=[;&]|$)""",
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)
# Anywhere else: key (not an ARN's `:secret:` segment), optional closing quote, separator, then a
# quoted value (escaped quotes included, JSON inside a string too) or a bare one up to a delimiter
# (a YAML block indicator alone is no value: the block rule masked its lines).
_KEY_VALUE_RE = re.compile(
    rf"""(?P<key>(?<![:/])\b{_SECRET_NAME}\b\\?["']?[ \t]*[:=][ \t]*)
         {_TERRAFORM_PROGRESS}
         (?:\\"(?P<edq>.*?)\\"|"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)'
         |(?![|>][-+0-9]*(?:\s|$))(?P<bare>[^\s,;&}}\]"')]+))""",
    re.IGNORECASE | re.VERBOSE,
)
_AUTH_HEADER_RE = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_URL_PASSWORD_RE = re.compile(r"(?P<prefix>[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+(?=@)", re.IGNORECASE)
_ACCESS_KEY_ID_RE = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_SECRET_KEY_SHAPE_RE = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
_HEX_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9A-F]{40})$")


def _mask_pem(match: re.Match[str]) -> str:
    end = match.group("end")
    return f"{match.group('begin')}\n{MASK}\n{end}" if end else f"{match.group('begin')}\n{MASK}"


def _mask_yaml_block(match: re.Match[str]) -> str:
    ending = "\n" if match.group("body").endswith("\n") else ""
    return f"{match.group('indent')}{match.group('key')}\n{match.group('indent')}  {MASK}{ending}"


def _mask_line_value(match: re.Match[str]) -> str:
    return f"{match.group('key')}{MASK}"


def _mask_key_value(match: re.Match[str]) -> str:
    if match.group("edq") is not None:
        return f'{match.group("key")}\\"{MASK}\\"'
    if match.group("dq") is not None:
        return f'{match.group("key")}"{MASK}"'
    if match.group("sq") is not None:
        return f"{match.group('key')}'{MASK}'"
    return f"{match.group('key')}{MASK}"


def _mask_secret_key_shape(match: re.Match[str]) -> str:
    run = match.group(0)
    # A 40-hex-digit run is a git commit or SHA-1 digest, which the operator reports on purpose.
    # A secret access key is random base64: upper and lower case and digits; a 40-character path
    # of an S3 ARN (`logs/2024/...`) or a word run practically never has all three.
    if _HEX_RE.match(run):
        return run
    mixed = any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)
    return MASK if mixed else run


def redact(text: str) -> str:
    """The text with every secret-looking value replaced by `***`."""
    text = _PEM_PRIVATE_KEY_RE.sub(_mask_pem, text)
    text = _YAML_BLOCK_RE.sub(_mask_yaml_block, text)
    text = _YAML_LINE_RE.sub(_mask_line_value, text)
    text = _ENV_LINE_RE.sub(_mask_line_value, text)
    text = _KEY_VALUE_RE.sub(_mask_key_value, text)
    text = _AUTH_HEADER_RE.sub(lambda m: f"{m.group('scheme')} {MASK}", text)
    text = _URL_PASSWORD_RE.sub(lambda m: f"{m.group('prefix')}{MASK}", text)
    text = _ACCESS_KEY_ID_RE.sub(MASK, text)
    return _SECRET_KEY_SHAPE_RE.sub(_mask_secret_key_shape, text)


def is_secret_name(name: str) -> bool:
    """Whether a field or variable name says its value is a secret (`db_password`, `apiKey`, `auth`)."""
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
