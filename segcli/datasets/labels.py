"""From an item's own label-map values to a model's class indices.

Every stored label map numbers its concepts its own way (value v -> concept labels[v]); a model
numbers its classes once (classes[0] = background). Training, evaluation and export all map one
to the other through the same lookup table.
"""

from __future__ import annotations

from segcli.core.classes import IGNORE_INDEX


def class_lut(labels: dict, classes: list[str]) -> list[int]:
    """lut[v] = class index for label-map value v; concepts not in `classes` become background
    (0), and the ignore value stays ignore. `labels` keys may be ints or their strings (JSON)."""
    index = {c: i for i, c in enumerate(classes)}
    lut = [0] * 256
    lut[IGNORE_INDEX] = IGNORE_INDEX
    for value, concept in labels.items():
        lut[int(value)] = index.get(concept, 0)
    return lut
