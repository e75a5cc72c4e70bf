"""The accuracy a sweep row carries: the golden integer model of a description on the MNIST test set.

:func:`integer_accuracy` runs :func:`golden.reference.run` (bit-exact with the hardware) on the
10,000 MNIST test images and caches the result on disk by the SHA-256 of the description's JSON
text (:meth:`golden.qnet.QNet.dumps`) and of the test images and labels, so a sweep over many folds
and targets of one description evaluates it once (about 7 s).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

__all__ = ["integer_accuracy", "precision_label"]


def integer_accuracy(qnet, *, data=None, cache_dir=None) -> float:
    """Fraction of the MNIST test images (all of them) the integer reference of *qnet* classifies
    correctly, in [0, 1].

    Parameters
    ----------
    qnet : golden.qnet.QNet
    data : path-like, optional
        The MNIST folder (:func:`golden.mnist.find_mnist_dir` when omitted).
    cache_dir : path-like, optional
        Where ``accuracy-<sha256>.json`` is kept (None: no cache).

    Raises
    ------
    golden.mnist.MnistError
        The MNIST test files are missing or damaged (the message names the fix).
    """
    import numpy as np

    from golden import reference
    from golden.mnist import load_mnist

    images, labels = load_mnist("test", data=data)
    digest = hashlib.sha256()
    for part in (qnet.dumps().encode(), np.ascontiguousarray(images).tobytes(),
                 np.ascontiguousarray(labels).tobytes()):
        digest.update(hashlib.sha256(part).digest())
    path = Path(cache_dir) / f"accuracy-{digest.hexdigest()}.json" if cache_dir is not None else None
    if path is not None and path.is_file():
        try:
            return float(json.loads(path.read_text())["accuracy"])
        except (ValueError, KeyError, TypeError):
            pass                                           # damaged: computed again
    classes = reference.run(qnet, images, taps=False).classes
    accuracy = float(np.mean(classes == np.asarray(labels, np.int64)))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump({"accuracy": accuracy, "images": len(labels), "variant": qnet.variant}, f)
        os.replace(tmp, path)
    return accuracy


def precision_label(qnet) -> str:
    """``w<W>a<A>``: the widest weight and layer-input formats (bits) of the conv and dense
    layers, e.g. ``w8a8`` for an int8 description, ``w4a8`` for 4-bit weights."""
    layers = [layer for layer in qnet.layers if layer.kind in ("conv", "dense")]
    w = max(layer.w_fmt.bits for layer in layers)
    a = max(layer.in_fmt.bits for layer in layers)
    return f"w{w}a{a}"
