"""The parsed copy of the template YAML that `template list` and completion read: used only while
every file is exactly as recorded, never trusted when damaged, never written for a file edited
just now (a second edit within one clock tick would keep the stamp)."""

from __future__ import annotations

import json
import os
import time

import pytest

from segcli.core.stamps import Stamp
from segcli.core.templates import template_documents

TEMPLATE = "name: t{n}\ndescription: template {n}\nparams:\n  seed:\n    type: float\n    default: {seed}\n"


def write_templates(folder, seed="17.0"):
    folder.mkdir(exist_ok=True)
    for n in (1, 2):
        (folder / f"t{n}.yaml").write_text(TEMPLATE.format(n=n, seed=seed))


def seeds(documents):
    return [doc["params"]["seed"]["default"] for _, doc in documents]


def settle(folder):
    """Return once every file's stamp is out of the racy window (core/stamps.py): polls the
    clock against the rule itself, so a file system stamping in whole seconds waits longer."""
    stamps = [Stamp.of(p.stat()) for p in folder.glob("*.yaml")]
    deadline = time.monotonic() + 10
    while any(s.racy(time.time_ns()) for s in stamps):
        assert time.monotonic() < deadline, "the clock did not move past the racy window"
        time.sleep(0.01)


def cached_templates(tmp_path):
    """(folder, cache, the cache's JSON) once two settled templates were parsed and cached."""
    folder, cache = tmp_path / "tpl", tmp_path / "cache.json"
    write_templates(folder)
    settle(folder)
    template_documents(cache, folder=folder)
    return folder, cache, json.loads(cache.read_text())


def test_files_changed_just_now_are_not_cached(tmp_path):
    write_templates(tmp_path / "tpl")
    cache = tmp_path / "cache.json"
    assert seeds(template_documents(cache, folder=tmp_path / "tpl")) == [17.0, 17.0]
    assert not cache.exists()


def test_cache_serves_unchanged_files_and_drops_a_same_size_edit_with_its_mtime_put_back(tmp_path):
    folder, cache, doc = cached_templates(tmp_path)
    doc["documents"][0]["description"] = "from the cache"  # proves where the next answer comes from
    cache.write_text(json.dumps(doc))
    assert template_documents(cache, folder=folder)[0][1]["description"] == "from the cache"

    edited = folder / "t1.yaml"
    before = edited.stat()
    edited.write_text(TEMPLATE.format(n=1, seed="99.0"))  # same size, new content
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back (cp -p, touch -r)
    assert edited.stat().st_size == before.st_size and edited.stat().st_mtime_ns == before.st_mtime_ns
    documents = template_documents(cache, folder=folder)
    assert seeds(documents) == [99.0, 17.0] and documents[0][1]["description"] == "template 1"


def test_a_damaged_cache_only_means_parsing_the_yaml(tmp_path):
    folder, cache, doc = cached_templates(tmp_path)
    for damaged in ([None, None], [{"no": "name"}, {"name": 3}], "documents", [1]):
        cache.write_text(json.dumps({**doc, "documents": damaged}))
        assert seeds(template_documents(cache, folder=folder, write=False)) == [17.0, 17.0]
    cache.write_text("{not json")
    assert seeds(template_documents(cache, folder=folder)) == [17.0, 17.0]
    assert json.loads(cache.read_text())["documents"][0]["name"] == "t1"  # rewritten whole


def test_shared_params_are_spliced_in_and_their_file_is_part_of_the_stamp(tmp_path):
    folder, cache = tmp_path / "tpl", tmp_path / "cache.json"
    folder.mkdir()
    (folder / "t1.yaml").write_text("name: t1\nparams:\n  lr:\n    type: number\n    default: 1\n  seed: shared\n")
    (folder / "_shared.yaml").write_text("params:\n  seed:\n    type: number\n    default: 17.0\n")
    settle(folder)
    documents = template_documents(cache, folder=folder)
    assert [path.name for path, _ in documents] == ["t1.yaml"]  # _shared.yaml is no template
    assert list(documents[0][1]["params"]) == ["lr", "seed"] and seeds(documents) == [17.0]
    assert cache.exists()

    (folder / "_shared.yaml").write_text("params:\n  seed:\n    type: number\n    default: 99.0\n")
    assert seeds(template_documents(cache, folder=folder)) == [99.0]  # the cached copy is not used


def test_a_shared_param_missing_from_the_shared_file_is_an_error(tmp_path):
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "t1.yaml").write_text("name: t1\nparams:\n  seed: shared\n")
    (folder / "_shared.yaml").write_text("params: {}\n")
    with pytest.raises(ValueError, match="seed is 'shared'"):
        template_documents(folder=folder)
