"""AWS endpoint URLs a project names (`spec.aws.endpointUrl`): parsed once, strictly, as the HTTP client will.

The tenancy policy allows endpoints by host and port, and botocore hands the URL to urllib3, which
splits it its own way (a backslash ends the authority for urllib3, not for `urllib.parse`). Two parsers
that disagree make an allow-list that can be walked around (`http://127.0.0.1:8080\\@allowed:4566/`
passes one and connects with the other). So a URL is accepted only when it has one reading: http or
https, a host of letters, digits, dots and dashes (or a bracketed IPv6 address), an optional numeric
port, an optional plain path, and nothing else (no userinfo, backslash, whitespace, percent-escape,
query or fragment). The canonical form (`Endpoint.url`) is what the model stores, what the policy
compares and what the sessions connect to: one parse, one value.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

SCHEMES = {"http": 80, "https": 443}
# One DNS label: letters, digits and inner dashes; a host is labels joined by dots.
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PATH = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:-]*)*$")
MAX_URL = 2048


class EndpointError(ValueError):
    """The URL cannot be used as an AWS endpoint; the message says why and what is accepted."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str  # lower case, no trailing dot; an IPv6 address without brackets
    port: int  # the explicit port, else the scheme's
    explicit_port: bool
    path: str

    @property
    def netloc_host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def host_port(self) -> str:
        return f"{self.netloc_host}:{self.port}"

    @property
    def url(self) -> str:
        port = f":{self.port}" if self.explicit_port else ""
        return f"{self.scheme}://{self.netloc_host}{port}{self.path}"


def _refuse(url: str, why: str) -> EndpointError:
    shown = url if len(url) <= 200 else url[:200] + "..."
    return EndpointError(f"{shown!r} is not a usable endpoint URL: {why} (write it as http(s)://host[:port])")


def _host(url: str, text: str) -> str:
    if text.startswith("["):
        if not text.endswith("]"):
            raise _refuse(url, "an IPv6 address must be written in brackets, [::1]")
        try:
            return str(ipaddress.IPv6Address(text[1:-1]))
        except ValueError:
            raise _refuse(url, f"{text} is not an IPv6 address") from None
    host = text.lower()
    if host.endswith("."):
        host = host[:-1]
    labels = host.split(".")
    if not host or len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _refuse(url, f"host {text!r} is not a DNS name or an IP address")
    return host


def parse_endpoint(url: str) -> Endpoint:
    """The one reading of an endpoint URL, or EndpointError naming what is wrong."""
    if not url or len(url) > MAX_URL:
        raise _refuse(url, f"it must be 1 to {MAX_URL} characters")
    if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) > 0x7E for ch in url):
        raise _refuse(url, "it holds whitespace, control or non-ASCII characters")
    if "\\" in url:
        raise _refuse(url, "it holds a backslash, which HTTP clients read as a path separator")
    if "%" in url:
        raise _refuse(url, "it holds percent-escapes")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise _refuse(url, "the scheme must be http or https")
    scheme = scheme.lower()
    if "?" in rest or "#" in rest:
        raise _refuse(url, "it has a query or a fragment")
    authority, slash, path = rest.partition("/")
    path = slash + path
    if "@" in authority:
        raise _refuse(url, "it names a user (user@host): credentials never go in an endpoint URL")
    port_text: str | None = None
    if authority.startswith("["):
        close = authority.find("]")
        host_text, after = (authority[:close + 1], authority[close + 1:]) if close >= 0 else (authority, "")
        if after and not after.startswith(":"):
            raise _refuse(url, f"{authority!r} is not host:port")
        if after:
            port_text = after[1:]
    else:
        host_text, colon, after = authority.partition(":")
        if colon:
            port_text = after
    host = _host(url, host_text)
    if port_text is None:
        port, explicit = SCHEMES[scheme], False
    else:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _refuse(url, f"port {port_text!r} is not a number from 1 to 65535")
        port, explicit = int(port_text), True
    if not _PATH.match(path):
        raise _refuse(url, "its path holds characters other than letters, digits and -._~/:")
    return Endpoint(scheme=scheme, host=host, port=port, explicit_port=explicit, path=path.rstrip("/"))


def canonical_endpoint(url: str | None) -> str | None:
    """The model's validator: the canonical URL, or ValueError (pydantic names the field)."""
    if url is None or url == "":
        return None
    return parse_endpoint(url).url
