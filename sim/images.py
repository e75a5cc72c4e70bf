"""Images to simulate: the MNIST test set, ``.npy`` arrays or folders of 28x28 grayscale PNGs.

:func:`load_images` turns a count, ``"all"`` or a path into an :class:`ImageSet` (uint8
``(N, 28, 28)`` pixels, labels when known); unusable user files raise :class:`ImageError`,
whose message names the file, the problem and the expected form.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ImageError", "ImageSet", "load_images", "stress_images", "STRESS_KINDS", "STRESS_IMAGES"]

#: Kinds of :func:`stress_images`, in the order they are made.
STRESS_KINDS = ("blank", "saturated", "uniform noise", "salt and pepper", "inverted MNIST", "single pixel",
                "bars", "checkerboard", "ramp", "border")
#: Images of ``--images stress``.
STRESS_IMAGES = 1000


class ImageError(ValueError):
    """Unusable user images: the message names the file, the problem and the expected form."""


@dataclass
class ImageSet:
    """Images to simulate.

    Members
    -------
    images : numpy uint8 array (N, 28, 28)
    labels : numpy int64 array (N,) or None
        Known labels (MNIST), else None (no accuracy then).
    source : str
        Where they came from, for reports.
    """

    images: np.ndarray
    labels: np.ndarray | None
    source: str

    def __len__(self):
        return len(self.images)

    def subset(self, indices):
        idx = np.asarray(indices, dtype=np.int64)
        return ImageSet(self.images[idx], None if self.labels is None else self.labels[idx],
                        f"{self.source} [{', '.join(str(i) for i in idx[:8])}{'...' if len(idx) > 8 else ''}]")


def _check_array(arr, where) -> np.ndarray:
    """uint8 (N, 28, 28) from an array of shape (N, 28, 28) or (28, 28)."""
    arr = np.asarray(arr)
    given = tuple(arr.shape)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (28, 28):
        hint = ("; reshape flattened digits with x.reshape(-1, 28, 28)"
                if given and given[-1] == 784 and arr.ndim <= 3 else "")
        raise ImageError(f"{where}: images must have shape (N, 28, 28) or (28, 28) (raw MNIST digits), "
                         f"got {given}{hint}")
    if arr.dtype != np.uint8:
        hint = ("; convert with np.round(x * 255).astype(np.uint8) if they are floats in [0, 1]"
                if arr.dtype.kind == "f" else
                "; convert with x.astype(np.uint8) if the values are 0..255" if arr.dtype.kind in "iu" else "")
        raise ImageError(f"{where}: images must be uint8 (pixels 0..255), got dtype {arr.dtype}{hint}")
    if not len(arr):
        raise ImageError(f"{where}: no images")
    return np.ascontiguousarray(arr)


#: File signatures for messages about a file that is not what its name says.
_SIGNATURES = ((b"\x93NUMPY", "a .npy file"), (b"PK\x03\x04", "a zip archive (.npz?)"),
               (b"\x89PNG", "a PNG image"), (b"\x1f\x8b", "a gzip file"), (b"\x80", "a Python pickle"))


def _file_kind(path: Path, exc) -> str:
    """What a file that np.load refused is, from its first bytes (not numpy's pickle hint)."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if not head:
        return "the file is empty"
    if head.startswith(b"\x93NUMPY"):
        if "pickle" in str(exc).lower():
            return "a .npy file of Python objects (dtype object), not of numbers"
        return f"a damaged .npy file ({exc})"
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return f"it is {kind}"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"an unknown binary file (starts with {head[:8].hex(' ')})"
    first = text.splitlines()[0][:40] if text.strip() else ""
    return f"it is a text file (starts with {first!r}; read it with np.loadtxt)"


def _read_png(path: Path) -> np.ndarray:
    """One 8-bit grayscale PNG as uint8 (H, W), with PIL when installed (matplotlib needs it for
    PNG files anyway), else ``matplotlib.image.imread``."""
    try:
        from PIL import Image
    except ImportError:
        Image = None
    if Image is not None:
        try:
            with Image.open(path) as img:
                mode = img.mode
                if mode in ("RGB", "RGBA", "LA"):
                    arr = np.asarray(img)
                    gray = arr[..., 0]
                    color = arr[..., :3] if mode != "LA" else arr[..., :1]
                    if (mode != "LA" and np.any(color != gray[..., None])) or (
                            mode in ("RGBA", "LA") and np.any(arr[..., -1] != 255)):
                        raise ImageError(f"{path}: a {mode} image with colour or transparency; "
                                         "expected an 8-bit grayscale PNG")
                    return np.ascontiguousarray(gray)
                if mode != "L":
                    raise ImageError(f"{path}: PNG mode {mode!r}; expected 8-bit grayscale ('L')")
                return np.asarray(img).copy()
        except ImageError:
            raise
        except Exception as exc:            # PIL raises many types for broken files
            raise ImageError(f"{path}: not a readable PNG ({exc})") from None
    import matplotlib.image as mpimg
    try:
        arr = mpimg.imread(path)
    except Exception as exc:
        raise ImageError(f"{path}: not a readable PNG ({exc})") from None
    if arr.ndim == 3:
        if arr.shape[2] == 4 and np.any(arr[..., 3] != 1):
            raise ImageError(f"{path}: transparent image; expected an 8-bit grayscale PNG")
        if np.any(arr[..., :3] != arr[..., :1]):
            raise ImageError(f"{path}: colour image; expected an 8-bit grayscale PNG")
        arr = arr[..., 0]
    if arr.dtype.kind == "f":               # matplotlib scales 8-bit PNGs to [0, 1]
        scaled = arr * 255
        if np.any(np.abs(scaled - np.round(scaled)) > 1e-3):
            raise ImageError(f"{path}: not an 8-bit image (16-bit PNGs are not supported)")
        arr = np.round(scaled)
    return arr.astype(np.uint8)


def _read_png_folder(folder: Path) -> np.ndarray:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
    if not files:
        raise ImageError(f"{folder}: no .png files in this folder (expected 28x28 grayscale PNGs)")
    images = []
    for path in files:
        arr = _read_png(path)
        if arr.shape != (28, 28):
            raise ImageError(f"{path}: {arr.shape[1]}x{arr.shape[0]} pixels; expected 28x28 "
                             "(a raw MNIST-style digit, white on black)")
        images.append(arr)
    return np.stack(images)


def stress_images(count: int = STRESS_IMAGES, *, seed: int = 0, data=None) -> ImageSet:
    """Images outside MNIST's distribution, to exercise saturation, rounding and padding corners:
    ``count`` images cycling through :data:`STRESS_KINDS` -- all 0, all 255, uniform noise,
    salt and pepper, inverted MNIST test digits (``255 - p``), one pixel at 255 at a random
    position (corners and edges included), random horizontal/vertical bars, checkerboards of
    random period, ramps, and a frame on the image border. No labels. Deterministic for a
    ``seed``.

    Raises
    ------
    ImageError
        ``count`` below 1. :class:`golden.mnist.MnistError` when the MNIST files are missing
        (for the inverted digits).
    """
    from golden.mnist import load_mnist

    if count < 1:
        raise ImageError(f"the number of images must be at least 1, got {count}")
    rng = np.random.default_rng(seed)
    digits, _ = load_mnist("test", data=data)
    out = np.zeros((count, 28, 28), dtype=np.uint8)
    yy, xx = np.mgrid[0:28, 0:28]
    for i in range(count):
        kind = STRESS_KINDS[i % len(STRESS_KINDS)]
        img = out[i]
        if kind == "saturated":
            img[:] = 255
        elif kind == "uniform noise":
            img[:] = rng.integers(0, 256, (28, 28))
        elif kind == "salt and pepper":
            img[:] = np.where(rng.random((28, 28)) < 0.5, 0, 255)
        elif kind == "inverted MNIST":
            img[:] = 255 - digits[rng.integers(len(digits))]
        elif kind == "single pixel":
            img[rng.integers(28), rng.integers(28)] = 255
        elif kind == "bars":
            period, vertical = int(rng.integers(2, 8)), bool(rng.integers(2))
            img[:] = np.where(((xx if vertical else yy) // period) % 2 == 0, 255, 0)
        elif kind == "checkerboard":
            period = int(rng.integers(1, 6))
            img[:] = np.where(((xx // period) + (yy // period)) % 2 == 0, 255, 0)
        elif kind == "ramp":
            img[:] = np.clip((xx * rng.uniform(0, 10) + yy * rng.uniform(0, 10)), 0, 255).astype(np.uint8)
        elif kind == "border":
            img[[0, -1], :] = 255
            img[:, [0, -1]] = 255
    return ImageSet(out, None, f"{count} stress images ({', '.join(STRESS_KINDS)})")


def load_images(spec=100, *, data=None) -> ImageSet:
    """Images to simulate.

    Parameters
    ----------
    spec : int, "all", "stress" or path
        ``N``: the first ``N`` MNIST test images (with labels); ``"all"``: all 10,000;
        ``"stress"``: :data:`STRESS_IMAGES` images outside MNIST's distribution
        (:func:`stress_images`); a path:
        a ``.npy`` file holding uint8 ``(N, 28, 28)`` or ``(28, 28)``, or a folder of 28x28
        8-bit grayscale PNG files (read in file-name order; PIL when installed, else
        matplotlib). User images have no labels.
    data : str, optional
        MNIST folder (see :func:`golden.mnist.load_mnist`).

    Raises
    ------
    ImageError
        Unreadable file, wrong shape or dtype, or a count below 1 (``ValueError``).
    golden.mnist.MnistError
        MNIST files missing.
    """
    from golden.mnist import load_mnist

    if isinstance(spec, str) and spec.strip().lower() == "all":
        images, labels = load_mnist("test", data=data)
        return ImageSet(np.ascontiguousarray(images), labels.astype(np.int64), "MNIST test images")
    if isinstance(spec, str) and spec.strip().lower() == "stress":
        return stress_images(data=data)
    if isinstance(spec, (int, np.integer)) or (isinstance(spec, str) and spec.strip().isdigit()):
        n = int(spec)
        if n < 1:
            raise ImageError(f"the number of images must be at least 1, got {n}")
        images, labels = load_mnist("test", data=data)
        if n > len(images):
            raise ImageError(f"{n} images requested, the MNIST test set has {len(images)}")
        return ImageSet(np.ascontiguousarray(images[:n]), labels[:n].astype(np.int64),
                        f"first {n} MNIST test images")
    path = Path(spec)
    if path.is_dir():
        return ImageSet(_read_png_folder(path), None, f"{path} (PNG files)")
    if not path.exists():
        raise ImageError(f"{path}: no such file or folder (expected N, 'all', 'stress', a .npy file or a "
                         "folder of PNG files)")
    if path.suffix.lower() == ".png":
        arr = _read_png(path)
        return ImageSet(_check_array(arr, path), None, str(path))
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ImageError(f"{path}: not a .npy array file: {_file_kind(path, exc)}; save one uint8 "
                         "(N, 28, 28) array with np.save") from None
    if not isinstance(arr, np.ndarray):
        raise ImageError(f"{path}: holds several arrays (.npz); save one uint8 (N, 28, 28) array with np.save")
    return ImageSet(_check_array(arr, path), None, str(path))
