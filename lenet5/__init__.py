"""Command-line front end of the LeNet-5 FPGA accelerator generator (``lenet5``)."""

from pathlib import Path

#: Repository root (the package is installed in editable mode from a checkout).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Folder of the shipped checkpoints and quantized descriptions.
MODELS_DIR = REPO_ROOT / "models"
#: The model every ``--model`` option defaults to: the shipped modern int8 description.
DEFAULT_MODEL = MODELS_DIR / "modern_int8.json"


def add_arch_argument(parser):
    """``--arch``: the accelerator architecture (:data:`hw.arch.ARCHITECTURES`)."""
    from hw.arch import ARCHITECTURES, DEFAULT_ARCH

    parser.add_argument("--arch", choices=tuple(ARCHITECTURES), default=DEFAULT_ARCH,
                        help="accelerator architecture (dataflow: layer-pipelined, every layer its own "
                             "datapath)")


def positive_int(text):
    """argparse type: an integer of at least 1, or a usage error naming the bad value."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
