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
    assert not {"usbguard", "wireguard-go", "unattended-upgrades"} & packages
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
    assert labimage.role_packages("demo", tmp_path) == ["jq", "curl", "aide"]
    # a role whose name has an underscore, beside a role whose name starts like it
    (tmp_path / "demo_client/vars").mkdir(parents=True)
    (tmp_path / "demo_client/vars/main.yml").write_text("__demo_client_packages: [psql]\n", encoding="utf-8")
    assert labimage.role_packages("demo_client", tmp_path) == ["psql"]
    assert labimage.role_packages("demo", tmp_path) == ["jq", "curl", "aide"]


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
