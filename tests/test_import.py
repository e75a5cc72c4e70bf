"""Importing users' LeNet-style models (issue 17): PyTorch state dicts, TorchScript, pickled modules,
ONNX and QONNX; the supported family through the quantizer, the integer reference and the plans;
the refusals. Models are written as a user would (tests/user_models.py) and trained here on a
small subset for one short epoch (the QONNX file of the fast tier is committed:
tests/data/import/brevitas_tiny.onnx)."""

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from golden import reference
from golden.importers import ImportModelError, import_and_quantize, load_float_model
from golden.importers.graph import _fake_quant
from golden.mnist import load_mnist
from lenet5.cli import main
from tests import user_models as um

NORM = (um.MEAN, um.STD)


@functools.cache
def _mnist():
    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    return x[:2000], y[:2000], xt[:500], yt[:500]


@functools.cache
def _trained(kind):
    x, y, _, _ = _mnist()
    if kind == "sequential":
        return um.train(um.sequential_lenet(), x, y)
    if kind == "net":
        return um.train(um.Net(), x, y)
    return um.train(um.brevitas_lenet(), x, y)


def _user_scores(model, images):
    with torch.no_grad():
        return model(um.mnist_tensors(images, np.zeros(len(images), np.int64))[0]).numpy()


def _quantize(path, **kw):
    x, _, _, _ = _mnist()
    return import_and_quantize(path, x[:300], **kw)


# -- PyTorch ------------------------------------------------------------------------------------

def test_sequential_state_dict_and_pickled_module(tmp_path):
    model = _trained("sequential")
    _, _, xt, yt = _mnist()
    state, pickled = tmp_path / "seq.pt", tmp_path / "seq_module.pt"
    torch.save(model.state_dict(), state)
    torch.save(model, pickled)
    want = _user_scores(model, xt)
    for path, kw in ((state, {"activation": "relu", "pool": "max"}), (pickled, {"trust_pickle": True})):
        net, _runner, info = load_float_model(path, normalize=NORM, **kw)
        assert [s.kind for s in net.stages] == ["conv", "pool", "conv", "pool", "dense", "dense", "dense"]
        assert net.stages[0].pad == 2 and net.input_side == 28
        got = net.forward(xt).numpy()
        assert np.abs(got - want).max() < 1e-4, f"{info['format']}: imported float model differs from torch"
    assert float(np.mean(want.argmax(1) == yt)) > 0.6      # trained (2,000 images, one epoch)


def test_pickled_module_is_refused_without_trust(tmp_path, capsys):
    path = tmp_path / "seq_module.pt"
    torch.save(_trained("sequential"), path)
    with pytest.raises(ImportModelError, match="runs any code"):
        load_float_model(path)
    assert main(["quantize", "--checkpoint", str(path), "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    for words in ("pickled", "state_dict", "torch.jit", "--trust-pickle"):
        assert words in err, err
    assert not (tmp_path / "x.json").exists()


def test_class_model_state_dict_torchscript_fx_agree(tmp_path):
    model = _trained("net")
    _, _, xt, _ = _mnist()
    want = _user_scores(model, xt)
    paths = {"state": tmp_path / "net.pt", "script": tmp_path / "net_script.ts",
             "trace": tmp_path / "net_trace.ts", "module": tmp_path / "net_module.pt"}
    torch.save(model.state_dict(), paths["state"])
    torch.jit.save(torch.jit.script(model), str(paths["script"]))
    torch.jit.save(torch.jit.trace(model, torch.zeros(1, 1, 28, 28)), str(paths["trace"]))
    torch.save(model, paths["module"])
    for name, path in paths.items():
        kw = {"activation": "relu", "pool": "max"} if name == "state" else {"trust_pickle": True}
        net, runner, _info = load_float_model(path, normalize=NORM, **kw)
        assert [(s.kind, s.pad, s.activation) for s in net.stages] == [
            ("conv", 2, "relu"), ("pool", 0, "none"), ("conv", 0, "relu"), ("pool", 0, "none"),
            ("dense", 0, "relu"), ("dense", 0, "relu"), ("dense", 0, "none")], name
        assert np.abs(net.forward(xt).numpy() - want).max() < 1e-4, name
        if runner is not None:
            assert np.abs(runner(net.input_tensor(xt)) - want).max() < 1e-5, name


def test_state_dict_needs_activation_and_pool(tmp_path):
    path = tmp_path / "net.pt"
    torch.save(_trained("net").state_dict(), path)
    with pytest.raises(ImportModelError, match=r"--activation relu\|tanh and --pool max\|avg"):
        load_float_model(path)


def test_quantized_import_matches_float_and_validates(tmp_path):
    path = tmp_path / "seq.pt"
    torch.save(_trained("sequential"), path)
    qnet, net, _, _ = _quantize(path, trust_pickle=True, normalize=NORM)
    _, _, xt, yt = _mnist()
    assert qnet.variant == "imported" and [l.name for l in qnet.layers][:2] == ["IN", "C1"]
    ref = reference.run(qnet, xt, taps=True)
    fl = net.forward(xt).numpy().argmax(1)
    assert float(np.mean(ref.classes == fl)) >= 0.97
    assert float(np.mean(ref.classes == yt)) > 0.6
    # the IN layer is the normalisation, rounded: within half an LSB (+ the 16-bit multiplier's error)
    pix = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, :16, :16] = pix
    xin = reference.run(qnet, img).taps["IN"][0, 0, :16, :16].reshape(-1)
    fmt = qnet.layer("IN").out_fmt
    exact = ((np.arange(256) / 255.0 - um.MEAN) / um.STD) * 2.0 ** fmt.frac
    assert np.all(np.abs(xin - np.clip(exact, fmt.min, fmt.max)) <= 0.5 + 1e-3)


@pytest.mark.parametrize("normalize, side, pad, folded", [
    (None, 28, 2, True),             # ToTensor only: x = p/255, no offset
    ((0.0, 0.5), 28, 2, True),       # no offset: zero padding stays p = 0
    (NORM, 28, 0, True),             # no padding in normalised space
    (NORM, 32, 0, True),             # 32x32: the border is black pixels, before Normalize
    (NORM, 28, 2, False),            # padding after Normalize: input layer IN
])
def test_preprocessing_folded_exactly_or_input_layer(tmp_path, normalize, side, pad, folded):
    torch.manual_seed(1)
    c1 = 28 + 2 * pad - 4 if side == 28 else 28
    model = nn.Sequential(nn.Conv2d(1, 4, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * (c1 // 2) ** 2, 10)).eval()
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    qnet, net, _, _ = _quantize(path, activation="relu", pool="max", normalize=normalize, input_side=side)
    assert (qnet.layers[0].name != "IN") == folded
    _, _, xt, _ = _mnist()
    x = torch.tensor(xt[:50], dtype=torch.float32)[:, None] / 255.0
    if side == 32:
        x = nn.functional.pad(x, (2, 2, 2, 2))
    mean, std = normalize or (0.0, 1.0)
    with torch.no_grad():
        want = model((x - mean) / std).numpy()
    assert np.abs(net.forward(xt[:50]).numpy() - want).max() < 1e-4
    ref = reference.run(qnet, xt[:50])
    assert float(np.mean(ref.classes == want.argmax(1))) >= 0.9


# -- the family: quantizer, reference and plans accept it -------------------------------------------

def _batchnorm_lenet():
    m = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(400, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 10))
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for bn in (m[1], m[5], m[10]):
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return m


FAMILY = {
    "batchnorm": _batchnorm_lenet,
    "k3_pad1_tanh_avg": lambda: nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(8, 12, 3), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(12 * 6 * 6, 32), nn.Tanh(), nn.Linear(32, 10)),
    "relu_after_pool": lambda: nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(6, 16, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * 4 * 4, 10), nn.LogSoftmax(dim=1)),
    "three_convs": lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 7 * 7, 10)),
}


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_family_members_quantize_and_plan(tmp_path, name):
    from hw.arch import plan

    torch.manual_seed(2)
    model = FAMILY[name]().eval()
    path = tmp_path / "m.ts"
    torch.jit.save(torch.jit.script(model), str(path))
    qnet, net, runner, _ = _quantize(path, normalize=NORM)
    _, _, xt, _ = _mnist()
    want = runner(net.input_tensor(xt[:50]))
    assert np.abs(net.forward(xt[:50]).numpy() - want).max() < 1e-4
    ref = reference.run(qnet, xt[:50])
    assert float(np.mean(ref.classes == want.argmax(1))) >= 0.8
    p = plan(qnet)
    assert p.predicted_ii > 0 and set(p.fold) == {l.name for l in qnet.layers if l.kind in ("conv", "dense")}


def test_connection_table_from_zero_blocks(tmp_path):
    torch.manual_seed(3)
    model = um.sequential_lenet().eval()
    with torch.no_grad():
        model[3].weight[:, 3:] = 0                    # C3 output maps read input maps 0..2 only
        model[3].weight[0, 1:] = 0                    # and map 0 only input 0
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    qnet, _, _, _ = _quantize(path, activation="relu", pool="max")
    table = qnet.layer("C3").table
    assert table[0] == (0,) and all(row == (0, 1, 2) for row in table[1:])


# -- ONNX and QONNX -------------------------------------------------------------------------------

def test_onnx_import_matches_onnxruntime(tmp_path):
    pytest.importorskip("onnxruntime")
    model = _trained("net")
    path = tmp_path / "net.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(path), dynamo=False)
    net, runner, info = load_float_model(path, normalize=NORM)
    assert info["format"] == "onnx"
    _, _, xt, _ = _mnist()
    want = _user_scores(model, xt[:100])
    assert np.abs(net.forward(xt[:100]).numpy() - want).max() < 1e-4
    assert np.abs(runner(net.input_tensor(xt[:100])) - want).max() < 1e-4


DATA = Path(__file__).parent / "data" / "import"


def _check_qonnx_bit_exact(path, w_bits=4, a_bits=4):
    """Import a Brevitas QONNX export; every quantized feature map of the integer reference must
    equal the QONNX graph's (the imported float model, which equals the QONNX executor)."""
    qnet, net, runner, info = _quantize(path, normalize=NORM)
    assert info["format"] == "qonnx"
    assert qnet.layer("C1").w_fmt.bits == w_bits and qnet.layer("C1").act_fmt.bits == a_bits
    assert qnet.layer("IN").out_fmt.bits == 8 and qnet.layer("C1").act_fmt.rounding == "half_even"
    _, _, xt, _ = _mnist()
    xt = xt[:40]
    fq = net.forward(xt).numpy()
    if runner is not None:
        assert np.abs(runner(net.input_tensor(xt[:10])) - fq[:10]).max() < 1e-4    # the QONNX executor
    ref = reference.run(qnet, xt)
    h = _fake_quant(net.input_tensor(xt, torch.float64), net.input_quant)
    assert np.array_equal(np.rint(h.numpy() / net.input_quant[1]), ref.taps["IN"])
    names = [l.name for l in qnet.layers[1:]]
    f = torch.nn.functional
    for k, (st, name) in enumerate(zip(net.stages, names)):
        w = None if st.weight is None else torch.tensor(st.weight)
        if st.kind == "conv":
            h = f.conv2d(h, w, torch.tensor(st.bias), padding=st.pad)
        elif st.kind == "dense":
            h = f.linear(torch.flatten(h, 1), w, torch.tensor(st.bias))
        else:
            h = f.max_pool2d(h, 2)
        h = f.relu(h) if st.activation == "relu" else h
        if "out" in st.quant and k < len(net.stages) - 1:
            h = _fake_quant(h, st.quant["out"])
            got = ref.taps[name]
            want = np.rint(h.numpy() / st.quant["out"][1]).reshape(got.shape)
            assert np.array_equal(want, got), f"{name}: {int(np.sum(want != got))} values differ"
    assert float(np.mean(ref.classes == fq.argmax(1))) == 1.0
    return qnet


def test_qonnx_tiny_brevitas_file_is_bit_exact_with_its_quant_nodes():
    """tests/data/import/brevitas_tiny.onnx: `python -m tests.user_models tests/data/import --tiny-qonnx`."""
    pytest.importorskip("onnx")
    qnet = _check_qonnx_bit_exact(DATA / "brevitas_tiny.onnx")
    assert qnet.layer("C1").out_shape[0] == um.TINY_WIDTHS[0]


@pytest.mark.slow
def test_qonnx_brevitas_trained_here_is_bit_exact_with_its_quant_nodes(tmp_path):
    pytest.importorskip("brevitas")
    path = tmp_path / "qat.onnx"
    um.export_qonnx(_trained("brevitas"), path)
    _check_qonnx_bit_exact(path)


# -- refusals --------------------------------------------------------------------------------------

class Skip(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 6, 5, padding=2)
        self.fc = nn.Linear(6 * 14 * 14, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = x + torch.relu(self.conv2(x))
        return self.fc(torch.flatten(torch.max_pool2d(x, 2), 1))


@pytest.mark.parametrize("kind, make, message", [
    ("module", lambda: Skip(), r"node 'add' \(call_function add\) combines .*ResNet-style skip"),
    ("script", lambda: Skip(), r"aten::add.*combines .*ResNet-style skip"),
    ("module", lambda: nn.Sequential(nn.Conv2d(1, 6, 7), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                     nn.Linear(6 * 11 * 11, 10)),
     r"layer '0': Conv2d kernel not 3x3 or 5x5 \(kernel 7x7, stride 1, padding 0, 1 -> 6 channels\); supported"),
    ("module", lambda: nn.Sequential(nn.Conv2d(1, 6, 5, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 12 * 12, 10)),
     r"layer '0': Conv2d stride other than 1 \(kernel 5x5, stride 2"),
    ("onnx", lambda: nn.Sequential(nn.Conv2d(1, 6, 5, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 12 * 12, 10)),
     r"Conv2d stride other than 1 \(kernel 5x5, stride 2"),
    ("module", lambda: nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.BatchNorm2d(6), nn.Flatten(),
                                     nn.Linear(6 * 24 * 24, 10)),
     r"layer '2': batch norm that does not directly follow a Conv2d or Linear layer"),
    ("module", lambda: nn.Sequential(nn.Conv2d(1, 6, 5), nn.Sigmoid(), nn.Flatten(), nn.Linear(6 * 24 * 24, 10)),
     r"layer '1': Sigmoid"),
])
def test_unsupported_models_are_named(tmp_path, kind, make, message):
    model = make().eval()
    if kind == "module":
        path = tmp_path / "m.pt"
        torch.save(model, path)
        kw = {"trust_pickle": True}
    elif kind == "script":
        path = tmp_path / "m.ts"
        torch.jit.save(torch.jit.script(model), str(path))
        kw = {}
    else:
        path = tmp_path / "m.onnx"
        torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(path), dynamo=False)
        kw = {}
    with pytest.raises(ImportModelError, match=message):
        load_float_model(path, **kw)


def test_truncated_and_unknown_files(tmp_path):
    model = _trained("net")
    good = tmp_path / "net.pt"
    torch.save(model.state_dict(), good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(ImportModelError, match="truncated"):
        load_float_model(cut, activation="relu", pool="max")
    onnx_path = tmp_path / "net.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), str(onnx_path), dynamo=False)
    cut_onnx = tmp_path / "cut.onnx"
    cut_onnx.write_bytes(onnx_path.read_bytes()[:5000])
    with pytest.raises(ImportModelError, match="truncated"):
        load_float_model(cut_onnx)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world")
    with pytest.raises(ImportModelError, match="not a PyTorch file"):
        load_float_model(junk)
    import onnx

    m = onnx.load(str(onnx_path))
    m.opset_import[0].version = 99
    future = tmp_path / "future.onnx"
    onnx.save(m, str(future))
    with pytest.raises(ImportModelError, match=r"ONNX opset 99 of the default domain is not one this importer knows"):
        load_float_model(future)


def test_cli_quantize_and_evaluate_an_imported_model(tmp_path, capsys):
    import json

    path = tmp_path / "net.ts"
    torch.jit.save(torch.jit.script(_trained("net")), str(path))
    out = tmp_path / "net.json"
    assert main(["quantize", "--checkpoint", str(path), "--normalize", "0.1307,0.3081", "--calib-images", "300",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "imported" in text and "input layer IN" in text
    again = tmp_path / "again.json"
    assert main(["quantize", "--checkpoint", str(path), "--normalize", "0.1307,0.3081", "--calib-images", "300",
                 "--out", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()             # deterministic
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--model", str(out), "--images", "300", "--json", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["float_framework_agreement"] == 1.0 and r["float_framework_max_abs_diff"] < 1e-4
    assert r["framework_accuracy"] == r["float_accuracy"] and r["int_accuracy"] > 0.6
    assert "user's framework (TorchScript" in capsys.readouterr().out


def test_32x32_model_padding_after_normalize_is_refused(tmp_path):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 16 * 16, 10)).eval()
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(ImportModelError, match=r"a 32x32 model whose first conv pads \(padding 2\) after a Normalize"):
        _quantize(path, activation="relu", pool="max", normalize=NORM, input_side=32)
