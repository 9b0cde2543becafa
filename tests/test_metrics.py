"""ConfusionMatrix against an independent, per-class-loop version of HF `evaluate.mean_iou`."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from segcli.core.metrics import ConfusionMatrix

IGNORE = 255


def reference_mean_iou(preds, targets, num_classes, ignore_index=IGNORE):
    """Straightforward HF `mean_iou`: areas summed over the dataset, then per-class ratios."""
    inter = [0] * num_classes
    area_pred = [0] * num_classes
    area_label = [0] * num_classes
    for pred, target in zip(preds, targets):
        for p, t in zip(np.ravel(pred).tolist(), np.ravel(target).tolist()):
            if t == ignore_index:
                continue
            area_pred[p] += 1
            area_label[t] += 1
            if p == t:
                inter[p] += 1
    iou, acc = [], []
    for c in range(num_classes):
        union = area_pred[c] + area_label[c] - inter[c]
        iou.append(inter[c] / union if union else math.nan)
        acc.append(inter[c] / area_label[c] if area_label[c] else math.nan)
    valid_iou = [v for v in iou if not math.isnan(v)]
    valid_acc = [v for v in acc if not math.isnan(v)]
    return {
        "mIoU": sum(valid_iou) / len(valid_iou),
        "mAcc": sum(valid_acc) / len(valid_acc),
        "aAcc": sum(inter) / sum(area_label),
        "iou": iou,
        "acc": acc,
    }


def run(preds, targets, num_classes, names=None):
    cm = ConfusionMatrix(num_classes, ignore_index=IGNORE)
    for p, t in zip(preds, targets):
        cm.update(np.asarray(p, dtype=np.uint8), np.asarray(t, dtype=np.uint8))
    return cm.compute(names)


def assert_matches(result, ref, names):
    assert result["mIoU"] == pytest.approx(ref["mIoU"])
    assert result["mAcc"] == pytest.approx(ref["mAcc"])
    assert result["aAcc"] == pytest.approx(ref["aAcc"])
    for name, iou, acc in zip(names, ref["iou"], ref["acc"]):
        got = result["per_class"][name]
        assert (got["iou"] is None) == math.isnan(iou)
        assert (got["acc"] is None) == math.isnan(acc)
        if not math.isnan(iou):
            assert got["iou"] == pytest.approx(iou)
        if not math.isnan(acc):
            assert got["acc"] == pytest.approx(acc)


NAMES = ["background", "cat", "dog", "bird"]


def test_class_absent_everywhere_is_nan_and_excluded_from_mean():
    target = [[0, 0, 1, 1], [0, 2, 2, 1]]
    pred = [[0, 1, 1, 1], [0, 2, 0, 1]]  # "bird" (3) neither labelled nor predicted
    result = run([pred], [target], 4, NAMES)
    assert result["per_class"]["bird"] == {"iou": None, "acc": None, "precision": None, "recall": None}
    # background 2/4, cat 3/4, dog 1/2 -> mean over three classes, not four
    assert result["mIoU"] == pytest.approx((2 / 4 + 3 / 4 + 1 / 2) / 3)
    assert_matches(result, reference_mean_iou([pred], [target], 4), NAMES)


def test_precision_recall_and_confusion_by_hand():
    # ground truth / prediction, ignore (255) skipped:
    #   background: 3 px -> predicted bg, bg, cat      cat: 3 px -> cat, cat, dog
    #   dog: 2 px -> dog, bg                           one ignore pixel predicted as cat
    target = [[0, 0, 0, 1, 1, 1, 2, 2, 255]]
    pred = [[0, 0, 1, 1, 1, 2, 2, 0, 1]]
    result = run([pred], [target], 4, NAMES)
    assert result["confusion"] == {"classes": NAMES, "matrix": [[2, 1, 0, 0], [0, 2, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]]}
    cat = result["per_class"]["cat"]
    assert cat["precision"] == pytest.approx(2 / 3)  # 3 predicted cat (ignore not counted), 2 right
    assert cat["recall"] == cat["acc"] == pytest.approx(2 / 3)
    dog = result["per_class"]["dog"]
    assert dog["precision"] == pytest.approx(1 / 2) and dog["recall"] == pytest.approx(1 / 2)
    assert result["per_class"]["background"]["precision"] == pytest.approx(2 / 3)
    assert result["per_class"]["bird"]["precision"] is None  # never predicted
    json.dumps(result)  # JSON-safe as eval prints it


def test_predicted_but_absent_class_scores_zero_iou_and_counts():
    target = [[0, 0, 1, 1]]
    pred = [[0, 3, 1, 1]]  # "bird" predicted, never labelled
    result = run([pred], [target], 4, NAMES)
    assert result["per_class"]["bird"] == {"iou": 0.0, "acc": None, "precision": 0.0, "recall": None}
    assert result["mIoU"] == pytest.approx((1 / 2 + 1 + 0) / 3)  # bird's 0 pulls the mean down
    assert result["mAcc"] == pytest.approx((1 / 2 + 1) / 2)  # acc NaN stays out
    assert_matches(result, reference_mean_iou([pred], [target], 4), NAMES)


def test_ignore_pixels_are_excluded():
    target = [[0, 1, IGNORE, IGNORE]]
    pred = [[0, 1, 2, 1]]  # wrong only where ignored
    result = run([pred], [target], 4, NAMES)
    assert result["mIoU"] == 1.0 and result["aAcc"] == 1.0
    assert result["per_class"]["dog"] == {"iou": None, "acc": None, "precision": None, "recall": None}
    assert_matches(result, reference_mean_iou([pred], [target], 4), NAMES)


def test_one_matrix_over_the_dataset_not_a_mean_of_images():
    # image 1: cat perfect on 1 pixel; image 2: cat 1 of 3 right. Per-image means would differ.
    preds = [[[1, 0]], [[1, 0, 0, 0]]]
    targets = [[[1, 0]], [[1, 1, 1, 0]]]
    result = run(preds, targets, 2, ["background", "cat"])
    assert_matches(result, reference_mean_iou(preds, targets, 2), ["background", "cat"])
    assert result["per_class"]["cat"]["iou"] == pytest.approx(2 / 4)


def test_out_of_range_labels_raise():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="target"):
        cm.update(np.array([0, 1]), np.array([0, 7]))
    with pytest.raises(ValueError, match="prediction"):
        cm.update(np.array([0, 9]), np.array([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros((2, 2)), np.zeros((2, 3)))


def test_result_is_strict_json_and_empty_matrix_is_none():
    result = run([[[0, 3]]], [[[0, 0]]], 4, NAMES)
    json.dumps(result, allow_nan=False)
    empty = ConfusionMatrix(2).compute()
    assert empty["mIoU"] is None and empty["aAcc"] is None
    assert set(empty["per_class"]) == {"0", "1"}


def test_update_is_vectorised_enough():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 20, (8, 512, 512), dtype=np.uint8)
    target = rng.integers(0, 20, (8, 512, 512), dtype=np.uint8)
    cm = ConfusionMatrix(20)
    cm.update(pred, target)
    assert cm.matrix.sum() == pred.size


labels = st.integers(min_value=0, max_value=3)
pixels = st.lists(st.tuples(labels, st.one_of(labels, st.just(IGNORE))), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(images=st.lists(pixels, min_size=1, max_size=3))
def test_matches_reference_on_random_data(images):
    preds = [[p for p, _ in img] for img in images]
    targets = [[t for _, t in img] for img in images]
    if all(t == IGNORE for img in targets for t in img):
        return  # nothing labelled: the reference divides by zero; covered by the empty test
    result = run(preds, targets, 4, NAMES)
    assert_matches(result, reference_mean_iou(preds, targets, 4), NAMES)
