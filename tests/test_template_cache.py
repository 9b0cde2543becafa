"""The parsed copy of the template YAML that `template list` and completion read: used only while
every file is exactly as recorded, never trusted when damaged, never written for a file edited
just now (a second edit within one clock tick would keep the stamp)."""
from __future__ import annotations

import json
import os
import time

from segcli.core.templates import RECENT_S, template_documents

TEMPLATE = "name: t{n}\ndescription: template {n}\nparams:\n  seed:\n    type: float\n    default: {seed}\n"


def write_templates(folder, seed="17.0"):
    folder.mkdir(exist_ok=True)
    for n in (1, 2):
        (folder / f"t{n}.yaml").write_text(TEMPLATE.format(n=n, seed=seed))


def seeds(documents):
    return [doc["params"]["seed"]["default"] for _, doc in documents]


def settle():
    time.sleep(RECENT_S + 0.2)  # the files' mtime and ctime leave the "changed just now" window


def cached_templates(tmp_path):
    """(folder, cache, the cache's JSON) once two settled templates were parsed and cached."""
    folder, cache = tmp_path / "tpl", tmp_path / "cache.json"
    write_templates(folder)
    settle()
    template_documents(cache, folder=folder)
    return folder, cache, json.loads(cache.read_text())


def test_files_changed_just_now_are_not_cached(tmp_path):
    write_templates(tmp_path / "tpl")
    cache = tmp_path / "cache.json"
    assert seeds(template_documents(cache, folder=tmp_path / "tpl")) == [17.0, 17.0]
    assert not cache.exists()


def test_cache_serves_unchanged_files_and_drops_a_same_size_edit_with_its_mtime_put_back(tmp_path):
    folder, cache, doc = cached_templates(tmp_path)
    doc["documents"][0]["description"] = "from the cache"   # proves where the next answer comes from
    cache.write_text(json.dumps(doc))
    assert template_documents(cache, folder=folder)[0][1]["description"] == "from the cache"

    edited = folder / "t1.yaml"
    before = edited.stat()
    edited.write_text(TEMPLATE.format(n=1, seed="99.0"))               # same size, new content
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))       # mtime put back (cp -p, touch -r)
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
