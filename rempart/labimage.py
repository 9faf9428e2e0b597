"""The lab's host image: the base image with the packages that the roles install on every host.

A first converge of the lab installed the same packages on all its machines at once (aide-common's
configuration alone runs ucf for each of its 211 files, rkhunter makes its first database). This
image pays that once per machine, when it is built (about 67 s); a second ``make lab`` finds it and
builds nothing. Measured on one machine: the first converge went from 796 to 689 s
(``docs/development/test-plan.md``).

What it holds is derived, never listed: the roles that a play for ``hosts: all`` of
``playbooks/site.yml`` (and the playbooks it imports) applies to every host (not those given a
``when:``, nor those whose ``tasks/main.yml`` ends a host early: they choose their hosts, as
postgresql_client keeps to the hosts the flow matrix lets reach PostgreSQL), and of each role the plain lists of
package names it declares in ``defaults/main.yml`` or ``vars/main.yml`` under a name that ends in
``packages`` or ``packages_always``. A list computed by a template depends on the host (wireguard-go
only without the kernel module, USBGuard unless its control is an exception) and stays the role's
job, as do lists of packages a role removes. The roles still install whatever is missing: the image
saves time, it decides nothing.

The molecule scenarios keep the bare base image, so each role's installation is tested from a fresh
server there; the lab tests what the roles make of a server that already has the packages, as on a
host that is converged again.

The image name is the lab's ``lab_host_image`` (``playbooks/lab/vars.yml``); it is tagged
``<lab_host_image>-<hash>`` too, the hash covering the base image's recipe, the build script and the
package list, and is rebuilt only when that hash has no image.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import yaml

from rempart import aptcache, engine, image

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
ROLES = REPO / "roles"
LAB_VARS = PLAYBOOKS / "lab" / "vars.yml"
BUILD_CONTAINER = "rempart-lab-image-build"
# A list named like this declares packages a role installs; the names of lists it removes say so.
PACKAGE_LIST = re.compile(r"^(?:[a-z0-9]+_)*packages(?:_always)?$")
REMOVED = re.compile(r"absent|remove|purge")
# Run in the build container with the packages as arguments; part of the recipe's hash.
BUILD_SCRIPT = (
    "set -e; apt-get update -qq; "
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \"$@\" >/tmp/install.log 2>&1 "
    "|| { tail -n 30 /tmp/install.log; exit 1; }; "
    "apt-get clean; rm -rf /var/lib/apt/lists/* /tmp/install.log"
)


def lab_image() -> str:
    return yaml.safe_load(LAB_VARS.read_text(encoding="utf-8"))["lab_host_image"]


def _plays(playbook: Path, seen: set[Path] | None = None) -> list[dict]:
    """The plays of a playbook, those of the playbooks it imports included, in order."""
    seen = set() if seen is None else seen
    if playbook in seen:
        return []
    seen.add(playbook)
    plays: list[dict] = []
    for entry in yaml.safe_load(playbook.read_text(encoding="utf-8")) or []:
        imported = entry.get("ansible.builtin.import_playbook") or entry.get("import_playbook")
        if imported:
            plays += _plays((playbook.parent / imported).resolve(), seen)
        else:
            plays.append(entry)
    return plays


def _chooses_its_hosts(role: str, roles_dir: Path = ROLES) -> bool:
    """Whether the role's own tasks end some hosts early (``meta: end_host``): it runs where it decides."""
    path = roles_dir / role / "tasks" / "main.yml"
    tasks = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else []
    return any(
        str(task.get("ansible.builtin.meta", task.get("meta", ""))).strip() in ("end_host", "end_role", "end_play")
        for task in tasks or []
        if isinstance(task, dict)
    )


def every_host_roles(site: Path = PLAYBOOKS / "site.yml", roles_dir: Path = ROLES) -> list[str]:
    """The roles every host gets, in the order the site playbook applies them."""
    roles: list[str] = []
    for play in _plays(site):
        if str(play.get("hosts", "")).strip() != "all" or play.get("when"):
            continue
        for role in play.get("roles", []):
            entry = {"role": role} if isinstance(role, str) else role
            name = entry.get("role") or entry.get("name")
            if name and name not in roles and not entry.get("when") and not _chooses_its_hosts(name, roles_dir):
                roles.append(name)
    return roles


def role_packages(role: str, roles_dir: Path = ROLES) -> list[str]:
    """The package names a role declares as plain lists (see the module's docstring)."""
    packages: list[str] = []
    for part in ("defaults", "vars"):
        path = roles_dir / role / part / "main.yml"
        if not path.exists():
            continue
        for name, value in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            own, _, rest = name.lstrip("_").partition(role + "_")
            if own or not PACKAGE_LIST.match(rest) or REMOVED.search(name):
                continue
            if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
                packages += [item for item in value if item not in packages]
    return packages


def packages() -> list[str]:
    names: list[str] = []
    for role in every_host_roles():
        names += [name for name in role_packages(role) if name not in names]
    return sorted(names)


def recipe(names: list[str]) -> str:
    digest = hashlib.sha256()
    digest.update(image.recipe_hash().encode() + b"\0" + BUILD_SCRIPT.encode() + b"\0" + "\n".join(names).encode())
    return digest.hexdigest()[:12]


def build(target: str, names: list[str], label: str) -> None:
    """Install the packages in a container of the base image (through the package cache), then commit it.

    The container does not boot: packages are set up as in mmdebstrap's chroot, their services
    enabled but not started, so nothing of a running machine (machine id, SSH host keys, journal)
    ends up in the image.
    """
    subprocess.run(["docker", "rm", "-f", BUILD_CONTAINER], capture_output=True, check=False)
    print(f"image: building {target} ({len(names)} packages of the roles every host gets)", flush=True)
    try:
        subprocess.run(
            [
                "docker", "run", "--name", BUILD_CONTAINER,
                "--add-host", "host.docker.internal:host-gateway",
                "-v", f"{aptcache.proxy_conf_path()}:/etc/apt/apt.conf.d/01rempart-lab-proxy:ro",
                image.IMAGE, "sh", "-c", BUILD_SCRIPT, "install", *names,
            ],
            check=True,
        )
        subprocess.run(
            [
                "docker", "commit",
                "--change", 'CMD ["/lib/systemd/systemd"]',
                "--change", f"LABEL {image.RECIPE_LABEL}={label}",
                BUILD_CONTAINER, target,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    finally:
        subprocess.run(["docker", "rm", "-f", BUILD_CONTAINER], capture_output=True, check=False)


def ensure() -> str:
    """Return the lab image's name, building it only when the base recipe or the package list changed."""
    if image.image_label(image.IMAGE) != image.recipe_hash():
        image.ensure()
    aptcache.ensure()
    names = packages()
    label = recipe(names)
    name = lab_image()
    versioned = f"{name}-{label}"
    if image.image_label(versioned) != label:
        build(versioned, names, label)
    if image.image_label(name) != label:
        subprocess.run(["docker", "tag", versioned, name], check=True)
    print(f"image: {name} is recipe {label} ({len(names)} packages)", flush=True)
    return name


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] in ("-l", "--list"):
        print("\n".join(packages()))
        return 0
    return engine.run_command("labimage", ensure)
