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
