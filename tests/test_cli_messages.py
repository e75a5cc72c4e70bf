"""The command line's help and messages (issue 15): every subcommand's --help names each default
once and only the defaults the command uses; user errors name the fix. Pure Python, fast."""

import argparse
import re

import pytest

from lenet5.cli import COMMANDS, build_parser, main


def _subparsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def _option_helps(p):
    """``{"--opt": help text as printed (%(default)s expanded), whitespace folded}``."""
    fmt = p._get_formatter()
    out = {}
    for action in p._actions:
        if action.option_strings and action.help is not argparse.SUPPRESS:
            out[action.option_strings[-1]] = " ".join(fmt._expand_help(action).split())
    return out


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_each_default_once_and_never_none(command):
    p = _subparsers()[command]
    text = " ".join(p.format_help().split())
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text
    for option, help_ in _option_helps(p).items():
        assert help_.lower().count("default:") <= 1, f"{command} {option}: {help_}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_default_is_the_parsers_default(command):
    """Where the formatter adds "(default: X)", X is what the option is set to when left out."""
    p = _subparsers()[command]
    for action in p._actions:
        if not action.option_strings or action.help is argparse.SUPPRESS:
            continue
        help_ = " ".join(p._get_formatter()._expand_help(action).split())
        m = re.search(r"\(default: ([^()]*)\)$", help_)
        if m and action.help and "default:" not in action.help:
            assert m.group(1) == str(action.default), f"{command} {action.option_strings}: {help_}"


def test_required_target_shows_no_default():
    for command in ("synth", "sweep"):
        helps = _option_helps(_subparsers()[command])
        assert "default" not in helps["--target"], helps["--target"]


def test_evaluate_images_default_once():
    helps = _option_helps(_subparsers()["evaluate"])
    assert helps["--images"] == "first N test images only (default: all 10,000)"


def test_quantize_out_names_the_default_it_uses():
    """The description goes next to the checkpoint (golden.quantize.quantize_with_options), not
    into models/ whatever the checkpoint."""
    helps = _option_helps(_subparsers()["quantize"])
    assert "<the checkpoint's folder>/<variant>_<tag>.json" in helps["--out"]
    assert "default: models/" not in helps["--out"]
    for word in ("int8", "w<W>a<A>", "_mixed", "_qat"):       # golden.quantize._tag
        assert word in helps["--out"]


def test_sweep_dry_run_needs_no_out(tmp_path, capsys):
    from tests.test_synth import modern_qnet

    model = tmp_path / "m.json"
    modern_qnet().save(model)
    assert main(["sweep", "--model", str(model), "--target", "ice40-up5k", "--folds", "C1=1x1", "--dry-run"]) == 0
    assert "1 folds" in capsys.readouterr().out
    assert main(["sweep", "--model", str(model), "--target", "ice40-up5k", "--folds", "C1=1x1"]) == 2
    assert "--out DIR is required" in capsys.readouterr().err


# -- --fold: a layer named twice -------------------------------------------------------------

@pytest.mark.parametrize("spec", ["C1=3x25,C1=6x25", "C1=3x25,c1=3x25"])
def test_fold_refuses_a_layer_named_twice(spec):
    from hw.plan.fold import Fold, FoldError

    with pytest.raises(FoldError, match=r"layer C1 is named twice \(C1=3x25 and C1=\dx25\)"):
        Fold.parse(spec)


@pytest.mark.parametrize("text", ['{"C1": [3, 25], "C1": [6, 25]}', '{"C1": [3, 25], "c1": [6, 25]}'])
def test_fold_file_refuses_a_layer_named_twice(tmp_path, text):
    from hw.plan.fold import Fold, FoldError

    path = tmp_path / "fold.json"
    path.write_text(text)
    with pytest.raises(FoldError, match=r"fold file .*fold\.json: layer [Cc]1 is named twice"):
        Fold.parse(str(path))


def test_cli_fold_named_twice_is_a_usage_error(tmp_path, capsys):
    from tests.test_synth import modern_qnet

    model = tmp_path / "m.json"
    modern_qnet().save(model)
    assert main(["synth", "--model", str(model), "--target", "ecp5-25k", "--fold", "C1=3x25,C1=6x25"]) == 2
    assert "layer C1 is named twice" in capsys.readouterr().err


# -- --images: the shape and file type the user gave -----------------------------------------

def _image_error(path):
    from sim.images import ImageError, load_images

    with pytest.raises(ImageError) as info:
        load_images(str(path))
    return str(info.value)


def test_images_flat_array_reports_the_given_shape(tmp_path):
    import numpy as np

    np.save(tmp_path / "flat.npy", np.zeros((10, 784), np.uint8))
    msg = _image_error(tmp_path / "flat.npy")
    assert "got (10, 784)" in msg and "(1, 10, 784)" not in msg
    assert "x.reshape(-1, 28, 28)" in msg
    np.save(tmp_path / "small.npy", np.zeros((20, 20), np.uint8))
    assert "got (20, 20)" in _image_error(tmp_path / "small.npy")


def test_images_text_file_named_npy_says_text(tmp_path):
    (tmp_path / "digits.npy").write_text("0 0 12 255\n0 1 2 3\n")
    msg = _image_error(tmp_path / "digits.npy")
    assert "it is a text file (starts with '0 0 12 255'" in msg and "np.loadtxt" in msg
    assert "pickle" not in msg


def test_images_other_file_types(tmp_path):
    import numpy as np

    np.save(tmp_path / "objects.npy", np.array([{}], dtype=object), allow_pickle=True)
    assert "a .npy file of Python objects (dtype object)" in _image_error(tmp_path / "objects.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    assert "the file is empty" in _image_error(tmp_path / "empty.npy")
    (tmp_path / "zipped.npy").write_bytes(b"PK\x03\x04rest")
    assert "zip archive" in _image_error(tmp_path / "zipped.npy")


# -- evaluate --confusion: the title names the model file and the accuracy -------------------

def test_confusion_title_names_model_file_and_accuracy(tmp_path, monkeypatch, capsys):
    import numpy as np

    from golden import evaluate
    from lenet5 import MODELS_DIR
    from tests.test_mnist import write_split

    rng = np.random.default_rng(1)
    data = write_split(tmp_path / "mnist", rng.integers(0, 256, (8, 28, 28), dtype=np.uint8),
                       rng.integers(0, 10, 8, dtype=np.uint8))
    seen = {}
    monkeypatch.setattr(evaluate, "plot_confusion", lambda m, path, title: seen.update(title=title))
    assert main(["evaluate", "--model", str(MODELS_DIR / "modern_int8.json"), "--int-only", "--data", str(data),
                 "--confusion", str(tmp_path / "c.png")]) == 0
    acc = re.search(r"int accuracy (\d+\.\d\d)%", capsys.readouterr().out).group(1)
    assert seen["title"] == f"modern_int8.json (modern, integer model)\naccuracy {acc}% on 8 MNIST test images"


def test_readme_states_mnist_search_order_inputs_and_boardless_builds():
    from lenet5 import REPO_ROOT

    text = " ".join((REPO_ROOT / "README.md").read_text().split())
    order = [text.index(s) for s in ("in `--data DIR`, then `$LENET5_MNIST`, then `../shared/mnist`",
                                     "then the user cache `~/.cache/lenet5/mnist`")]
    assert order == sorted(order)
    assert "`lenet5 data download [--dir DIR]`" in text
    assert "or your own LeNet-style model as TorchScript, state dict, ONNX or QONNX" in text
    assert "only the clock pin is constrained" in text and "for resources and timing only" in text
