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


def add_cluster_arguments(parser, cached: str = "finished builds"):
    """The Dask options of the commands whose builds are tasks (hw.flow.cluster): --jobs,
    --scheduler, --cache-dir (of ``cached``), --no-cache."""
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                        help="worker processes of the embedded Dask cluster (builds at the same time)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="run the builds on the Dask scheduler at ADDRESS (tcp://HOST:8786) and its workers "
                             "instead (--jobs is then ignored)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help=f"cache of {cached} (default: build/cache/tasks in the repository)")
    parser.add_argument("--no-cache", action="store_true", help="build again even what is cached (and cache nothing)")
