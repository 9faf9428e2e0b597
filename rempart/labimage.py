"""The lab hosts' images: the base image with the packages the roles install, in two layers.

A first converge of the lab installed the same packages on all its machines at once (aide-common's
configuration alone runs ucf for each of its 211 files, rkhunter makes its first database), then each
function's packages one play after the other (about 200 s). These images pay that once, when they are
built; a second ``make lab`` finds them and builds nothing.

What they hold is derived, never listed. **Every host's layer** (``lab_host_image``): the roles that a
play for ``hosts: all`` of ``playbooks/site.yml`` (and the playbooks it imports) applies to every host
(not those given a ``when:``, nor those whose ``tasks/main.yml`` ends a host early: they choose their
hosts, as postgresql_client keeps to the hosts the flow matrix lets reach PostgreSQL). **Each host's
functions' layer**, over it: the roles of the plays whose ``hosts:`` is a plain union of groups that
hold the host (``etcd:db:backup_repository``); hosts with the same packages share one image.

Of each role, its lists of package names in ``defaults/main.yml`` or ``vars/main.yml`` under a name
that ends in ``packages`` or ``packages_always``, rendered from the role's variables and the lab
inventory's (as Ansible ranks them); a list that needs the host (a fact, a group, a filter of
Ansible's: wireguard-go only without the kernel module) stays the role's job, as do lists of packages
a role removes. The files a role writes before its packages (``__<role>_before_packages``) are
written first in the image too. The roles still install whatever is missing: the images save time,
they decide nothing.

The molecule scenarios keep the bare base image, so each role's installation is tested from a fresh
server there; the lab tests what the roles make of a server that already has the packages, as on a
host that is converged again.

Each image is tagged ``<lab_host_image>-<hash>``, the hash covering the layer below, the build script,
the files written first and the package list, and is rebuilt only when that hash has no image; each
host's image is tagged as ``lab_machine.image`` (``playbooks/lab/vars.yml``) names it.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

import yaml
from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.nativetypes import NativeEnvironment

from rempart import aptcache, engine, image, topology

REPO = Path(__file__).resolve().parent.parent
PLAYBOOKS = REPO / "playbooks"
ROLES = REPO / "roles"
LAB_VARS = PLAYBOOKS / "lab" / "vars.yml"
LAB_INVENTORY = topology.INVENTORIES / "lab"
BUILD_CONTAINER = "rempart-lab-image-build"
# A list named like this declares packages a role installs; the names of lists it removes say so.
PACKAGE_LIST = re.compile(r"^(?:[a-z0-9]+_)*packages(?:_always)?$")
REMOVED = re.compile(r"absent|remove|purge")
# Files (entries of module rempart_files) a role writes before it installs its packages, so that the
# packages' installation does what the role wants (role patroni: no cluster of Debian's). Written first in the image too.
BEFORE_PACKAGES = "before_packages"
# What a variable that cannot be rendered without a host raises (a fact, a group, a filter of Ansible's).
UNRENDERED = (TemplateError, KeyError, TypeError, ValueError, RecursionError)
_JINJA = NativeEnvironment(undefined=StrictUndefined)
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


def _plain_groups(pattern: object) -> set[str] | None:
    """The groups a play's ``hosts:`` names when it is a plain union (``a:b`` or ``a,b``), else None (a
    pattern with ``!``, ``&``, a wildcard or a template is left to the run)."""
    parts = re.split(r"[:,]", str(pattern).strip())
    return set(parts) if all(re.fullmatch(r"[A-Za-z0-9_-]+", part) for part in parts) else None


def _play_roles(play: dict, roles: list[str], roles_dir: Path) -> None:
    """Add to ``roles`` those the play applies to each of its hosts (not given a ``when:``, not choosing their hosts)."""
    for role in play.get("roles", []):
        entry = {"role": role} if isinstance(role, str) else role
        name = entry.get("role") or entry.get("name")
        if name and name not in roles and not entry.get("when") and not _chooses_its_hosts(name, roles_dir):
            roles.append(name)


def every_host_roles(site: Path = PLAYBOOKS / "site.yml", roles_dir: Path = ROLES) -> list[str]:
    """The roles every host gets, in the order the site playbook applies them."""
    roles: list[str] = []
    for play in _plays(site):
        if _plain_groups(play.get("hosts", "")) == {"all"} and not play.get("when"):
            _play_roles(play, roles, roles_dir)
    return roles


def function_roles(groups: list[str], site: Path = PLAYBOOKS / "site.yml", roles_dir: Path = ROLES) -> list[str]:
    """The roles a host of these inventory groups gets from the plays for some groups only (``hosts: db``,
    ``hosts: etcd:db:backup_repository``), in the order the site playbook applies them."""
    roles: list[str] = []
    for play in _plays(site):
        named = _plain_groups(play.get("hosts", ""))
        if named and "all" not in named and named & set(groups) and not play.get("when"):
            _play_roles(play, roles, roles_dir)
    return roles


def _yaml(path: Path) -> dict:
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def _var_files(place: Path) -> list[Path]:
    """The files of a ``group_vars/`` or ``host_vars/`` entry: NAME, NAME.yml, NAME.yaml, or NAME/*.yml."""
    if place.is_dir():
        return sorted(path for path in place.iterdir() if path.suffix in (".yml", ".yaml"))
    return [path for path in (place, place.with_name(place.name + ".yml"), place.with_name(place.name + ".yaml")) if path.is_file()]


def inventory_variables(groups: list[str], host: str | None = None, inventory: Path = LAB_INVENTORY) -> dict:
    """What the inventory sets for a host of these groups: group_vars/all, then its groups', then its own."""
    found: dict = {}
    places = [inventory / "group_vars" / "all", *(inventory / "group_vars" / group for group in groups)]
    for place in places + ([inventory / "host_vars" / host] if host else []):
        for path in _var_files(place):
            found.update(_yaml(path))
    return found


def role_variables(role: str, roles_dir: Path = ROLES, overrides: dict | None = None) -> dict:
    """A role's variables ranked as Ansible ranks them: its defaults, the inventory's over them, its vars over both."""
    return {
        **_yaml(roles_dir / role / "defaults" / "main.yml"),
        **(overrides or {}),
        **_yaml(roles_dir / role / "vars" / "main.yml"),
    }


def render(value: object, variables: dict, depth: int = 0) -> object:
    """``value`` with its templates rendered from ``variables`` alone. Raises one of UNRENDERED when a template
    needs more (a fact, a group, a lookup, a filter of Ansible's): such a value depends on the host."""
    if depth > 20:
        raise RecursionError("variables refer to each other")
    if isinstance(value, list):
        return [render(item, variables, depth) for item in value]
    if isinstance(value, dict):
        return {key: render(item, variables, depth) for key, item in value.items()}
    if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
        return value
    names = meta.find_undeclared_variables(_JINJA.parse(value))
    used = {name: render(variables[name], variables, depth + 1) for name in names if name in variables}
    return _JINJA.from_string(value).render(used)


def _own_lists(role: str, roles_dir: Path) -> list[str]:
    """The role's own variables whose name says they list packages it installs."""
    names: list[str] = []
    for part in ("defaults", "vars"):
        for name in _yaml(roles_dir / role / part / "main.yml"):
            own, _, rest = name.lstrip("_").partition(role + "_")
            if not own and PACKAGE_LIST.match(rest) and not REMOVED.search(name) and name not in names:
                names.append(name)
    return names


def role_packages(role: str, roles_dir: Path = ROLES, overrides: dict | None = None) -> list[str]:
    """The package names a role declares (see the module's docstring), with the inventory's ``overrides``."""
    variables = role_variables(role, roles_dir, overrides)
    packages: list[str] = []
    for name in _own_lists(role, roles_dir):
        try:
            value = render(variables[name], variables)
        except UNRENDERED:
            continue
        if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
            packages += [item for item in value if item not in packages]
    return packages


def before_packages(role: str, roles_dir: Path = ROLES, overrides: dict | None = None) -> list[dict] | None:
    """The files the role writes before it installs its packages (``__<role>_before_packages``), or None
    when the image cannot write them as the role does (a template that needs the host, an owner other
    than root, a link): the role's packages are then left to the run."""
    variables = role_variables(role, roles_dir, overrides)
    name = f"__{role}_{BEFORE_PACKAGES}"
    if name not in variables:
        return []
    try:
        entries = render(variables[name], variables)
    except UNRENDERED:
        return None
    for entry in entries if isinstance(entries, list) else [None]:
        if not (
            isinstance(entry, dict)
            and str(entry.get("path", "")).startswith("/")
            and set(entry) <= {"path", "state", "content", "mode", "owner", "group"}
            and {entry.get("owner", "root"), entry.get("group", "root")} == {"root"}
            and (entry.get("state") == "directory" or (entry.get("state", "present") == "present" and isinstance(entry.get("content"), str)))
        ):
            return None
    return entries


def prepare_script(files: list[dict]) -> str:
    """Shell steps that write ``files`` as module rempart_files does (root's, 0644 or 0755 unless a mode is given)."""
    steps = []
    for entry in files:
        path = shlex.quote(entry["path"])
        if entry.get("state") == "directory":
            steps.append(f"install -d -m {shlex.quote(str(entry.get('mode') or '0755'))} {path}")
        else:
            steps.append(
                f"printf '%s' {shlex.quote(entry['content'])} > {path} && chmod {shlex.quote(str(entry.get('mode') or '0644'))} {path}"
            )
    return "".join(f"{step}; " for step in steps)


def layer(roles: list[str], overrides: dict, roles_dir: Path = ROLES) -> tuple[list[str], list[dict]]:
    """The packages of these roles and the files written before them (a role whose files cannot be written is left out)."""
    names: list[str] = []
    files: list[dict] = []
    for role in roles:
        prepared = before_packages(role, roles_dir, overrides)
        if prepared is None:
            continue
        files += prepared
        names += [name for name in role_packages(role, roles_dir, overrides) if name not in names]
    return sorted(names), files


def every_host_layer() -> tuple[list[str], list[dict]]:
    """Every host's packages and the files written before them: the lab hosts' image (``lab_host_image``)."""
    return layer(every_host_roles(), inventory_variables([]))


def packages() -> list[str]:
    """Every host's packages."""
    return every_host_layer()[0]


def host_layers(inventory: Path = LAB_INVENTORY) -> dict[str, tuple[list[str], list[dict]]]:
    """Per host of the lab, what its functions' roles add to every host's image: packages, files written first."""
    try:
        lab = topology.check(inventory / topology.TOPOLOGY_FILE)
    except topology.TopologyError as exc:
        raise engine.EngineError(str(exc)) from None
    every = set(packages())
    layers = {}
    for host in lab["hosts"]:
        groups = topology.inventory_groups(lab, host)
        names, files = layer(function_roles(groups), inventory_variables(groups, host, inventory))
        layers[host] = ([name for name in names if name not in every], files)
    return layers


def host_image(host: str) -> str:
    """The image a lab host runs: the lab's ``lab_machine.image`` (playbooks/lab/vars.yml) for that host."""
    lab_vars = yaml.safe_load(LAB_VARS.read_text(encoding="utf-8"))
    return str(render(lab_vars["lab_machine"]["image"], {**lab_vars, "inventory_hostname": host}))


def recipe(names: list[str], base: str | None = None, prepare: str = "") -> str:
    digest = hashlib.sha256()
    for part in (base or image.recipe_hash(), BUILD_SCRIPT, prepare, "\n".join(names)):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:12]


def build(jobs: dict[str, tuple[list[str], str, str]], base: str, users: dict[str, list[str]]) -> None:
    """Build the images ``jobs`` names (target: packages, files' script, recipe label) from ``base``, at once.

    Each installs its packages in a container of ``base`` (through the package cache), then is committed.
    The container does not boot: packages are set up as in mmdebstrap's chroot, their services enabled
    but not started, so nothing of a running machine (machine id, SSH host keys, journal) ends up in it.
    """
    running = {}
    with tempfile.TemporaryDirectory(prefix="rempart-labimage-") as logs:
        for target, (names, prepare, label) in jobs.items():
            container = f"{BUILD_CONTAINER}-{label}"
            subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)
            print(f"image: building {target} for {', '.join(users[target])} ({len(names)} packages)", flush=True)
            log = open(Path(logs) / label, "w+", encoding="utf-8")  # noqa: SIM115 - closed below, after the wait
            command = [
                "docker", "run", "--name", container,
                "--add-host", "host.docker.internal:host-gateway",
                "-v", f"{aptcache.proxy_conf_path()}:/etc/apt/apt.conf.d/01rempart-lab-proxy:ro",
                base, "sh", "-c", prepare + BUILD_SCRIPT, "install", *names,
            ]
            running[target] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log, container, label)
        try:
            failed = []
            for target, (process, log, container, label) in running.items():
                if process.wait() != 0:
                    log.seek(0)
                    print(f"image: {target} failed:\n{log.read()}", flush=True)
                    failed.append(subprocess.CalledProcessError(process.returncode, f"docker run ({target})"))
                    continue
                subprocess.run(
                    [
                        "docker", "commit",
                        "--change", 'CMD ["/lib/systemd/systemd"]',
                        "--change", f"LABEL {image.RECIPE_LABEL}={label}",
                        container, target,
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            if failed:
                raise failed[0]
        finally:
            for process, log, container, _ in running.values():
                process.wait()
                log.close()
                subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


def _tag(source: str, name: str) -> None:
    if image.image_label(name) != image.image_label(source):
        subprocess.run(["docker", "tag", source, name], check=True)


def ensure() -> dict[str, str]:
    """Build what changed: every host's image, then each function's layer over it; tag each lab host's image.
    Returns the image of each lab host."""
    if image.image_label(image.IMAGE) != image.recipe_hash():
        image.ensure()
    aptcache.ensure()
    name = lab_image()
    names, files = every_host_layer()
    prepare = prepare_script(files)
    label = recipe(names, prepare=prepare)
    versioned = f"{name}-{label}"
    if image.image_label(versioned) != label:
        build({versioned: (names, prepare, label)}, image.IMAGE, {versioned: ["every host"]})
    _tag(versioned, name)
    print(f"image: {name} is recipe {label} ({len(names)} packages)", flush=True)

    chosen: dict[str, str] = {}
    jobs: dict[str, tuple[list[str], str, str]] = {}
    users: dict[str, list[str]] = {}
    for host, (extra, before) in host_layers().items():
        chosen[host] = name
        if extra or before:
            prepare = prepare_script(before)
            own = recipe(extra, base=label, prepare=prepare)
            chosen[host] = f"{name}-{own}"
            if image.image_label(chosen[host]) != own:
                jobs[chosen[host]] = (extra, prepare, own)
        users.setdefault(chosen[host], []).append(host)
    if jobs:
        build(jobs, name, users)
    for host, source in chosen.items():
        _tag(source, host_image(host))
    for source, hosts in users.items():
        print(f"image: {', '.join(hosts)} run {source}", flush=True)
    return chosen


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] in ("-l", "--list"):
        print("every host:", " ".join(packages()))
        for host, (extra, before) in host_layers().items():
            print(f"{host}:", " ".join(extra), "".join(f" (before: {entry['path']})" for entry in before))
        return 0
    return engine.run_command("labimage", ensure)
