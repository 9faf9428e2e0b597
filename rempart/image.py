"""Build the lab base image ``rempart/debian:12`` from Debian packages, never from a registry.

The recipe is the folder ``molecule/image/`` (package list, apt sources, customize hook). Its hash
tags the image (``rempart/debian:12-<hash>``); ``rempart/debian:12`` points at the newest build.
A build happens only when no image carries the current recipe's hash.

Standard library only: this runs before the project's virtualenv exists.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import engine

REPO = Path(__file__).resolve().parent.parent
RECIPE_DIR = REPO / "molecule" / "image"
REPOSITORY = "rempart/debian"
TAG = "12"
IMAGE = f"{REPOSITORY}:{TAG}"
SUITE = "bookworm"
RECIPE_LABEL = "org.rempart.recipe"


def recipe_files(recipe_dir: Path = RECIPE_DIR) -> list[Path]:
    return sorted(p for p in recipe_dir.iterdir() if p.is_file())


def recipe_hash(recipe_dir: Path = RECIPE_DIR) -> str:
    """Hash of everything the image is built from: a change to any recipe file rebuilds it."""
    digest = hashlib.sha256()
    digest.update(SUITE.encode())
    for path in recipe_files(recipe_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def packages() -> list[str]:
    lines = (RECIPE_DIR / "packages.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def sources() -> list[str]:
    lines = (RECIPE_DIR / "sources.list").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def image_label(ref: str) -> str | None:
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}', ref],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def _ensure_mmdebstrap() -> None:
    if not shutil.which("mmdebstrap"):
        # Its recommends (mount, gpg, uidmap, ...) are what its root mode uses.
        engine.apt_install(["mmdebstrap"], "the base image is built with mmdebstrap", recommends=True)


def build(recipe: str) -> None:
    _ensure_mmdebstrap()
    with tempfile.TemporaryDirectory(prefix="rempart-image-") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        print(f"image: building {IMAGE} (recipe {recipe}) with mmdebstrap", flush=True)
        subprocess.run(
            [
                "mmdebstrap",
                "--quiet",
                "--variant=minbase",
                f"--include={','.join(packages())}",
                f"--customize-hook={RECIPE_DIR / 'customize.sh'} \"$1\"",
                SUITE,
                str(tarball),
                *sources(),
            ],
            check=True,
        )
        subprocess.run(
            [
                "docker", "import",
                "--change", 'CMD ["/lib/systemd/systemd"]',
                "--change", "ENV container=docker",
                "--change", f"LABEL {RECIPE_LABEL}={recipe}",
                str(tarball),
                f"{REPOSITORY}:{TAG}-{recipe}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def ensure() -> str:
    """Return the image name, building it only when the recipe changed."""
    engine.ensure()
    recipe = recipe_hash()
    versioned = f"{REPOSITORY}:{TAG}-{recipe}"
    if image_label(versioned) != recipe:
        build(recipe)
    if image_label(IMAGE) != recipe:
        subprocess.run(["docker", "tag", versioned, IMAGE], check=True)
    print(f"image: {IMAGE} is recipe {recipe}", flush=True)
    return IMAGE


def main(argv: list[str] | None = None) -> int:  # noqa: ARG001 - no options
    return engine.run_command("image", ensure)
