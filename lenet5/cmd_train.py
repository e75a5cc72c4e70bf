"""Train the float LeNet-5 on MNIST and write a checkpoint plus a JSON training log.

Training is deterministic for a given seed (fixed thread count, deterministic algorithms,
seeded shuffling and augmentation). Without options it reproduces the shipped checkpoint of the
chosen variant: `lenet5 train --variant modern` writes models/modern.pt and
models/modern.log.json. Options left out take the variant's defaults (golden.train.DEFAULTS).
"""

import argparse

from lenet5 import MODELS_DIR, positive_int

HELP = "train the float LeNet-5 on MNIST (writes models/<variant>.pt and .log.json)"

# Defaults of golden.train.DEFAULTS, repeated here for the help text only (importing golden.train
# would import torch, which `lenet5 --help` must not do); run() passes None for options left out.
_DEFAULT_HELP = {"epochs": "15 for modern, 20 for classic and classic-rbf",
                 "batch_size": "128", "lr": "0.003",
                 "temperature": "8 for classic-rbf, 1 for the others"}


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def add_arguments(parser):
    parser.add_argument("--variant", choices=("modern", "classic", "classic-rbf"), default="modern",
                        help="modern: ReLU, max pooling, full C3; classic: the 1998 paper's "
                             "scaled tanh, trainable sub-sampling and sparse C3 (Table I); "
                             "classic-rbf: classic with the paper's input scaling (-0.1/1.175) "
                             "and RBF output units on fixed 7x12 digit bitmaps")
    parser.add_argument("--epochs", type=positive_int, metavar="N", default=argparse.SUPPRESS,
                        help=f"passes over the 60,000 training images "
                             f"(default: {_DEFAULT_HELP['epochs']})")
    parser.add_argument("--seed", type=int, metavar="S", default=0,
                        help="seed of the initial weights, shuffling and augmentation")
    parser.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS,
                        help="folder with the four MNIST IDX files, raw or .gz (default: "
                             "$LENET5_MNIST, else ../shared/mnist next to the repository, else "
                             "~/.cache/lenet5/mnist)")
    parser.add_argument("--out", metavar="PATH", default=argparse.SUPPRESS,
                        help=f"checkpoint to write; the log goes next to it as <stem>.log.json "
                             f"(default: {MODELS_DIR}/<variant>.pt, '-' -> '_')")
    parser.add_argument("--batch-size", type=positive_int, metavar="B",
                        default=argparse.SUPPRESS,
                        help=f"mini-batch size (default: {_DEFAULT_HELP['batch_size']})")
    parser.add_argument("--lr", type=_positive_float, metavar="LR", default=argparse.SUPPRESS,
                        help=f"peak learning rate of the one-cycle Adam schedule "
                             f"(default: {_DEFAULT_HELP['lr']})")
    parser.add_argument("--temperature", type=_positive_float, metavar="T", default=argparse.SUPPRESS,
                        help=f"softmax temperature of the cross-entropy loss, on logits / T "
                             f"(classic-rbf: on -y / T, y the RBF distances, which are far apart: a "
                             f"higher T keeps gradients flowing from images already classified "
                             f"right) (default: {_DEFAULT_HELP['temperature']})")
    parser.add_argument("--no-augment", action="store_true",
                        help="do not shift training images randomly by up to +-2 pixels")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args):
    from golden.train import train

    variant = args.variant
    out = getattr(args, "out", None) or MODELS_DIR / f"{variant.replace('-', '_')}.pt"
    model, log = train(variant,
                       epochs=getattr(args, "epochs", None),
                       seed=args.seed,
                       data=getattr(args, "data", None),
                       out=out,
                       batch_size=getattr(args, "batch_size", None),
                       lr=getattr(args, "lr", None),
                       augment=False if args.no_augment else None,
                       temperature=getattr(args, "temperature", None),
                       progress=not args.quiet)
    from golden.train import log_path_for
    print(f"{variant}: test accuracy {100 * log['test_accuracy']:.2f}% on "
          f"{log['hyperparameters']['test_images']} images, "
          f"{log['hyperparameters']['epochs']} epochs in {log['total_seconds']:.1f} s; "
          f"wrote {out} and {log_path_for(out)}")
    return 0
