"""Image build step: download a pinned Terraform or OpenTofu release and verify it against its SHA256SUMS.

    python scripts/fetch_engine.py {terraform|tofu} VERSION ARCH DEST

Runs only inside `docker build` (Dockerfile, stage `engines`); never at run time and never in tests.
"""

from __future__ import annotations

import hashlib
import io
import sys
import urllib.request
import zipfile
from pathlib import Path

RELEASES = {
    "terraform": ("https://releases.hashicorp.com/terraform/{v}/terraform_{v}_linux_{a}.zip",
                  "https://releases.hashicorp.com/terraform/{v}/terraform_{v}_SHA256SUMS"),
    "tofu": ("https://github.com/opentofu/opentofu/releases/download/v{v}/tofu_{v}_linux_{a}.zip",
             "https://github.com/opentofu/opentofu/releases/download/v{v}/tofu_{v}_SHA256SUMS"),
}


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (pinned release URLs)
        return bytes(response.read())


def main(engine: str, version: str, arch: str, dest: str) -> None:
    archive_url, sums_url = (u.format(v=version, a=arch) for u in RELEASES[engine])
    archive = fetch(archive_url)
    name = archive_url.rsplit("/", 1)[-1]
    sums = {line.split()[1]: line.split()[0] for line in fetch(sums_url).decode().splitlines() if line.strip()}
    actual = hashlib.sha256(archive).hexdigest()
    if sums.get(name) != actual:
        raise SystemExit(f"{name}: sha256 {actual} does not match the published {sums.get(name)}")
    with zipfile.ZipFile(io.BytesIO(archive)) as unpacked:
        target = Path(dest) / engine
        target.write_bytes(unpacked.read(engine))
        target.chmod(0o755)
    print(f"{engine} {version} ({arch}) verified and installed to {target}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
