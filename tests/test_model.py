"""Float LeNet-5: shapes, the C3 connection table, checkpoints, deterministic training and the
accuracy of the shipped checkpoints."""

import argparse

import pytest
import torch

from golden.model import (ACTIVATIONS, VARIANTS, LeNet5, SparseConv2d, Subsample,
                          load_checkpoint, save_checkpoint, scaled_tanh)
from golden.paper import C3_TABLE, TANH_A
from lenet5 import MODELS_DIR

#: Float test-accuracy targets on the 10,000 MNIST test images (classic-rbf: 99.21 % measured; its
#: int8 description's 99.0 % target is checked in test_cli_golden).
TARGETS = {"modern": 0.992, "classic": 0.990, "classic-rbf": 0.990}


@pytest.fixture(scope="module")
def mnist_test():
    from golden.mnist import load_mnist
    return load_mnist("test")


def _images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8).float() / 256


def test_unknown_variant_lists_valid_names():
    with pytest.raises(ValueError, match="modern, classic"):
        LeNet5("lenet")


@pytest.mark.parametrize("variant", VARIANTS)
def test_output_and_layer_shapes(variant):
    model = LeNet5(variant)
    x = _images(3)
    assert model(x).shape == (3, 10)
    rbf = variant == "classic-rbf"
    assert [(name, kind) for name, _, kind in model.layers()] == [
        ("c1", "conv"), ("s2", "pool"), ("c3", "conv"), ("s4", "pool"),
        ("c5", "dense"), ("f6", "dense"), ("out", "rbf" if rbf else "dense")]
    shapes = {"c1.weight": (6, 1, 5, 5), "c1.bias": (6,), "c3.weight": (16, 6, 5, 5),
              "c3.bias": (16,), "c5.weight": (120, 400), "c5.bias": (120,),
              "f6.weight": (84, 120), "f6.bias": (84,)}
    if not rbf:      # the RBF units' parameters are fixed (a buffer, not trained)
        shapes.update({"out.weight": (10, 84), "out.bias": (10,)})
    if variant != "modern":
        shapes.update({"s2.coef": (6,), "s2.bias": (6,), "s4.coef": (16,), "s4.bias": (16,)})
    params = {k: tuple(v.shape) for k, v in model.named_parameters()}
    assert params == shapes
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.zeros(2, 28, 28))


def test_modern_forward_by_hand():
    model = LeNet5("modern")
    x = _images(4, seed=1)
    a = torch.nn.functional.pad(x, (2, 2, 2, 2))
    a = torch.max_pool2d(torch.relu(model.c1(a)), 2)
    a = torch.max_pool2d(torch.relu(model.c3(a)), 2)
    a = torch.relu(model.f6(torch.relu(model.c5(a.flatten(1)))))
    torch.testing.assert_close(model(x), model.out(a), rtol=0, atol=0)


def test_classic_forward_by_hand():
    model = LeNet5("classic")
    with torch.no_grad():
        model.s2.coef.uniform_(-1, 1)
        model.s2.bias.uniform_(-1, 1)
    x = _images(4, seed=2)
    f = scaled_tanh
    a = f(model.c1(torch.nn.functional.pad(x, (2, 2, 2, 2))))
    blocks = a[:, :, 0::2, 0::2] + a[:, :, 0::2, 1::2] + a[:, :, 1::2, 0::2] + a[:, :, 1::2, 1::2]
    s2 = f(blocks * model.s2.coef.view(1, -1, 1, 1) + model.s2.bias.view(1, -1, 1, 1))
    torch.testing.assert_close(f(model.s2(a)), s2, rtol=1e-6, atol=1e-6)
    a = f(model.s4(f(model.c3(s2))))
    a = f(model.f6(f(model.c5(a.flatten(1)))))
    torch.testing.assert_close(model(x), model.out(a), rtol=1e-6, atol=1e-6)
    assert ACTIVATIONS["classic"]["after"] == ("c1", "s2", "c3", "s4", "c5", "f6")


def test_scaled_tanh_and_subsample_init():
    torch.testing.assert_close(scaled_tanh(torch.tensor([1.0, -1.0, 0.0])),
                               torch.tensor([1.0, -1.0, 0.0]), atol=2e-4, rtol=0)
    assert scaled_tanh(torch.tensor(100.0)).item() == pytest.approx(TANH_A)
    s = Subsample(6)
    assert torch.equal(s.coef, torch.full((6,), 0.25)) and torch.equal(s.bias, torch.zeros(6))


def test_classic_c3_has_60_connections_and_masked_weights_stay_zero():
    model = LeNet5("classic")
    c3 = model.c3
    assert isinstance(c3, SparseConv2d) and c3.mask.shape == (16, 6, 1, 1)
    pairs = {(o, i) for o in range(16) for i in range(6) if c3.mask[o, i, 0, 0] == 1}
    assert len(pairs) == 60
    assert pairs == {(o, i) for o, row in enumerate(C3_TABLE) for i in row}
    assert set(c3.mask.unique().tolist()) == {0.0, 1.0}
    absent = (c3.mask == 0).expand_as(c3.weight)
    assert torch.count_nonzero(c3.weight[absent]) == 0          # zeroed at construction
    before = c3.weight.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(_images(8)), torch.arange(8))
        opt.zero_grad()
        loss.backward()
        assert torch.count_nonzero(c3.weight.grad[absent]) == 0
        opt.step()
    assert torch.count_nonzero(c3.weight[absent]) == 0          # still zero after steps
    assert not torch.equal(c3.weight[~absent], before[~absent])  # connected ones trained
    # The forward pass ignores whatever is stored at absent pairs.
    x = _images(2)
    ref = model(x)
    with torch.no_grad():
        c3.weight[absent] = 5.0
    torch.testing.assert_close(model(x), ref, rtol=0, atol=0)
    model.apply_masks_()
    assert torch.count_nonzero(c3.weight[absent]) == 0


@pytest.mark.parametrize("variant", VARIANTS)
def test_checkpoint_round_trip(tmp_path, variant):
    torch.manual_seed(3)
    model = LeNet5(variant)
    meta = {"note": "x", "acc": 0.5, "epochs": [{"epoch": 1}]}
    path = tmp_path / "sub" / "m.pt"
    save_checkpoint(model, path, meta)
    loaded, got_meta = load_checkpoint(path)
    assert got_meta == meta and loaded.variant == variant and not loaded.training
    sd, ld = model.state_dict(), loaded.state_dict()
    assert sd.keys() == ld.keys() and all(torch.equal(sd[k], ld[k]) for k in sd)
    x = _images(5)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_checkpoint_rejects_bad_files(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match="is not a LeNet-5 checkpoint"):
        load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="is not a LeNet-5 checkpoint"):
        load_checkpoint(other)

    good = tmp_path / "good.pt"
    save_checkpoint(LeNet5("classic"), good, {})
    blob = torch.load(good, weights_only=True)

    def write(name, **changes):
        p = tmp_path / name
        torch.save({**blob, **changes}, p)
        return p

    with pytest.raises(ValueError, match="unknown LeNet-5 variant 'lenet4'.*modern, classic"):
        load_checkpoint(write("variant.pt", variant="lenet4"))
    with pytest.raises(ValueError, match="version"):
        load_checkpoint(write("version.pt", version=99))
    state = dict(blob["state_dict"])
    del state["s2.coef"]
    with pytest.raises(ValueError, match="missing tensors s2.coef"):
        load_checkpoint(write("missing.pt", state_dict=state))
    state = dict(blob["state_dict"], **{"c5.weight": torch.zeros(120, 399)})
    with pytest.raises(ValueError, match=r"c5.weight has shape \(120, 399\), expected \(120, 400\)"):
        load_checkpoint(write("shape.pt", state_dict=state))
    # A classic state dict is not a modern one.
    with pytest.raises(ValueError, match="unexpected tensors"):
        load_checkpoint(write("mixed.pt", variant="modern"))
    state = dict(blob["state_dict"], **{"c3.mask": torch.ones(16, 6, 1, 1)})
    with pytest.raises(ValueError, match="c3.mask"):
        load_checkpoint(write("mask.pt", state_dict=state))


def test_training_is_deterministic(tmp_path):
    from golden.train import log_path_for, train

    kw = dict(epochs=1, limit=512, test_limit=500, progress=False)
    m1, log1 = train("classic", seed=5, out=tmp_path / "a.pt", **kw)
    m2, _ = train("classic", seed=5, **kw)
    m3, _ = train("classic", seed=6, **kw)
    s1, s2, s3 = m1.state_dict(), m2.state_dict(), m3.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)
    absent = (m1.c3.mask == 0).expand_as(m1.c3.weight)
    assert torch.count_nonzero(m1.c3.weight[absent]) == 0
    assert log1["hyperparameters"]["train_images"] == 512
    assert len(log1["epochs"]) == 1 and {"loss", "train_acc", "test_acc", "seconds"} <= set(
        log1["epochs"][0])
    loaded, meta = load_checkpoint(tmp_path / "a.pt")
    assert all(torch.equal(s1[k], loaded.state_dict()[k]) for k in s1)
    assert meta["seed"] == 5 and log_path_for(tmp_path / "a.pt").is_file()
    m4, _ = train("modern", seed=5, **kw)
    m5, _ = train("modern", seed=5, **kw)
    assert all(torch.equal(v, m5.state_dict()[k]) for k, v in m4.state_dict().items())


def test_cli_help_defaults_match_train_defaults():
    from golden.train import DEFAULTS
    from lenet5 import cmd_train

    assert DEFAULTS["classic-rbf"]["epochs"] == DEFAULTS["classic"]["epochs"]
    assert cmd_train._DEFAULT_HELP["epochs"] == (
        f"{DEFAULTS['modern']['epochs']} for modern, {DEFAULTS['classic']['epochs']} for classic and classic-rbf")
    for key in ("batch_size", "lr"):
        assert {str(DEFAULTS[v][key]) for v in VARIANTS} == {cmd_train._DEFAULT_HELP[key]}
    temperatures = {v: DEFAULTS[v].get("temperature", 1.0) for v in VARIANTS}
    assert cmd_train._DEFAULT_HELP["temperature"] == (
        f"{temperatures['classic-rbf']:g} for classic-rbf, {temperatures['modern']:g} for the others")
    assert temperatures["modern"] == temperatures["classic"]
    assert all(DEFAULTS[v]["augment"] for v in VARIANTS)  # --no-augment turns it off
    parser = argparse.ArgumentParser()
    cmd_train.add_arguments(parser)
    args = parser.parse_args(["--variant", "classic", "--no-augment"])
    assert args.variant == "classic" and args.no_augment and not hasattr(args, "epochs")


@pytest.mark.parametrize("variant", VARIANTS)
def test_shipped_checkpoint_reaches_target(variant, mnist_test):
    from golden.train import evaluate_float

    images, labels = mnist_test
    assert len(labels) == 10000
    model, meta = load_checkpoint(MODELS_DIR / f"{variant.replace('-', '_')}.pt")
    assert model.variant == variant and meta["seed"] == 0
    acc = evaluate_float(model, images, labels)
    assert acc >= TARGETS[variant], f"{variant}: {acc:.4f} < {TARGETS[variant]}"
    assert acc == pytest.approx(meta["test_accuracy"], abs=2e-4)
    if variant != "modern":
        absent = (model.c3.mask == 0).expand_as(model.c3.weight)
        raw = torch.load(MODELS_DIR / f"{variant.replace('-', '_')}.pt", weights_only=True)["state_dict"]
        assert torch.count_nonzero(raw["c3.weight"][absent]) == 0
