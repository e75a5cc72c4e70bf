"""MNIST loading: the four standard IDX files, read with numpy only.

The MNIST database of handwritten digits (Y. LeCun, C. Cortes, C. J. C. Burges) ships as four IDX
files, each usually gzipped::

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

IDX format (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS FOR THE MNIST DATABASE"): a 4-byte
big-endian magic number ``00 00 <type> <ndim>`` (type 0x08 = unsigned byte), then ``ndim``
big-endian uint32 dimension sizes, then the data in C order. Labels are ``0x00000801`` (1-D),
images ``0x00000803`` (3-D, N x 28 x 28, 0 = background).

Where the files are looked for (:func:`find_mnist_dir`): the ``data`` argument (``--data DIR`` on
the command line), else ``$LENET5_MNIST``, else ``<repo>/../shared/mnist`` when it exists, else the
user cache folder ``$XDG_CACHE_HOME/lenet5/mnist`` (default ``~/.cache/lenet5/mnist``).

Every user-facing failure raises :class:`MnistError` with a message naming the file, the problem
and the fix.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from golden.paper import INPUT_PAD, MNIST_SIDE

__all__ = [
    "MnistError",
    "read_idx",
    "find_mnist_dir",
    "load_mnist",
    "pad_image",
    "SPLITS",
    "MNIST_FILES",
    "MNIST_MD5",
    "MIRRORS",
    "ENV_VAR",
    "download_mnist",
    "download_command",
]

#: Environment variable naming the MNIST folder (second in the resolution order).
ENV_VAR = "LENET5_MNIST"

#: Valid values of the ``split`` argument of :func:`load_mnist`, mapped to (images, labels) names.
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

#: The four standard file names (without ``.gz``), in the order the error messages list them.
MNIST_FILES = SPLITS["train"] + SPLITS["test"]

#: Official MD5 of the *decompressed* contents of each file.
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

#: Public mirrors of the gzipped files, tried in order (the original yann.lecun.com host is gone).
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: Shared read-only data folder next to the repository: ``<repo root>/../shared/mnist``.
SHARED_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "mnist"

#: IDX magic numbers this loader accepts: number of dimensions -> (magic, what).
_IDX_KINDS = {1: (0x00000801, "labels"), 3: (0x00000803, "images")}
#: IDX data type codes, for error messages.
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32",
              0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"
_DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 16


class MnistError(ValueError):
    """A user-facing MNIST problem: the message names the file, the problem and the fix."""


# --------------------------------------------------------------------------------------------
# IDX parsing
# --------------------------------------------------------------------------------------------

def _fix_damaged(path):
    name = Path(path).name
    base = name[:-3] if name.endswith(".gz") else name
    if base not in MNIST_FILES:
        return (f"Fix: pass one of the MNIST files {', '.join(MNIST_FILES)} (raw or .gz); this "
                f"one is damaged or is not an MNIST IDX file.")
    return (f"The file is damaged or is not an MNIST IDX file. Fix: delete it and run "
            f"`{download_command(Path(path).parent)}` (or download {base}.gz again from {MIRRORS[0]}).")


def _read_decompressed(path):
    """Return the IDX bytes of ``path``, gunzipped if the file starts with the gzip magic."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise MnistError(f"{path}: no such file. Fix: check the path, or pass --data DIR / set "
                         f"{ENV_VAR} to the folder holding the MNIST files.") from None
    except IsADirectoryError:
        raise MnistError(f"{path}: is a folder, not an IDX file. Fix: pass the path of one of "
                         f"{', '.join(MNIST_FILES)} (optionally .gz).") from None
    except OSError as exc:
        raise MnistError(f"{path}: cannot be read ({exc.strerror or exc}). Fix: check the file's "
                         f"permissions.") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise MnistError(f"{path}: corrupt gzip data ({exc}). {_fix_damaged(path)}") from None
    return raw


def _parse_idx(data, path, ndim=None):
    """Parse IDX bytes into a read-only uint8 array viewing ``data`` (no copy)."""
    path = Path(path)
    if len(data) < 4:
        raise MnistError(f"{path}: truncated: {len(data)} bytes, shorter than the 4-byte IDX "
                         f"magic number. {_fix_damaged(path)}")
    if data[0] != 0 or data[1] != 0:
        magic = int.from_bytes(data[:4], "big")
        raise MnistError(f"{path}: bad magic number 0x{magic:08X}; an MNIST IDX file starts with "
                         f"0x00000801 (labels) or 0x00000803 (images). {_fix_damaged(path)}")
    dtype, nd = data[2], data[3]
    if dtype != 0x08:
        what = _IDX_TYPES.get(dtype, "unknown type")
        raise MnistError(f"{path}: data type byte 0x{dtype:02X} ({what}); MNIST files use 0x08 "
                         f"(unsigned byte). {_fix_damaged(path)}")
    if nd not in _IDX_KINDS:
        magic = int.from_bytes(data[:4], "big")
        raise MnistError(f"{path}: {nd} dimensions (magic 0x{magic:08X}); "
                         f"expected 1 (labels, magic 0x00000801) or 3 (images, magic 0x00000803). "
                         f"{_fix_damaged(path)}")
    if ndim is not None and nd != ndim:
        want_magic, want = _IDX_KINDS[ndim]
        _, got = _IDX_KINDS[nd]
        raise MnistError(f"{path}: is an IDX {got} file ({nd}-D) but an {want} file ({ndim}-D, "
                         f"magic 0x{want_magic:08X}) was expected. Fix: check that the images and "
                         f"labels files are not swapped or misnamed.")
    header = 4 + 4 * nd
    if len(data) < header:
        raise MnistError(f"{path}: truncated: expected a {header}-byte header, found {len(data)} "
                         f"bytes. {_fix_damaged(path)}")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd))
    expected = 1
    for d in dims:
        expected *= d
    found = len(data) - header
    if found < expected:
        raise MnistError(f"{path}: truncated: expected {expected} bytes of data, found {found} "
                         f"(dimensions {'x'.join(map(str, dims))}). {_fix_damaged(path)}")
    if found > expected:
        raise MnistError(f"{path}: trailing garbage: expected {expected} bytes of data, found "
                         f"{found} ({found - expected} extra bytes after the data; dimensions "
                         f"{'x'.join(map(str, dims))}). {_fix_damaged(path)}")
    arr = np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(dims)
    arr.flags.writeable = False
    return arr


def read_idx(path, *, ndim=None):
    """Read one MNIST IDX file, gzipped or raw.

    Gzip is detected from the content (first bytes ``1f 8b``), not from the file name.

    Parameters
    ----------
    path : str or os.PathLike
        The IDX file.
    ndim : {None, 1, 3}, optional
        Required number of dimensions (1 = labels, 3 = images); ``None`` accepts either.

    Returns
    -------
    numpy.ndarray
        A new, writable ``uint8`` array with the dimensions stored in the header: ``(N,)`` for a
        labels file, ``(N, rows, cols)`` for an images file.

    Raises
    ------
    MnistError
        If the file is missing or unreadable, the gzip stream is corrupt, the magic number is
        wrong (not ``0x00000801``/``0x00000803``), the data type byte is not ``0x08``, the
        dimension count is not the expected one, or the payload is shorter (``truncated``) or
        longer (``trailing garbage``) than the product of the dimensions.

    References
    ----------
    Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of handwritten digits",
    http://yann.lecun.com/exdb/mnist/ (section "FILE FORMATS FOR THE MNIST DATABASE").
    """
    if ndim is not None and ndim not in _IDX_KINDS:
        raise MnistError(f"read_idx: ndim={ndim!r} is not valid; use None, 1 (labels) or 3 "
                         f"(images).")
    return _parse_idx(_read_decompressed(path), path, ndim).copy()


# --------------------------------------------------------------------------------------------
# Where the files are
# --------------------------------------------------------------------------------------------

def _cache_dir():
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "lenet5" / "mnist"


def _explicit_dir(value, origin):
    path = Path(value).expanduser()
    if not path.exists():
        raise MnistError(f"MNIST folder {path} (from {origin}) does not exist. Fix: point "
                         f"--data DIR / {ENV_VAR} at the folder holding "
                         f"{', '.join(n + '.gz' for n in MNIST_FILES)}, or download them there "
                         f"with `{download_command(path)}`.")
    if not path.is_dir():
        raise MnistError(f"MNIST folder {path} (from {origin}) is a file, not a folder. Fix: "
                         f"point --data DIR / {ENV_VAR} at the folder that holds the MNIST files, "
                         f"not at one file.")
    return path.resolve()


def find_mnist_dir(data=None):
    """Locate the folder that holds (or will hold) the MNIST files.

    Resolution order: (1) ``data`` (the ``--data DIR`` option), (2) ``$LENET5_MNIST``,
    (3) ``<repo root>/../shared/mnist`` if it exists, (4) the user cache folder
    ``$XDG_CACHE_HOME/lenet5/mnist`` (``~/.cache/lenet5/mnist`` when ``XDG_CACHE_HOME`` is unset).
    The first one that applies wins; the files are not checked here.

    Parameters
    ----------
    data : str or os.PathLike, optional
        Explicit folder. ``~`` is expanded.

    Returns
    -------
    pathlib.Path
        The absolute folder. For cases (1)-(3) it exists; the cache folder (4) may not exist yet.

    Raises
    ------
    MnistError
        If ``data`` or ``$LENET5_MNIST`` is given but does not exist or is not a folder.

    References
    ----------
    XDG Base Directory Specification (``XDG_CACHE_HOME``),
    https://specifications.freedesktop.org/basedir-spec/latest/.
    """
    if data is not None:
        return _explicit_dir(data, "the data argument / --data")
    env = os.environ.get(ENV_VAR)
    if env:
        return _explicit_dir(env, f"${ENV_VAR}")
    shared = Path(SHARED_MNIST_DIR)
    if shared.is_dir():
        return shared.resolve()
    return _cache_dir().resolve()


def _describe_search(data):
    env = os.environ.get(ENV_VAR)
    shared = Path(SHARED_MNIST_DIR)
    return ("looked for in this order: "
            f"(1) data argument / --data: {'not given' if data is None else data}; "
            f"(2) ${ENV_VAR}: {env if env else 'not set'}; "
            f"(3) shared folder {shared}: {'exists' if shared.is_dir() else 'absent'}; "
            f"(4) user cache {_cache_dir()}")


def _find_file(folder, name):
    for candidate in (folder / (name + ".gz"), folder / name):
        if candidate.is_file():
            return candidate
    return None


# --------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------

def _fetch(url, dest_dir, name):
    """Download ``url`` into a temp file in ``dest_dir``; return its path (caller renames)."""
    from tqdm import tqdm

    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
            headers = getattr(resp, "headers", None)
            length = headers.get("Content-Length") if headers is not None else None
            total = int(length) if length and str(length).isdigit() else None
            # disable=None: no bar when stderr is not a terminal; one line per file instead
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=f"{name}.gz", leave=False, disable=None) as bar:
                size = 0
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        if bar.disable:
            print(f"{name}.gz: {size / 1e6:.1f} MB from {url}", file=sys.stderr, flush=True)
        return Path(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _download(name, folder):
    """Download ``<name>.gz`` into ``folder`` from the first mirror that serves the right bytes."""
    dest = folder / (name + ".gz")
    failures = []
    for mirror in MIRRORS:
        url = mirror + name + ".gz"
        try:
            tmp = _fetch(url, folder, name)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            failures.append(f"{url}: {exc}")
            continue
        try:
            got = hashlib.md5(_read_decompressed(tmp)).hexdigest()
        except MnistError as exc:
            tmp.unlink(missing_ok=True)
            failures.append(f"{url}: not a valid gzip file ({exc})")
            continue
        want = MNIST_MD5[name]
        if got != want:
            tmp.unlink(missing_ok=True)
            failures.append(f"{url}: MD5 of the decompressed contents is {got}, expected {want}")
            continue
        os.replace(tmp, dest)
        return dest
    raise MnistError(f"could not download {name}.gz into {folder}: " + "; ".join(failures))


def download_command(folder=None):
    """The command line that downloads the MNIST files into *folder* (named in error messages)."""
    return "lenet5 data download" + (f" --dir {folder}" if folder is not None else "")


def download_mnist(folder=None, splits=tuple(SPLITS)):
    """Download the MNIST files of *splits* that *folder* lacks (``lenet5 data download``).

    Each file comes from the first of :data:`MIRRORS` that serves it with the official MD5
    (:data:`MNIST_MD5`, of the decompressed bytes), written to a temporary file and renamed
    into place (:func:`_download`). Files already there (raw or ``.gz``) are kept.

    Parameters
    ----------
    folder : path-like, optional
        Where to put them (created); default ``$LENET5_MNIST`` when set, else
        :func:`find_mnist_dir` (the shared folder when it exists, else the user cache).

    Returns
    -------
    list of (name, pathlib.Path, bool)
        Per file: its standard name, its path, and whether it was downloaded now.

    Raises
    ------
    MnistError
        The folder is the shared read-only folder and lacks files, cannot be created, or a file
        could not be downloaded from any mirror (the message lists each mirror's failure).
    """
    for split in splits:
        if split not in SPLITS:
            raise MnistError(f"unknown MNIST split {split!r}; valid values: {', '.join(map(repr, SPLITS))}.")
    if folder is None:                       # $LENET5_MNIST may name a folder to create
        folder = os.environ.get(ENV_VAR) or find_mnist_dir()
    folder = Path(folder).expanduser().resolve()
    names = [n for split in splits for n in SPLITS[split]]
    found = {n: _find_file(folder, n) for n in names}
    missing = [n for n in names if found[n] is None]
    if missing and folder == Path(SHARED_MNIST_DIR).resolve():
        raise MnistError(f"{folder} is the shared read-only data folder and lacks "
                         f"{', '.join(missing)}; pass --dir DIR to download into another folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MnistError(f"cannot create the MNIST folder {folder} ({exc.strerror or exc}).") from None
    out = []
    for n in names:
        if found[n] is not None:
            out.append((n, found[n], False))
            continue
        try:
            out.append((n, _download(n, folder), True))
        except OSError as exc:
            raise MnistError(f"cannot write into {folder} ({exc.strerror or exc}).") from None
    return out


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

def _check_md5(data, path):
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    want = MNIST_MD5[name]
    got = hashlib.md5(data).hexdigest()
    if got != want:
        raise MnistError(f"{path}: checksum mismatch: MD5 of the decompressed contents is {got}, "
                         f"the official value is {want}. The file is damaged, a subset, or not "
                         f"the official MNIST: delete it and download {name}.gz again from "
                         f"{MIRRORS[0]}, or load without verify.")


@functools.lru_cache(maxsize=8)
def _load_files(images_path, labels_path, stamp, verify):
    """Parse, check and cache one split. ``stamp`` (size, mtime) invalidates on file change."""
    del stamp  # only part of the cache key
    ipath, lpath = Path(images_path), Path(labels_path)
    idata = _read_decompressed(ipath)
    ldata = _read_decompressed(lpath)
    if verify:
        _check_md5(idata, ipath)
        _check_md5(ldata, lpath)
    images = _parse_idx(idata, ipath, ndim=3)
    labels = _parse_idx(ldata, lpath, ndim=1)
    if images.shape[1:] != (MNIST_SIDE, MNIST_SIDE):
        raise MnistError(f"{ipath}: images are {images.shape[1]}x{images.shape[2]}, MNIST digits "
                         f"are {MNIST_SIDE}x{MNIST_SIDE}. {_fix_damaged(ipath)}")
    if images.shape[0] != labels.shape[0]:
        raise MnistError(f"{ipath} has {images.shape[0]} images but {lpath} has "
                         f"{labels.shape[0]} labels; they must agree. Fix: use the images and "
                         f"labels files of the same split and release (re-download both).")
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        raise MnistError(f"{lpath}: label {int(labels[bad[0]])} at index {int(bad[0])} is out of "
                         f"range 0..9 ({bad.size} bad labels). {_fix_damaged(lpath)}")
    return images, labels


def _stamp(path):
    st = path.stat()
    return (st.st_size, st.st_mtime_ns)


def load_mnist(split, data=None, download=False, verify=False):
    """Load one MNIST split as uint8 arrays.

    The standard file names are used, each with or without ``.gz`` (``.gz`` preferred when both
    exist). Subsets (fewer than 60000/10000 images) are accepted. Parsed arrays are cached
    in-process (keyed on the resolved file paths, their size and mtime, and ``verify``), so
    repeated loads are free; the arrays are read-only so the cache cannot be corrupted (take
    ``.copy()`` to modify).

    Parameters
    ----------
    split : {"train", "test"}
        ``"train"``: ``train-*-idx?-ubyte``; ``"test"``: ``t10k-*-idx?-ubyte``.
    data : str or os.PathLike, optional
        Folder holding the files; see :func:`find_mnist_dir` for the resolution when omitted.
    download : bool, default False
        Download missing files (``.gz``) into the folder from :data:`MIRRORS`, in order, checking
        the MD5 of the decompressed bytes before the file is renamed into place.
    verify : bool, default False
        Check the MD5 of the decompressed contents against the official values
        (:data:`MNIST_MD5`); fails for subsets.

    Returns
    -------
    images : numpy.ndarray
        ``uint8``, shape ``(N, 28, 28)``, 0 = background, read-only.
    labels : numpy.ndarray
        ``uint8``, shape ``(N,)``, values 0..9, read-only.

    Raises
    ------
    MnistError
        If ``split`` is not valid; the folder cannot be resolved; files are missing (and
        ``download`` is False or the download fails): the message lists the missing files, the
        search order and the fix; a file is malformed (see :func:`read_idx`); the images are not
        28x28; the image and label counts differ; a label is outside 0..9; or ``verify`` is set
        and a checksum differs.

    References
    ----------
    Y. LeCun, C. Cortes, C. J. C. Burges, "The MNIST database of handwritten digits",
    http://yann.lecun.com/exdb/mnist/.
    """
    if split not in SPLITS:
        raise MnistError(f"unknown MNIST split {split!r}; valid values: "
                         f"{', '.join(repr(s) for s in SPLITS)}.")
    folder = find_mnist_dir(data)
    names = SPLITS[split]
    paths = {n: _find_file(folder, n) for n in names}
    missing = [n for n in names if paths[n] is None]
    if missing:
        reason = ""
        if download:
            if folder == Path(SHARED_MNIST_DIR).resolve():
                reason = (f" Not downloading: {folder} is the shared read-only data folder; "
                          f"pass --data DIR / set {ENV_VAR} to a writable folder to download "
                          f"into.")
            else:
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    for n in missing:
                        paths[n] = _download(n, folder)
                except MnistError as exc:
                    reason = f" Download failed: {exc}."
                except OSError as exc:
                    reason = f" Download failed: cannot write into {folder} ({exc})."
            missing = [n for n in names if paths[n] is None]
        if missing:
            fix_names = ", ".join(n + ".gz" for n in MNIST_FILES)
            raise MnistError(
                f"MNIST {split} split: missing file(s) "
                f"{', '.join(n + '[.gz]' for n in missing)} in {folder} "
                f"({_describe_search(data)}).{reason} "
                f"Fix: run `{download_command(folder)}` (checksummed download from the standard "
                f"mirrors), or download {fix_names} from {MIRRORS[0]} into {folder} yourself, or pass "
                f"--data DIR / set {ENV_VAR} to a folder that holds them.")
    ipath, lpath = paths[names[0]], paths[names[1]]
    return _load_files(str(ipath), str(lpath), (_stamp(ipath), _stamp(lpath)), bool(verify))


# --------------------------------------------------------------------------------------------
# LeNet-5 input
# --------------------------------------------------------------------------------------------

def pad_image(images, pad=INPUT_PAD):
    """Zero-pad MNIST digits to LeNet-5's input size (28x28 -> 32x32 with the default pad).

    Parameters
    ----------
    images : numpy.ndarray
        ``uint8``, shape ``(28, 28)`` (one digit) or ``(N, 28, 28)``.
    pad : int, default :data:`golden.paper.INPUT_PAD` (2)
        Zero pixels added on each of the four sides.

    Returns
    -------
    numpy.ndarray
        A new writable ``uint8`` array, shape ``(28 + 2*pad, 28 + 2*pad)`` or
        ``(N, 28 + 2*pad, 28 + 2*pad)``; the border is 0 (background).

    Raises
    ------
    MnistError
        If ``images`` is not a uint8 numpy array of shape (28, 28) or (N, 28, 28), or ``pad`` is
        not a non-negative integer.

    References
    ----------
    Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document
    recognition", Proc. IEEE 86(11), 1998, Sec. II-B: the 28x28 digit is centred in a 32x32 field.
    """
    if not isinstance(images, np.ndarray):
        raise MnistError(f"pad_image: images must be a numpy uint8 array, got "
                         f"{type(images).__name__}. Fix: pass the array returned by load_mnist.")
    if images.dtype != np.uint8:
        raise MnistError(f"pad_image: images must have dtype uint8, got {images.dtype}. Fix: pass "
                         f"raw MNIST pixels (load_mnist output), pad before any scaling.")
    if images.ndim not in (2, 3) or images.shape[-2:] != (MNIST_SIDE, MNIST_SIDE):
        raise MnistError(f"pad_image: images must have shape ({MNIST_SIDE}, {MNIST_SIDE}) or "
                         f"(N, {MNIST_SIDE}, {MNIST_SIDE}), got {images.shape}.")
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise MnistError(f"pad_image: pad must be a non-negative integer, got {pad!r}.")
    pad = int(pad)
    widths = ((0, 0),) * (images.ndim - 2) + ((pad, pad), (pad, pad))
    return np.pad(images, widths, mode="constant", constant_values=0)
