#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Many small configuration files in one module call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rempart_files
short_description: Write (or remove) many small configuration files, their directories and links in one call
description:
  - >-
    Each file is given by its whole content (rendered on the controller, for example with
    C(lookup('ansible.builtin.template', ...))), owner, group and mode, or by C(state=absent).
    A directory (C(state=directory)) and a symbolic link (C(state=link) with C(src)) are given the same way.
  - Entries are handled in list order, so a directory comes before the files it holds.
  - >-
    A changed file is written to a temporary file next to it, checked with its C(validate) command
    when one is given, then renamed over the old one; a file that fails validation never goes live.
  - >-
    Why not M(ansible.builtin.copy) in a loop? Each loop item costs two or three remote module runs;
    a hardening role manages dozens of files, and its idempotent run must stay fast (under 20 s
    for the baseline). This module does the same checks for all files in one run.
  - Supports check mode and diff mode.
options:
  files:
    description: The files.
    type: list
    elements: dict
    required: true
    suboptions:
      path: {description: Absolute path., type: str, required: true}
      content: {description: Whole content (required when state=present)., type: str}
      src: {description: What the link points to (required when state=link)., type: str}
      owner: {description: Owner (of a file or directory)., type: str, default: root}
      group: {description: Group (of a file or directory)., type: str, default: root}
      mode: {description: Octal mode as a string (of a file or directory; default 0644 for a file, 0755 for a directory)., type: str}
      state:
        description: >-
          present (a file with this content), absent (nothing at the path, only a file or a link
          is removed), directory or link.
        type: str
        default: present
        choices: [present, absent, directory, link]
      validate: {description: Command run on the temporary file (%s) before it replaces the file., type: str}
author: Rempart maintainers
"""

EXAMPLES = r"""
- name: Configuration files of the role
  rempart_files:
    files:
      - path: /etc/sudoers.d/00-example
        content: "Defaults use_pty\n"
        mode: "0440"
        validate: visudo -cf %s
      - path: /etc/cron.deny
        state: absent
      - path: /etc/systemd/system/chrony.service.d
        state: directory
      - path: /etc/localtime
        state: link
        src: /usr/share/zoneinfo/Etc/UTC
"""

RETURN = r"""
changed_paths:
  description: >-
    Paths whose content, owner, group, mode or link target changed (or would change in check mode),
    in the order given.
  type: list
  elements: str
  returned: always
"""

import grp
import os
import pwd
import shlex
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule


def _read(path):
    """The file's content; None when there is no file (a link in its place is replaced by the file)."""
    if os.path.islink(path):
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _attributes_differ(path, uid, gid, mode):
    info = os.lstat(path)
    return info.st_uid != uid or info.st_gid != gid or stat.S_IMODE(info.st_mode) != mode


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    path=dict(type="str", required=True),
                    content=dict(type="str"),
                    src=dict(type="str"),
                    owner=dict(type="str", default="root"),
                    group=dict(type="str", default="root"),
                    mode=dict(type="str"),
                    state=dict(type="str", default="present", choices=["present", "absent", "directory", "link"]),
                    validate=dict(type="str"),
                ),
                required_if=[("state", "present", ["content"]), ("state", "link", ["src"])],
            )
        ),
        supports_check_mode=True,
    )
    changed_paths, diffs = [], []
    for spec in module.params["files"]:
        path = spec["path"]
        if not os.path.isabs(path):
            module.fail_json(msg=f"rempart_files: path {path!r} is not absolute")
        if spec["state"] == "absent":
            if os.path.lexists(path):
                if os.path.isdir(path) and not os.path.islink(path):
                    module.fail_json(msg=f"rempart_files: {path} is a directory; state=absent removes files and links only")
                changed_paths.append(path)
                diffs.append({"before_header": path, "after_header": path, "before": "(present)\n", "after": "(absent)\n"})
                if not module.check_mode:
                    os.unlink(path)
            continue
        if spec["state"] == "link":
            current_target = os.readlink(path) if os.path.islink(path) else None
            if current_target == spec["src"]:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                module.fail_json(msg=f"rempart_files: {path} is a directory, not a link to {spec['src']}")
            changed_paths.append(path)
            diffs.append({"before_header": path, "after_header": path,
                          "before": f"-> {current_target}\n" if current_target else "(no link)\n",
                          "after": f"-> {spec['src']}\n"})
            if not module.check_mode:
                temporary = os.path.join(os.path.dirname(path), f".rempart-link-{os.getpid()}")
                os.symlink(spec["src"], temporary)
                os.replace(temporary, path)
            continue
        try:
            uid = pwd.getpwnam(spec["owner"]).pw_uid
            gid = grp.getgrnam(spec["group"]).gr_gid
        except KeyError as error:
            if module.check_mode:
                # A dry run on a fresh host: the package that creates the account is not installed yet.
                changed_paths.append(path)
                continue
            module.fail_json(msg=f"rempart_files: {path}: unknown owner or group ({error})")
        directory_wanted = spec["state"] == "directory"
        mode = int(spec["mode"] or ("0755" if directory_wanted else "0644"), 8)
        if directory_wanted:
            if os.path.isdir(path) and not os.path.islink(path):
                if not _attributes_differ(path, uid, gid, mode):
                    continue
                changed_paths.append(path)
                if not module.check_mode:
                    os.chown(path, uid, gid)
                    os.chmod(path, mode)
                continue
            if os.path.lexists(path):
                module.fail_json(msg=f"rempart_files: {path} exists and is not a directory")
            changed_paths.append(path)
            diffs.append({"before_header": path, "after_header": path, "before": "(absent)\n", "after": "(directory)\n"})
            if not module.check_mode:
                os.makedirs(path, mode=mode)
                os.chown(path, uid, gid)
                os.chmod(path, mode)
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            module.fail_json(msg=f"rempart_files: {path} is a directory, not a file")
        wanted = spec["content"].encode()
        current = _read(path)
        content_differs = current != wanted
        if not content_differs and not _attributes_differ(path, uid, gid, mode):
            continue
        changed_paths.append(path)
        if content_differs:
            diffs.append({
                "before_header": path, "after_header": path,
                "before": current.decode(errors="replace") if current is not None else "",
                "after": spec["content"],
            })
        if module.check_mode:
            continue
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        if content_differs:
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".rempart-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(wanted)
                os.chown(temporary, uid, gid)
                os.chmod(temporary, mode)
                if spec["validate"]:
                    if "%s" not in spec["validate"]:
                        module.fail_json(msg=f"rempart_files: {path}: validate must contain %s")
                    command = spec["validate"].replace("%s", shlex.quote(temporary))
                    rc, out, err = module.run_command(command, use_unsafe_shell=True)
                    if rc != 0:
                        module.fail_json(msg=f"rempart_files: {path} failed validation ({spec['validate']}); "
                                             f"the file in place is unchanged: {(err or out).strip()}")
                os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        else:
            os.chown(path, uid, gid)
            os.chmod(path, mode)
    result = {"changed": bool(changed_paths), "changed_paths": changed_paths}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
