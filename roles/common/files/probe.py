# Role common, phase probe: one read-only look at the host, printed as one JSON object.
# Run as `python3 -c <this file> <request as JSON>` (tasks/probe.yml); it changes nothing, so it runs
# in check mode too. Everything later tasks decide on (install? create? restart?) comes from here,
# so that a converged host costs two module runs: this probe and the files.
import grp
import json
import os
import pwd
import subprocess
import sys
import time

request = json.loads(sys.argv[1])


def run(*argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return 127, ""
    return done.returncode, done.stdout


def os_release():
    fields = {}
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                fields[key] = value.strip('"')
    except FileNotFoundError:
        pass
    return fields


def installed(packages):
    if not packages:
        return []
    _, out = run("dpkg-query", "-W", "-f=${db:Status-Status} ${Package}\\n", *packages)
    return sorted(line.split()[1] for line in out.splitlines() if line.startswith("installed "))


def lists_age():
    # What apt's cache_valid_time looks at: the last successful update, else the lists' directory.
    for path in ("/var/lib/apt/periodic/update-success-stamp", "/var/lib/apt/lists"):
        if os.path.exists(path):
            return int(time.time() - os.stat(path).st_mtime)
    return None


def locale_known(name):
    supported = "/usr/share/i18n/SUPPORTED"
    if not os.path.exists(supported):
        return None
    with open(supported, encoding="utf-8") as handle:
        return any(line.split(" ", 1)[0] == name for line in handle)


def locale_generated(name):
    # `locale -a` spells en_US.UTF-8 as en_US.utf8.
    language, _, charset = name.partition(".")
    wanted = {name, language + "." + charset.lower().replace("-", "")} if charset else {name}
    rc, out = run("locale", "-a")
    return rc == 0 and bool(wanted & set(out.split()))


def clock_control():
    rc, out = run("systemd-detect-virt", "--container")
    container = out.strip() if rc == 0 else "none"
    bounding = 0
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("CapBnd:"):
                bounding = int(line.split()[1], 16)
    return container, container == "none" and bool(bounding >> 25 & 1)


def unit(name):
    enabled = run("systemctl", "is-enabled", "--quiet", name)[0] == 0
    active = run("systemctl", "is-active", "--quiet", name)[0] == 0
    return {"enabled": enabled, "active": active}


def shadow():
    fields = {}
    with open("/etc/shadow", encoding="utf-8") as handle:
        for line in handle:
            parts = line.rstrip("\n").split(":")
            if len(parts) > 1:
                fields[parts[0]] = parts[1]
    return fields


def accounts(names):
    passwords = shadow()
    found = {}
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        found[name] = {
            "comment": entry.pw_gecos,
            "shell": entry.pw_shell,
            "home": entry.pw_dir,
            "group": grp.getgrgid(entry.pw_gid).gr_name,
            "groups": sorted(g.gr_name for g in grp.getgrall() if name in g.gr_mem),
            "password": "locked" if passwords.get(name) == "!" else "other",
        }
    return found


def group(name):
    try:
        return {"exists": True, "members": sorted(grp.getgrnam(name).gr_mem)}
    except KeyError:
        return {"exists": False, "members": []}


container, sets_clock = clock_control()
release = os_release()
print(json.dumps({
    "codename": release.get("VERSION_CODENAME", ""),
    "timezone_known": os.path.exists("/usr/share/zoneinfo/" + request["timezone"]) or not os.path.isdir("/usr/share/zoneinfo"),
    "locale_known": locale_known(request["locale"]),
    "locale_generated": locale_generated(request["locale"]),
    "container": container,
    "may_set_clock": sets_clock,
    "installed": installed(request["packages"]),
    "lists_age": lists_age(),
    "chrony": unit("chrony"),
    "accounts": accounts(request["accounts"]),
    "admin_group": group(request["admin_group"]),
}))
