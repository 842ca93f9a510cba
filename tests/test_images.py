"""The nginx image: pulled by the reference asked for, saved under the name asked for."""

from __future__ import annotations

import json
import tarfile
import uuid

import pytest

from helpers import ok, run
from lab.engine import images
from lab.engine.fake import FakeEngine


@pytest.mark.parametrize("image,repo,tag", [
    ("nginx:1.27.3@sha256:" + "a" * 64, "nginx:1.27.3", "sha256:" + "a" * 64),
    ("nginx@sha256:" + "b" * 64, "nginx", "sha256:" + "b" * 64),
    ("registry.local:5000/team/nginx:1.27", "registry.local:5000/team/nginx", "1.27"),
    ("registry.local:5000/team/nginx", "registry.local:5000/team/nginx", "latest"),
    ("nginx", "nginx", "latest"),
])
def test_pull_asks_for_the_reference_given(image, repo, tag):
    """A digest-pinned image is pulled by its digest, not as repository 'nginx:1.27.3@sha256', tag '<hex>'."""
    engine = FakeEngine()
    assert images.ensure(engine, image) is True
    assert engine.pulled == [(repo, tag)]


def _repo_tags(tar_path) -> list[str]:
    with tarfile.open(tar_path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    return [t for entry in manifest for t in (entry.get("RepoTags") or [])]


@pytest.mark.docker
def test_save_writes_the_name_asked_for_and_load_restores_it(docker_client, image, tmp_path):
    """`lab image save` with LAB_IMAGE=X:TAG carries X:TAG, whatever other tags the image has
    (Image.save(named=True) would write the first one)."""
    names = [f"labtest-{uuid.uuid4().hex[:6]}-a:one", f"labtest-{uuid.uuid4().hex[:6]}-b:two"]
    img = docker_client.images.get(image)
    try:
        for name in names:
            repo, tag = name.rsplit(":", 1)
            img.tag(repo, tag)
        for name in names:
            tar = tmp_path / f"{name.replace(':', '_')}.tar"
            ok(run("image", "save", tar, "--image", name))
            assert _repo_tags(tar) == [name]
        docker_client.images.remove(names[1])
        result = ok(run("image", "load", tmp_path / f"{names[1].replace(':', '_')}.tar"))
        assert names[1] in result.output
        assert names[1] in docker_client.images.get(image).tags
    finally:
        for name in names:
            try:
                docker_client.images.remove(name)
            except Exception:  # noqa: BLE001 - already gone
                pass
