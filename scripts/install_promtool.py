"""Install promtool into a tools directory from Debian's `prometheus` package (a package registry).

`apt-get download prometheus` fetches the .deb (no root needed once the package lists exist) and
`dpkg-deb -x` unpacks it; only `usr/bin/promtool` is kept. Where apt is missing or the package
cannot be fetched, it says so and exits 0: the promtool tests then skip with that reason.
Usage:
    python scripts/install_promtool.py .tools/bin
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "prometheus"
TIMEOUT = 300  # seconds for one apt-get call (the .deb is ~20 MB)


def _download(directory: Path) -> bool:
    command = ["apt-get", "download", "-qq", PACKAGE]
    if subprocess.run(command, cwd=directory, capture_output=True, timeout=TIMEOUT).returncode == 0:
        return True
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # the package lists may just be missing: refresh once
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=TIMEOUT)
        return subprocess.run(command, cwd=directory, capture_output=True, timeout=TIMEOUT).returncode == 0
    return False


def main(target: Path) -> int:
    destination = target / "promtool"
    if destination.exists():
        return 0
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        print("promtool not installed: apt-get/dpkg-deb are not available (the promtool tests will skip)")
        return 0
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        try:
            downloaded = _download(work)
        except subprocess.TimeoutExpired:
            downloaded = False
        debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
        if not downloaded or not debs:
            print(f"promtool not installed: `apt-get download {PACKAGE}` failed (the promtool tests will skip)")
            return 0
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(work / "root")], check=True, timeout=TIMEOUT)
        shutil.copyfile(work / "root" / "usr" / "bin" / "promtool", destination)  # mtime now: make sees it fresh
    destination.chmod(0o755)
    print(f"installed {destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".tools/bin")))
