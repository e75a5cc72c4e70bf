"""Accuracy of the float, fake-quantized and integer models on MNIST test images.

``agreement`` is the fraction of images where the integer reference and the fake-quantized float
model (:func:`golden.quantize.fake_quant_forward` in float64) predict the same class; the two are
built to agree bit for bit, so anything below 1.0 is a bug.
"""

import hashlib
import time
from pathlib import Path

import numpy as np

from . import reference
from .qnet import QNet

__all__ = ["evaluate", "checkpoint_for", "confusion_matrix", "confusion_title", "plot_confusion"]


def checkpoint_for(qnet: QNet, model_path, checkpoint=None):
    """Path of the float checkpoint a description was made from (``meta.checkpoint``, relative to
    the description's folder), or ``checkpoint`` when given.

    Raises
    ------
    FileNotFoundError
        When neither names an existing file; the message says to pass ``--checkpoint``.
    """
    if checkpoint is None:
        rel = qnet.meta.get("checkpoint")
        if rel is None:
            raise FileNotFoundError(f"{model_path}: meta.checkpoint is not set; pass --checkpoint PATH "
                                    "(the float checkpoint the model was quantized from)")
        checkpoint = Path(model_path).parent / rel
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"float checkpoint {checkpoint} not found; pass --checkpoint PATH")
    return checkpoint


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def confusion_matrix(labels, predicted, classes=10):
    """(classes, classes) int64 counts, rows = true label, columns = predicted class."""
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return m


def confusion_title(model_path, variant, accuracy, images):
    """The confusion matrix's title: which model file, which variant, the accuracy and on what."""
    return f"{Path(model_path).name} ({variant}, integer model)\naccuracy {100 * accuracy:.2f}% on {images:,} MNIST test images"


def plot_confusion(matrix, path, title):
    """Save a confusion-matrix heat map as PNG (matplotlib, no display needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                    color="white" if i == j else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true label")
    ax.set_xticks(range(len(matrix)))
    ax.set_yticks(range(len(matrix)))
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate(qnet: QNet, model, images, labels):
    """Evaluate the three models on the same images.

    Parameters
    ----------
    qnet : QNet
    model : golden.model.LeNet5 or None
        The float model the description was made from (``None``: integer model only).
    images : uint8 array (N, 28, 28)
    labels : uint8 array (N,)

    Returns
    -------
    dict with ``images``, ``int_accuracy``, ``float_accuracy``, ``fakequant_accuracy``,
    ``agreement``, ``logits_identical`` (fraction of images whose integer and fake-quantized
    logits are equal), ``int_seconds``, ``float_seconds``, and ``int_classes`` (numpy array).
    """
    labels = np.asarray(labels, np.int64)
    t0 = time.perf_counter()
    ref = reference.run(qnet, images, taps=False)
    out = {"images": int(len(labels)), "int_accuracy": float(np.mean(ref.classes == labels)),
           "int_seconds": time.perf_counter() - t0, "int_classes": ref.classes}
    if model is not None:
        import torch
        from .quantize import fake_quant_forward

        t0 = time.perf_counter()
        with torch.no_grad():
            x = torch.tensor(np.asarray(images), dtype=torch.float32)[:, None] / 256.0
            float_cls = model.eval()(x).argmax(1).numpy()
        fq = fake_quant_forward(model, qnet, images, exact=True)
        fq_int = np.rint(fq.numpy() * 2.0 ** qnet.output_fmt.frac).astype(np.int64)
        if qnet.rbf_output:        # the fake-quantized forward returns -y
            fq_int = -fq_int
        fq_cls = qnet.classify(fq_int)
        out.update(float_accuracy=float(np.mean(float_cls == labels)),
                   fakequant_accuracy=float(np.mean(fq_cls == labels)),
                   agreement=float(np.mean(fq_cls == ref.classes)),
                   logits_identical=float(np.mean(np.all(fq_int == ref.logits, axis=1))),
                   float_seconds=time.perf_counter() - t0)
    return out
