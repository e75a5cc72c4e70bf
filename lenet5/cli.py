"""``lenet5``: one console script with subcommands.

Each subcommand lives in its own module ``lenet5.cmd_<name>`` that defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules import their heavy dependencies
(torch, Amaranth, cocotb) inside ``run`` so that ``lenet5 --help`` stays fast.
"""

import argparse
import importlib
import sys

#: Subcommands in the order ``lenet5 --help`` lists them.
COMMANDS = ("train", "quantize", "evaluate", "generate", "simulate", "demo", "synth", "sweep", "results", "data")


class CliError(Exception):
    """A user-facing error: printed as ``lenet5: error: <message>`` with exit status 2."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the line breaks of the subcommands' descriptions, and add ``(default: X)`` to an
    option's help when there is something to say: not when the help already names its default
    (``default:``),
    the option is required, or the default is None, False, an empty list or suppressed (an
    option left out then means "not given", and the help says what happens)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default:" in text.lower() or action.required or not action.option_strings
                or default is None or default is False or default == [] or default is argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lenet5",
        description="FPGA accelerator generator for LeNet-5: train, quantize, evaluate, "
                    "generate Verilog, simulate it bit-exactly against the golden model, synthesise.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"lenet5.cmd_{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=_Formatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args._run(args) or 0
    except (CliError, FileNotFoundError, ValueError) as exc:
        # Errors raised on bad user input carry a message that names the problem and the fix.
        print(f"lenet5 {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
