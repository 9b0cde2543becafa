"""Class order: which index means which concept, fixed once per dataset and kept everywhere.

A dataset's order is the one its first upload declared (classes.txt, --classes, COCO categories
by id, a YOLO `names` list, a VOC labelmap), background first; concepts that later uploads bring
are appended, never inserted. A dataset version copies the order; a model trained on the version
takes it (declared classes without pixels included, so index i keeps its meaning), and predicted
masks, predictions.json, the ONNX/safetensors metadata, exports, eval tables and overlay colours
all follow it. Pure Python: metadata commands import it.
"""

from __future__ import annotations

from typing import Iterable, Sequence

BACKGROUND = "background"  # class 0 of every model, label-map value 0
IGNORE_INDEX = 255  # label-map value training and metrics skip (mmseg / HF convention)
# What labelling tools call the background in their label lists (labelme2voc's `_background_`,
# CVAT's and VOC's `background`): painted or listed as class 0, never a concept.
BACKGROUND_LABELS = (BACKGROUND, "_background_")

# How a model version's classes relate to its dataset version's order (ModelVersion.class_order,
# predictions.json "class_order").
DATASET = "dataset"  # the dataset version's order, as uploaded
SUBSET = "subset"  # that order with the concepts the model was not trained on left out
LEGACY = "legacy"  # trained before segcli kept the upload's order (alphabetical concepts)
SERVER = "server"  # Clarifai's concept order: no order was recorded with the version

DESCRIPTIONS = {
    DATASET: "the dataset version's class order, as uploaded",
    SUBSET: "the dataset's class order without the concepts it was not trained on (indices renumbered)",
    LEGACY: "trained before segcli kept the upload's class order: concepts in alphabetical order",
    SERVER: "Clarifai's concept order (no class order was recorded with this version)",
}


def extend(order: Sequence[str], new: Iterable[str]) -> list[str]:
    """`order` (no background) with the names of `new` it lacks appended, in `new`'s order."""
    out = [c for c in order if c != BACKGROUND]
    seen = set(out)
    for name in new:
        if name != BACKGROUND and name not in seen:
            seen.add(name)
            out.append(name)
    return out


def with_background(order: Sequence[str], used: Iterable[str] = ()) -> list[str]:
    """Classes (background first): `order`, then any used concept it lacks, sorted (data
    uploaded before orders were recorded)."""
    known = list(extend(order, ()))
    return [BACKGROUND, *known, *sorted(set(used) - set(known) - {BACKGROUND})]


def ordered(concepts: Iterable[str], classes: Sequence[str]) -> list[str]:
    """`concepts` in the order of `classes`; names `classes` lacks follow, sorted."""
    wanted = set(concepts)
    first = [c for c in classes if c in wanted]
    return first + sorted(wanted - set(first))


def model_classes(dataset_classes: Sequence[str], used: Iterable[str], chosen: Iterable[str]) -> tuple[list[str], str]:
    """The classes a model trained on a dataset version gets, and how they relate to its order.

    Trained on every concept the version uses: the version's classes whole (declared classes
    without pixels too, so the indices are the dataset's); concepts chosen from outside the
    version follow. Trained on fewer: the chosen ones in the version's order (SUBSET)."""
    chosen = [c for c in chosen if c != BACKGROUND]
    base = (
        list(dataset_classes)
        if dataset_classes and dataset_classes[0] == BACKGROUND
        else [BACKGROUND, *dataset_classes]
    )
    if set(used) <= set(chosen):
        return base + [c for c in chosen if c not in base], DATASET
    return [BACKGROUND, *ordered(chosen, base)], SUBSET


def mapping_text(classes: Sequence[str]) -> str:
    """classes.txt: line i names index i (what segcli writes beside masks it numbers)."""
    return "".join(f"{c}\n" for c in classes)
