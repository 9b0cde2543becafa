"""The one YAML loader for documents segcli did not write itself (params files, `--set` values,
the config file, template files): safe (no tags that run code) and bounded.

Safe loading alone does not bound the work: YAML aliases let 300 bytes name a list of 10^9
items (`a: &a [x, x, ...]`, `b: &b [*a, *a, ...]`, ...). Loading it is cheap, since the items
are shared, but the first thing that walks the value (a check that formats it in a message,
a JSON dump) runs for minutes and fills memory. So the node graph is measured before any
Python value is built: a document whose aliases expand it past MAX_VALUES values, or that
refers to itself, is refused as a YAMLError the callers already report in one line.
libyaml's parser is used when PyYAML has it (CSafeLoader: the same safe constructor and
resolver, ~7x faster).
"""

from __future__ import annotations

from typing import Any

import yaml  # importers import this module where they load YAML, never at start-up

MAX_VALUES = 100_000  # params and config documents hold tens; a real one never nears this


class AliasBombError(yaml.YAMLError):
    """A document whose aliases make it too large (or endless) to build."""


def safe_load(text: str) -> Any:
    """yaml.safe_load(text), refusing alias bombs and self-referring documents (AliasBombError,
    a YAMLError)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expanded_size(root) -> None:
    """Count the values the document would have with every alias written out, stopping at
    MAX_VALUES; each distinct node is measured once (memoised), so the count itself is cheap."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > MAX_VALUES:
                raise AliasBombError(
                    f"its aliases (&name, *name) expand it to more than {MAX_VALUES:,} values; "
                    "segcli refuses such a document (write the values out)"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise AliasBombError("an alias refers to a value that contains it (a document that never ends)")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
