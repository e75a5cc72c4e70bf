"""Tests of golden.mnist: IDX parsing, folder resolution, loading, offline download, padding.

Never touches the network: an autouse fixture makes ``urllib.request.urlopen`` fail loudly; the
download tests replace it with a fake server of synthetic bytes. The real data in
``../shared/mnist`` is only read.
"""

import gzip
import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from golden import mnist
from golden.mnist import MnistError, find_mnist_dir, load_mnist, pad_image, read_idx
from golden.paper import INPUT_PAD, INPUT_SIDE

TEST_NAMES = mnist.SPLITS["test"]


# --------------------------------------------------------------------------------------------
# helpers and fixtures
# --------------------------------------------------------------------------------------------

def idx_bytes(arr, magic=None, trailing=b""):
    """Serialise a uint8 array as IDX (header + C-order data)."""
    arr = np.array(arr, dtype=np.uint8, order="C")  # (ascontiguousarray makes 0-d 1-d)
    if magic is None:
        magic = 0x00000800 | arr.ndim
    head = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes() + trailing


def synth(n=7, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    return images, labels


def write_split(folder, images, labels, split="test", gz=True, labels_bytes=None):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    iname, lname = mnist.SPLITS[split]
    suffix = ".gz" if gz else ""
    if labels_bytes is None:
        labels_bytes = idx_bytes(labels)
    for name, payload in ((iname, idx_bytes(images)), (lname, labels_bytes)):
        (folder / (name + suffix)).write_bytes(gzip.compress(payload) if gz else payload)
    return folder


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, no leaking env: urlopen raises; $LENET5_MNIST unset; cache under tmp_path."""
    def no_network(*args, **kwargs):
        raise AssertionError(f"test tried to use the network: urlopen{args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def no_shared(monkeypatch, tmp_path):
    """Pretend the shared folder does not exist."""
    monkeypatch.setattr(mnist, "SHARED_MNIST_DIR", tmp_path / "no-shared" / "mnist")


# --------------------------------------------------------------------------------------------
# read_idx
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path, gz):
    images, labels = synth()
    for name, arr in (("img", images), ("lbl", labels)):
        payload = idx_bytes(arr)
        path = tmp_path / (name + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(payload) if gz else payload)
        got = read_idx(path)
        assert got.dtype == np.uint8
        assert got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
        got[...] = 0  # read_idx returns the caller's own writable copy


def test_read_idx_gzip_detected_by_content_not_name(tmp_path):
    images, _ = synth(3)
    path = tmp_path / "images-without-gz-suffix"
    path.write_bytes(gzip.compress(idx_bytes(images)))
    np.testing.assert_array_equal(read_idx(path), images)


def test_read_idx_ndim_requirement(tmp_path):
    _, labels = synth()
    path = tmp_path / "lbl"
    path.write_bytes(idx_bytes(labels))
    assert read_idx(path, ndim=1).shape == labels.shape
    with pytest.raises(MnistError, match="labels file .* images file"):
        read_idx(path, ndim=3)


def test_read_idx_empty_dataset(tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    assert read_idx(path).shape == (0, 28, 28)


def _write(tmp_path, data, name="bad-idx"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_bad_magic(tmp_path):
    data = b"\x12\x34\x08\x01" + (3).to_bytes(4, "big") + b"\x00\x01\x02"
    path = _write(tmp_path, data, TEST_NAMES[1])
    with pytest.raises(MnistError, match="bad magic number 0x12340801") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)
    assert f"download {TEST_NAMES[1]}.gz again from {mnist.MIRRORS[0]}" in str(exc.value)
    other = _write(tmp_path, data, "notes.txt")
    with pytest.raises(MnistError, match="bad magic number") as exc:
        read_idx(other)
    assert str(other) in str(exc.value) and "not an MNIST IDX file" in str(exc.value)


def test_wrong_dtype_byte(tmp_path):
    path = _write(tmp_path, b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00" * 4)
    with pytest.raises(MnistError, match=r"data type byte 0x0D \(float32\).*0x08") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("nd", [0, 2, 4])
def test_wrong_dim_count(tmp_path, nd):
    arr = np.zeros((2,) * nd, np.uint8)
    path = _write(tmp_path, idx_bytes(arr))
    with pytest.raises(MnistError, match=f"{nd} dimensions") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


def test_truncated_payload(tmp_path):
    images, _ = synth(2)
    data = idx_bytes(images)[:-5]
    path = _write(tmp_path, gzip.compress(data), "trunc.gz")
    expected = 2 * 28 * 28
    with pytest.raises(MnistError, match=f"truncated: expected {expected} bytes of data, "
                                         f"found {expected - 5}") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("data", [b"", b"\x00\x00", b"\x00\x00\x08\x03\x00\x00\x00\x02\x00"])
def test_truncated_header(tmp_path, data):
    path = _write(tmp_path, data)
    with pytest.raises(MnistError, match="truncated") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


def test_trailing_bytes(tmp_path):
    _, labels = synth(4)
    path = _write(tmp_path, idx_bytes(labels, trailing=b"junk"))
    with pytest.raises(MnistError, match="trailing garbage: expected 4 bytes of data, found 8") \
            as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("how", ["garbage", "cut"])
def test_corrupt_gzip(tmp_path, how):
    images, _ = synth(3)
    good = gzip.compress(idx_bytes(images))
    bad = good[:10] + b"\xff" * 40 if how == "garbage" else good[: len(good) // 2]
    path = _write(tmp_path, bad, "corrupt.gz")
    with pytest.raises(MnistError, match="corrupt gzip") as exc:
        read_idx(path)
    assert str(path) in str(exc.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(MnistError, match="no such file"):
        read_idx(tmp_path / "nope")


# --------------------------------------------------------------------------------------------
# load_mnist on synthetic data
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_synthetic(tmp_path, split, gz):
    images, labels = synth(11, seed=3)
    folder = write_split(tmp_path / "d", images, labels, split=split, gz=gz)
    got_i, got_l = load_mnist(split, data=folder)
    assert got_i.dtype == np.uint8 and got_i.shape == (11, 28, 28)
    assert got_l.dtype == np.uint8 and got_l.shape == (11,)
    np.testing.assert_array_equal(got_i, images)
    np.testing.assert_array_equal(got_l, labels)


def test_load_mixed_gz_and_raw(tmp_path):
    images, labels = synth(2)
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / (TEST_NAMES[0] + ".gz")).write_bytes(gzip.compress(idx_bytes(images)))
    (folder / TEST_NAMES[1]).write_bytes(idx_bytes(labels))
    got_i, got_l = load_mnist("test", data=str(folder))
    np.testing.assert_array_equal(got_i, images)
    np.testing.assert_array_equal(got_l, labels)


def test_load_is_cached_and_read_only(tmp_path):
    images, labels = synth(5)
    folder = write_split(tmp_path / "d", images, labels)
    a = load_mnist("test", data=folder)
    b = load_mnist("test", data=folder)
    assert a[0] is b[0] and a[1] is b[1]
    for arr in a:
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 1
    np.testing.assert_array_equal(load_mnist("test", data=folder)[0], images)


def test_cache_sees_replaced_files(tmp_path):
    folder = write_split(tmp_path / "d", *synth(5, seed=1))
    load_mnist("test", data=folder)
    images, labels = synth(6, seed=2)
    write_split(folder, images, labels)
    got_i, got_l = load_mnist("test", data=folder)
    np.testing.assert_array_equal(got_i, images)
    np.testing.assert_array_equal(got_l, labels)


def test_count_mismatch(tmp_path):
    images, labels = synth(5)
    folder = write_split(tmp_path / "d", images, labels[:4])
    with pytest.raises(MnistError, match="5 images but .* 4 labels") as exc:
        load_mnist("test", data=folder)
    assert TEST_NAMES[0] in str(exc.value) and TEST_NAMES[1] in str(exc.value)


def test_label_out_of_range(tmp_path):
    images, labels = synth(5)
    labels[3] = 10
    folder = write_split(tmp_path / "d", images, labels)
    with pytest.raises(MnistError, match=r"label 10 at index 3 is out of range 0\.\.9") as exc:
        load_mnist("test", data=folder)
    assert TEST_NAMES[1] in str(exc.value)


def test_images_not_28x28(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / TEST_NAMES[0]).write_bytes(idx_bytes(np.zeros((2, 27, 28), np.uint8)))
    (folder / TEST_NAMES[1]).write_bytes(idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(MnistError, match="27x28") as exc:
        load_mnist("test", data=folder)
    assert TEST_NAMES[0] in str(exc.value)


def test_swapped_files(tmp_path):
    images, labels = synth(3)
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / TEST_NAMES[0]).write_bytes(idx_bytes(labels))
    (folder / TEST_NAMES[1]).write_bytes(idx_bytes(images))
    with pytest.raises(MnistError, match="swapped"):
        load_mnist("test", data=folder)


def test_malformed_file_error_names_it(tmp_path):
    images, labels = synth(3)
    folder = write_split(tmp_path / "d", images, labels,
                         labels_bytes=idx_bytes(labels, trailing=b"x"))
    with pytest.raises(MnistError, match="trailing garbage") as exc:
        load_mnist("test", data=folder)
    assert TEST_NAMES[1] + ".gz" in str(exc.value)


def test_verify_rejects_subset(tmp_path):
    folder = write_split(tmp_path / "d", *synth(5))
    load_mnist("test", data=folder)  # fine without verify: subsets are allowed
    with pytest.raises(MnistError, match="checksum mismatch") as exc:
        load_mnist("test", data=folder, verify=True)
    assert TEST_NAMES[0] in str(exc.value)


def test_verify_accepts_matching_md5(tmp_path, monkeypatch):
    images, labels = synth(5)
    folder = write_split(tmp_path / "d", images, labels)
    monkeypatch.setitem(mnist.MNIST_MD5, TEST_NAMES[0], hashlib.md5(idx_bytes(images)).hexdigest())
    monkeypatch.setitem(mnist.MNIST_MD5, TEST_NAMES[1], hashlib.md5(idx_bytes(labels)).hexdigest())
    got_i, _ = load_mnist("test", data=folder, verify=True)
    np.testing.assert_array_equal(got_i, images)


@pytest.mark.parametrize("split", ["valid", "t10k", "Test", None])
def test_unknown_split(tmp_path, split):
    with pytest.raises(MnistError, match="unknown MNIST split") as exc:
        load_mnist(split, data=tmp_path)
    assert "'train'" in str(exc.value) and "'test'" in str(exc.value)


# --------------------------------------------------------------------------------------------
# missing folder / files
# --------------------------------------------------------------------------------------------

def test_missing_folder_argument(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(MnistError, match="does not exist") as exc:
        load_mnist("test", data=missing)
    msg = str(exc.value)
    assert str(missing) in msg and "--data" in msg and "LENET5_MNIST" in msg


def test_missing_folder_env(tmp_path, monkeypatch):
    missing = tmp_path / "env-missing"
    monkeypatch.setenv(mnist.ENV_VAR, str(missing))
    with pytest.raises(MnistError, match=r"\$LENET5_MNIST") as exc:
        find_mnist_dir()
    assert str(missing) in str(exc.value)


def test_folder_is_a_file(tmp_path):
    path = _write(tmp_path, b"x", "a-file")
    with pytest.raises(MnistError, match="not a folder"):
        find_mnist_dir(path)


def test_missing_files(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(MnistError, match="missing file") as exc:
        load_mnist("test", data=folder)
    msg = str(exc.value)
    for name in TEST_NAMES:
        assert name in msg
    assert str(folder) in msg
    assert "--data" in msg and "LENET5_MNIST" in msg
    assert mnist.MIRRORS[0] in msg
    for name in mnist.MNIST_FILES:  # the fix names all four files
        assert name + ".gz" in msg
    assert "looked for in this order" in msg


def test_missing_one_file_names_only_it(tmp_path):
    images, labels = synth(3)
    folder = write_split(tmp_path / "d", images, labels)
    (folder / (TEST_NAMES[1] + ".gz")).unlink()
    with pytest.raises(MnistError) as exc:
        load_mnist("test", data=folder)
    msg = str(exc.value)
    assert f"missing file(s) {TEST_NAMES[1]}[.gz] in" in msg


def test_missing_files_in_default_cache(no_shared, tmp_path):
    with pytest.raises(MnistError, match="missing file") as exc:
        load_mnist("train")
    msg = str(exc.value)
    cache = (tmp_path / "xdg-cache" / "lenet5" / "mnist").resolve()
    assert str(cache) in msg
    assert "not given" in msg and "not set" in msg and "absent" in msg


# --------------------------------------------------------------------------------------------
# resolution order
# --------------------------------------------------------------------------------------------

def test_resolution_order(tmp_path, monkeypatch):
    arg, env, shared = (tmp_path / n for n in ("arg", "env", "shared"))
    for d in (arg, env, shared):
        d.mkdir()
    monkeypatch.setattr(mnist, "SHARED_MNIST_DIR", shared)
    monkeypatch.setenv(mnist.ENV_VAR, str(env))
    assert find_mnist_dir(arg) == arg.resolve()  # argument beats env var
    assert find_mnist_dir(str(arg)) == arg.resolve()
    assert find_mnist_dir() == env.resolve()  # env var beats shared folder
    monkeypatch.setenv(mnist.ENV_VAR, "")  # empty counts as unset
    assert find_mnist_dir() == shared.resolve()  # shared folder beats the cache
    monkeypatch.delenv(mnist.ENV_VAR)
    assert find_mnist_dir() == shared.resolve()
    shared.rmdir()
    assert find_mnist_dir() == (tmp_path / "xdg-cache" / "lenet5" / "mnist").resolve()


def test_cache_default_without_xdg(no_shared, monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert find_mnist_dir() == (tmp_path / "home" / ".cache" / "lenet5" / "mnist").resolve()


def test_load_uses_env_var(tmp_path, monkeypatch):
    images, labels = synth(4)
    folder = write_split(tmp_path / "via-env", images, labels)
    monkeypatch.setenv(mnist.ENV_VAR, str(folder))
    np.testing.assert_array_equal(load_mnist("test")[1], labels)


def test_shared_dir_default_location():
    repo_root = Path(mnist.__file__).resolve().parents[1]
    assert mnist.SHARED_MNIST_DIR == repo_root.parent / "shared" / "mnist"


# --------------------------------------------------------------------------------------------
# real data (read-only)
# --------------------------------------------------------------------------------------------

def _real_dir():
    shared = Path(mnist.SHARED_MNIST_DIR)
    if not shared.is_dir():
        pytest.skip(f"real MNIST folder {shared} is absent (expected <repo>/../shared/mnist)")
    return shared


def test_real_test_split():
    shared = _real_dir()
    images, labels = load_mnist("test", data=shared, verify=True)
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    hist = np.bincount(labels, minlength=10)
    assert hist.shape == (10,) and hist.sum() == 10000
    assert (hist > 800).all()  # every digit is well represented
    assert images.max() == 255 and images.min() == 0
    assert not images.flags.writeable
    # the default resolution finds the same folder (no env var set in tests)
    assert find_mnist_dir() == shared.resolve()
    assert load_mnist("test", verify=True)[0] is images


def test_real_train_split():
    shared = _real_dir()
    images, labels = load_mnist("train", data=shared, verify=True)
    assert images.shape == (60000, 28, 28) and labels.shape == (60000,)
    assert np.bincount(labels, minlength=10).sum() == 60000


def test_download_refuses_shared_folder(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setattr(mnist, "SHARED_MNIST_DIR", shared)
    with pytest.raises(MnistError, match="shared read-only") as exc:
        load_mnist("test", download=True)
    assert "--data" in str(exc.value)
    assert list(shared.iterdir()) == []


# --------------------------------------------------------------------------------------------
# download (offline: fake urlopen)
# --------------------------------------------------------------------------------------------

class FakeResponse(io.BytesIO):
    def __init__(self, data):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def fake_server(monkeypatch, files, fail_hosts=()):
    """Serve ``files`` (basename -> bytes) on every mirror except ``fail_hosts``; log URLs."""
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        if any(url.startswith(h) for h in fail_hosts):
            raise urllib.error.URLError("connection refused (fake)")
        name = url.rsplit("/", 1)[-1]
        if name not in files:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return FakeResponse(files[name])

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return calls


def synthetic_release(monkeypatch, n=6):
    """Synthetic gz files for the test split, with the checksum table patched to match."""
    images, labels = synth(n, seed=9)
    files = {}
    for name, arr in zip(TEST_NAMES, (images, labels)):
        raw = idx_bytes(arr)
        files[name + ".gz"] = gzip.compress(raw)
        monkeypatch.setitem(mnist.MNIST_MD5, name, hashlib.md5(raw).hexdigest())
    return images, labels, files


def test_download(tmp_path, monkeypatch):
    images, labels, files = synthetic_release(monkeypatch)
    calls = fake_server(monkeypatch, files)
    got_i, got_l = load_mnist("test", data=tmp_path, download=True, verify=True)
    np.testing.assert_array_equal(got_i, images)
    np.testing.assert_array_equal(got_l, labels)
    assert calls == [mnist.MIRRORS[0] + n + ".gz" for n in TEST_NAMES]
    # only the two .gz files, byte-identical to what was served; no temp files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files)
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data
    # now present: a second load does not touch the network
    calls = fake_server(monkeypatch, {})
    load_mnist("test", data=tmp_path, download=True)
    assert calls == []


def test_download_to_a_log_writes_one_line_per_file_not_a_bar(tmp_path, monkeypatch, capsys):
    """stderr is not a terminal (captured): no tqdm bar (no carriage returns), one summary line."""
    _, _, files = synthetic_release(monkeypatch)
    fake_server(monkeypatch, files)
    load_mnist("test", data=tmp_path, download=True)
    err = capsys.readouterr().err
    assert "\r" not in err
    assert err.splitlines()[0].startswith(f"{TEST_NAMES[0]}.gz: 0.0 MB from {mnist.MIRRORS[0]}")
    assert len(err.splitlines()) == 2


def test_download_into_default_cache(no_shared, tmp_path, monkeypatch):
    images, _, files = synthetic_release(monkeypatch)
    fake_server(monkeypatch, files)
    got_i, _ = load_mnist("test", download=True)
    np.testing.assert_array_equal(got_i, images)
    cache = tmp_path / "xdg-cache" / "lenet5" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)


def test_download_falls_back_to_second_mirror(tmp_path, monkeypatch):
    images, labels, files = synthetic_release(monkeypatch)
    calls = fake_server(monkeypatch, files, fail_hosts=(mnist.MIRRORS[0],))
    got_i, got_l = load_mnist("test", data=tmp_path, download=True)
    np.testing.assert_array_equal(got_i, images)
    np.testing.assert_array_equal(got_l, labels)
    assert calls[:2] == [mnist.MIRRORS[0] + TEST_NAMES[0] + ".gz",
                         mnist.MIRRORS[1] + TEST_NAMES[0] + ".gz"]


def test_download_only_missing_file(tmp_path, monkeypatch):
    images, labels, files = synthetic_release(monkeypatch)
    (tmp_path / (TEST_NAMES[0] + ".gz")).write_bytes(files[TEST_NAMES[0] + ".gz"])
    calls = fake_server(monkeypatch, files)
    load_mnist("test", data=tmp_path, download=True)
    assert calls == [mnist.MIRRORS[0] + TEST_NAMES[1] + ".gz"]


def test_download_md5_mismatch(tmp_path, monkeypatch):
    _, _, files = synthetic_release(monkeypatch)
    monkeypatch.setitem(mnist.MNIST_MD5, TEST_NAMES[0], "0" * 32)
    calls = fake_server(monkeypatch, files)
    with pytest.raises(MnistError, match="MD5 of the decompressed contents") as exc:
        load_mnist("test", data=tmp_path, download=True)
    msg = str(exc.value)
    assert TEST_NAMES[0] in msg and "0" * 32 in msg
    assert "missing file" in msg and "--data" in msg
    assert calls == [m + TEST_NAMES[0] + ".gz" for m in mnist.MIRRORS]  # both mirrors tried
    assert list(tmp_path.glob(TEST_NAMES[0] + "*")) == []  # nothing renamed into place
    assert list(tmp_path.glob("*.part")) == [] and list(tmp_path.glob(".*.part")) == []


def test_download_corrupt_gzip(tmp_path, monkeypatch):
    _, _, files = synthetic_release(monkeypatch)
    files[TEST_NAMES[0] + ".gz"] = files[TEST_NAMES[0] + ".gz"][:20]
    fake_server(monkeypatch, files)
    with pytest.raises(MnistError, match="not a valid gzip"):
        load_mnist("test", data=tmp_path, download=True)
    assert [p.name for p in tmp_path.iterdir()] == []


def test_download_network_down(tmp_path, monkeypatch):
    calls = fake_server(monkeypatch, {}, fail_hosts=mnist.MIRRORS)
    with pytest.raises(MnistError, match="connection refused") as exc:
        load_mnist("test", data=tmp_path, download=True)
    msg = str(exc.value)
    assert "missing file" in msg and TEST_NAMES[0] in msg
    assert f"into {tmp_path.resolve()}" in msg and "LENET5_MNIST" in msg
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == []


def test_no_download_by_default(tmp_path):
    # the autouse fixture makes urlopen raise AssertionError: a MnistError proves it was not called
    with pytest.raises(MnistError, match="missing file"):
        load_mnist("test", data=tmp_path)


def test_missing_files_message_names_the_download_command(tmp_path):
    """The fix names a command a user can run, not the Python argument download=True."""
    with pytest.raises(MnistError) as exc:
        load_mnist("test", data=tmp_path)
    msg = str(exc.value)
    assert f"run `lenet5 data download --dir {tmp_path.resolve()}`" in msg
    assert "download=True" not in msg
    with pytest.raises(MnistError) as exc:
        load_mnist("test", data=tmp_path / "nope")
    assert f"`lenet5 data download --dir {tmp_path / 'nope'}`" in str(exc.value)
    assert "download=True" not in str(exc.value)


# --------------------------------------------------------------------------------------------
# lenet5 data download (offline: fake urlopen)
# --------------------------------------------------------------------------------------------

def test_cli_data_download(tmp_path, monkeypatch, capsys):
    from lenet5.cli import main

    images, labels, files = synthetic_release(monkeypatch)
    calls = fake_server(monkeypatch, files)
    folder = tmp_path / "new" / "mnist"
    assert main(["data", "download", "--dir", str(folder), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert calls == [mnist.MIRRORS[0] + n + ".gz" for n in TEST_NAMES]
    assert f"{TEST_NAMES[0]}.gz: downloaded" in out and f"MNIST test in {folder.resolve()}" in out
    assert f"pass --data {folder.resolve()} or set LENET5_MNIST=" in out
    got_i, got_l = load_mnist("test", data=folder, verify=True)
    np.testing.assert_array_equal(got_i, images)
    # a second run keeps the files and does not touch the network
    calls = fake_server(monkeypatch, {})
    assert main(["data", "download", "--dir", str(folder), "--split", "test"]) == 0
    assert calls == [] and f"{TEST_NAMES[1]}.gz: already there" in capsys.readouterr().out


def test_cli_data_download_default_folder_is_the_search_folder(no_shared, tmp_path, monkeypatch, capsys):
    from lenet5.cli import main

    _, _, files = synthetic_release(monkeypatch)
    fake_server(monkeypatch, files)
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path / "env-mnist"))     # not created yet
    assert main(["data", "download", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert f"MNIST test in {(tmp_path / 'env-mnist').resolve()}" in out and "do not look there" not in out
    assert load_mnist("test")[0].shape == (6, 28, 28)


def test_cli_data_download_failure_and_arguments(tmp_path, monkeypatch, capsys):
    from lenet5.cli import build_parser, main

    _, _, files = synthetic_release(monkeypatch)
    fake_server(monkeypatch, files, fail_hosts=mnist.MIRRORS)
    assert main(["data", "download", "--dir", str(tmp_path), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lenet5 data: error: could not download t10k-images-idx3-ubyte.gz")
    assert "connection refused" in err and list(tmp_path.iterdir()) == []
    parser = build_parser()
    args = parser.parse_args(["data", "download"])
    assert args.dir is None and args.split == "all"
    for bad in (["data"], ["data", "download", "--split", "val"], ["data", "fetch"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_cli_data_download_refuses_shared_folder(tmp_path, monkeypatch, capsys):
    from lenet5.cli import main

    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setattr(mnist, "SHARED_MNIST_DIR", shared)
    assert main(["data", "download"]) == 2
    assert "shared read-only data folder" in capsys.readouterr().err and list(shared.iterdir()) == []


# --------------------------------------------------------------------------------------------
# pad_image
# --------------------------------------------------------------------------------------------

def test_pad_batch():
    images, _ = synth(3)
    out = pad_image(images)
    assert INPUT_PAD == 2
    assert out.shape == (3, INPUT_SIDE, INPUT_SIDE) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 2:30, 2:30], images)
    border = out.copy()
    border[:, 2:30, 2:30] = 0
    assert not border.any()


def test_pad_single_and_read_only_input(tmp_path):
    images, labels = synth(2)
    folder = write_split(tmp_path / "d", images, labels)
    ro, _ = load_mnist("test", data=folder)
    out = pad_image(ro[0])
    assert out.shape == (32, 32) and out.flags.writeable
    np.testing.assert_array_equal(out[2:30, 2:30], images[0])
    assert pad_image(images[0], pad=0).shape == (28, 28)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((28, 28), np.float32), "dtype uint8"),
    (np.zeros((32, 32), np.uint8), "shape"),
    (np.zeros((2, 1, 28, 28), np.uint8), "shape"),
    (np.zeros(784, np.uint8), "shape"),
    ([[0] * 28] * 28, "numpy uint8 array"),
])
def test_pad_rejects(bad, match):
    with pytest.raises(MnistError, match=match):
        pad_image(bad)


@pytest.mark.parametrize("pad", [-1, 1.5, True])
def test_pad_rejects_bad_pad(pad):
    with pytest.raises(MnistError, match="pad must be"):
        pad_image(np.zeros((28, 28), np.uint8), pad=pad)
