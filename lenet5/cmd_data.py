"""Get the data the other commands use.

`lenet5 data download` fetches the four MNIST IDX files (train and test images and labels,
gzipped) from the standard mirrors, checks each one's MD5 against the official value and
renames it into place; files already there are kept. Without --dir the files go where the
commands look for them: $LENET5_MNIST when set, else the shared folder ../shared/mnist next to
the repository when it exists, else the user cache ~/.cache/lenet5/mnist ($XDG_CACHE_HOME).
"""

HELP = "download the MNIST files (checksummed, from the standard mirrors)"


def add_arguments(parser):
    from lenet5.cli import _Formatter

    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    download = actions.add_parser("download", help="download the MNIST files that are missing",
                                  description=__doc__, formatter_class=_Formatter)
    download.add_argument("--dir", metavar="DIR",
                          help="folder to download into (default: where the commands look: $LENET5_MNIST, "
                               "../shared/mnist, ~/.cache/lenet5/mnist)")
    download.add_argument("--split", choices=("train", "test", "all"), default="all",
                          help="which split's two files")


def run(args):
    import os

    from golden.mnist import ENV_VAR, SPLITS, download_mnist, find_mnist_dir

    splits = tuple(SPLITS) if args.split == "all" else (args.split,)
    files = download_mnist(args.dir, splits=splits)
    for name, path, fetched in files:
        size = path.stat().st_size
        print(f"  {path.name}: {'downloaded' if fetched else 'already there'} ({size / 1e6:.1f} MB)")
    folder = files[0][1].parent
    print(f"MNIST {', '.join(splits)} in {folder}")
    found = None
    try:
        found = find_mnist_dir()
    except ValueError:
        pass
    if found != folder:
        print(f"  the commands do not look there by default: pass --data {folder} or set {ENV_VAR}={folder}"
              + (f" (now {os.environ[ENV_VAR]})" if os.environ.get(ENV_VAR) else ""))
    return 0
