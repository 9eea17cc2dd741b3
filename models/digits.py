"""The embedded default data set: scikit-learn's 1,797 8x8 handwritten digits, fixed split."""

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

__all__ = ["Digits", "load", "quantize_images", "SPLIT_SEED"]

SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Digits:
    """Images quantized to 0..127 (int8 [N, 1, 8, 8], the first layer's input, docs/conventions.md) and labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def quantize_images(pixels):
    """Digits pixels 0..16 -> int8 0..127 (round half up)."""
    return np.floor(pixels.astype(np.float64) * 127 / 16 + 0.5).astype(np.int8)


def load():
    """The fixed stratified 80/20 split (seed SPLIT_SEED); no download: the data ships in scikit-learn."""
    digits = load_digits()
    images = quantize_images(digits.images)[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int64), test_size=TEST_FRACTION, random_state=SPLIT_SEED,
        stratify=digits.target)
    return Digits(x_train, y_train, x_test, y_test)
