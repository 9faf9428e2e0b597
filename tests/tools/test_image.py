"""The lab base image is rebuilt exactly when its recipe changes."""

from __future__ import annotations

import shutil

from rempart import image


def test_recipe_hash_is_stable_and_follows_every_recipe_file(tmp_path):
    recipe = tmp_path / "image"
    shutil.copytree(image.RECIPE_DIR, recipe)
    first = image.recipe_hash(recipe)
    assert first == image.recipe_hash(recipe)
    assert first == image.recipe_hash()  # the copy is the recipe
    for path in image.recipe_files(recipe):
        original = path.read_bytes()
        path.write_bytes(original + b"\n# changed\n")
        assert image.recipe_hash(recipe) != first, path.name
        path.write_bytes(original)
    assert image.recipe_hash(recipe) == first


def test_recipe_has_what_the_lab_relies_on():
    packages = set(image.packages())
    assert {"systemd", "systemd-sysv", "python3", "openssh-server", "sudo", "iproute2"} <= packages
    assert any("-security" in line for line in image.sources())


# The lab hosts' image (rempart/labimage.py): what every host's roles install, derived from the roles.

def test_lab_image_packages_are_those_the_roles_every_host_gets_declare():
    from rempart import labimage  # noqa: PLC0415 - needs PyYAML, which the base image's module must not

    roles = labimage.every_host_roles()
    assert {"common", "sshd", "baseline", "wireguard", "firewall", "pki"} <= set(roles)
    assert not {"patroni", "etcd", "waf", "app"} & set(roles)  # roles of some functions only
    # applied to all hosts, but its tasks end the hosts that are no PostgreSQL client: not every host's
    assert "postgresql_client" not in roles
    packages = set(labimage.packages())
    # the slow ones a first converge installed everywhere: the baseline's, common's, pki's
    assert {"aide-common", "rkhunter", "auditd", "chrony", "locales", "python3-cryptography"} <= packages
    # lists a template computes per host stay the role's job; lists of packages removed are never installed
    assert not {"usbguard", "wireguard-go"} & packages
    # a list computed from the role's variables alone is read, as the lab inventory sets them
    assert "unattended-upgrades" in packages
    overrides = {**labimage.inventory_variables([]), "common_unattended_upgrades_enabled": False}
    assert "unattended-upgrades" not in labimage.role_packages("common", overrides=overrides)
    import yaml  # noqa: PLC0415

    removed = yaml.safe_load((labimage.ROLES / "baseline/defaults/main.yml").read_text(encoding="utf-8"))["baseline_absent_packages"]
    assert not {entry["name"] for entry in removed} & packages


def test_lab_image_reads_plain_package_lists_of_the_role_itself_only(tmp_path):
    from rempart import labimage  # noqa: PLC0415

    (tmp_path / "demo/defaults").mkdir(parents=True)
    (tmp_path / "demo/vars").mkdir(parents=True)
    (tmp_path / "demo/defaults/main.yml").write_text(
        "demo_admin_packages: [jq, curl]\ndemo_absent_packages: [telnet]\ndemo_extra_packages: []\n"
        "other_packages: [nano]\ndemo_packages_note: [not, a, list, of, packages]\n", encoding="utf-8")
    (tmp_path / "demo/vars/main.yml").write_text(
        "__demo_packages_always: [aide, jq]\n__demo_packages: \"{{ __demo_packages_always + ['x'] }}\"\n"
        "__demo_removed_packages: [rsh-client]\n__demo_packages_by_host: [{name: a}]\n", encoding="utf-8")
    assert labimage.role_packages("demo", tmp_path) == ["jq", "curl", "aide", "x"]
    # a role whose name has an underscore, beside a role whose name starts like it
    (tmp_path / "demo_client/vars").mkdir(parents=True)
    (tmp_path / "demo_client/vars/main.yml").write_text("__demo_client_packages: [psql]\n", encoding="utf-8")
    assert labimage.role_packages("demo_client", tmp_path) == ["psql"]
    assert labimage.role_packages("demo", tmp_path) == ["jq", "curl", "aide", "x"]


def test_lab_image_renders_what_the_role_and_the_inventory_say_and_leaves_what_needs_a_host(tmp_path):
    from rempart import labimage  # noqa: PLC0415

    (tmp_path / "demo/defaults").mkdir(parents=True)
    (tmp_path / "demo/vars").mkdir(parents=True)
    (tmp_path / "demo/defaults/main.yml").write_text("demo_version: 15\ndemo_extra: []\n", encoding="utf-8")
    (tmp_path / "demo/vars/main.yml").write_text(
        "__demo_packages: ['server-{{ demo_version }}', tool]\n"
        "__demo_packages_always: \"{{ ['base'] + demo_extra }}\"\n"
        "__demo_host_packages: \"{{ ['kmod'] if ansible_facts.virtualization_type == 'docker' else [] }}\"\n"
        "__demo_group_packages: \"{{ groups['db'] | map('regex_replace', 'x', 'y') | list }}\"\n", encoding="utf-8")
    assert labimage.role_packages("demo", tmp_path) == ["server-15", "tool", "base"]
    # the inventory's value wins over the role's defaults, never over its vars
    assert labimage.role_packages("demo", tmp_path, {"demo_version": 16, "demo_extra": ["more"]}) == ["server-16", "tool", "base", "more"]
    (tmp_path / "demo/vars/main.yml").write_text("__demo_packages: [a]\n", encoding="utf-8")
    assert labimage.role_packages("demo", tmp_path, {"__demo_packages": ["b"]}) == ["a"]


def test_each_lab_host_s_functions_layer_holds_its_roles_packages_and_every_host_s_only_once():
    from rempart import labimage  # noqa: PLC0415

    layers = labimage.host_layers()
    every = set(labimage.packages())
    assert layers["bastion1"] == ([], [])  # its functions add nothing: it runs every host's image
    db, before = layers["db1"]
    assert {"postgresql-15", "patroni", "etcd-server", "pgbackrest"} <= set(db)
    assert not {"nginx", "prometheus", "keepalived"} & set(db)
    assert not every & set(db)
    # postgresql_client chooses its hosts: its list stays the run's
    assert "postgresql-client" not in db and "postgresql-client" not in layers["app1"][0]
    # Patroni's word to PostgreSQL's package (no cluster of Debian's) is written before it in the image too
    assert any("create_main_cluster = false" in entry.get("content", "") for entry in before)
    assert {"nginx", "modsecurity-crs", "keepalived"} <= set(layers["waf1"][0])
    assert {"prometheus", "prometheus-alertmanager", "etcd-server", "pgbackrest"} <= set(layers["mon1"][0])
    assert layers["db1"] == layers["db2"] and layers["waf1"] == layers["waf2"]  # one image for both
    assert labimage.host_image("db1") == labimage.lab_image() + "-db1"


def test_function_roles_follow_plain_unions_of_groups_only(tmp_path):
    from rempart import labimage  # noqa: PLC0415

    for role in ("a", "b", "c", "d"):
        (tmp_path / "roles" / role / "tasks").mkdir(parents=True)
        (tmp_path / "roles" / role / "tasks/main.yml").write_text("- ansible.builtin.debug: {msg: hi}\n", encoding="utf-8")
    (tmp_path / "site.yml").write_text(
        "- {hosts: 'db:etcd', roles: [a]}\n- {hosts: 'db:!etcd', roles: [b]}\n- {hosts: all, roles: [c]}\n"
        "- {hosts: db, roles: [{role: d, when: false}]}\n", encoding="utf-8")
    assert labimage.function_roles(["env_lab", "data", "etcd"], tmp_path / "site.yml", tmp_path / "roles") == ["a"]
    assert labimage.function_roles(["env_lab", "edge", "waf"], tmp_path / "site.yml", tmp_path / "roles") == []


def test_files_written_before_the_packages_are_written_as_the_role_writes_them(tmp_path):
    import subprocess  # noqa: PLC0415

    from rempart import labimage  # noqa: PLC0415

    files = [
        {"path": str(tmp_path / "conf.d"), "state": "directory"},
        {"path": str(tmp_path / "conf.d/50-x.conf"), "content": "a = 'b'\n$HOME `x`\n"},
        {"path": str(tmp_path / "conf.d/secret"), "content": "s", "mode": "0600"},
    ]
    subprocess.run(["sh", "-c", labimage.prepare_script(files)], check=True)
    assert (tmp_path / "conf.d/50-x.conf").read_text(encoding="utf-8") == "a = 'b'\n$HOME `x`\n"
    assert oct((tmp_path / "conf.d").stat().st_mode & 0o777) == "0o755"
    assert oct((tmp_path / "conf.d/50-x.conf").stat().st_mode & 0o777) == "0o644"
    assert oct((tmp_path / "conf.d/secret").stat().st_mode & 0o777) == "0o600"


def test_a_role_whose_files_before_its_packages_the_image_cannot_write_keeps_its_packages_to_the_run(tmp_path):
    from rempart import labimage  # noqa: PLC0415

    (tmp_path / "demo/vars").mkdir(parents=True)
    for before in (
        "[{path: /etc/x, content: a, owner: postgres}]",
        "[{path: /etc/x, content: \"{{ inventory_hostname }}\"}]",
        "[{path: /etc/x, state: link, src: /etc/y}]",
        "[{path: etc/x, content: a}]",
    ):
        (tmp_path / "demo/vars/main.yml").write_text(f"__demo_packages: [a]\n__demo_before_packages: {before}\n", encoding="utf-8")
        assert labimage.before_packages("demo", tmp_path) is None, before
        assert labimage.layer(["demo"], {}, tmp_path) == ([], [])
    (tmp_path / "demo/vars/main.yml").write_text("__demo_packages: [a]\n__demo_before_packages: [{path: /etc/x, content: a}]\n", encoding="utf-8")
    assert labimage.layer(["demo"], {}, tmp_path) == (["a"], [{"path": "/etc/x", "content": "a"}])


def test_lab_image_recipe_follows_the_base_recipe_and_the_package_list():
    from rempart import labimage  # noqa: PLC0415

    names = labimage.packages()
    assert labimage.recipe(names) == labimage.recipe(list(names))
    assert labimage.recipe(names) != labimage.recipe([*names, "tmux-extra"])
    assert labimage.recipe(names) != image.recipe_hash()


def test_lab_image_recipe_follows_its_build_script(monkeypatch):
    from rempart import labimage  # noqa: PLC0415

    names = labimage.packages()
    before = labimage.recipe(names)
    monkeypatch.setattr(labimage, "BUILD_SCRIPT", labimage.BUILD_SCRIPT + "; true")
    assert labimage.recipe(names) != before
