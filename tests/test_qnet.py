"""The quantized-network description: round trip, determinism, and rejection of malformed files."""

import json

import numpy as np
import pytest

from golden.qnet import QNet, QNetError


def test_round_trip_is_identical(random_qnet, tmp_path):
    _, qnet = random_qnet
    path = tmp_path / "q.json"
    qnet.save(path)
    again = QNet.load(path)
    assert again.dumps() == qnet.dumps()
    for a, b in zip(qnet.layers, again.layers):
        if a.weights is not None:
            assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
        assert (a.in_fmt, a.out_fmt, a.acc_fmt, a.act_fmt, a.requant) == (b.in_fmt, b.out_fmt, b.acc_fmt, b.act_fmt, b.requant)
    assert again.layer("C3").table == qnet.layer("C3").table


def test_arrays_are_read_only(random_qnet):
    _, qnet = random_qnet
    with pytest.raises(ValueError):
        qnet.layer("C1").weights[0, 0, 0, 0] = 1


def _mutate(qnet, fn):
    d = json.loads(qnet.dumps())
    fn(d)
    return d


def _layer(d, name):
    return next(l for l in d["layers"] if l["name"] == name)


def _narrow_acc(layer):
    """One bit less than the worst-case bound needs (the biases still fit)."""
    bits = layer["acc_fmt"]["bits"] - 1
    layer["acc_fmt"].update(bits=bits, min=-(1 << (bits - 1)), max=(1 << (bits - 1)) - 1)


CASES = [
    ("format", lambda d: d.update(format="something-else")),
    ("version", lambda d: d.update(version=99)),
    ("variant", lambda d: d.update(variant="resnet")),
    ("layers", lambda d: d.pop("layers")),
    ("layers\\[0\\] \\(C1\\).weights", lambda d: _layer(d, "C1")["weights"].__setitem__(0, 10**6)),
    ("weights", lambda d: _layer(d, "C1")["weights"].pop()),
    ("w_fmt", lambda d: _layer(d, "C3")["w_fmt"].update(bits=40)),
    ("acc_fmt.bits", lambda d: _narrow_acc(_layer(d, "C5"))),
    ("bias", lambda d: _layer(d, "F6")["bias"].pop()),
    ("in_shape", lambda d: _layer(d, "C5").update(in_shape=[16, 4, 4])),
    ("in_fmt", lambda d: _layer(d, "F6")["in_fmt"].update(frac=3)),
    ("requant.shift", lambda d: _layer(d, "OUT")["requant"].update(shift=-1)),
    ("requant.multiplier", lambda d: _layer(d, "OUT")["requant"].update(multiplier=0)),
    ("activation.kind", lambda d: _layer(d, "F6")["activation"].update(kind="sigmoid")),
    ("max", lambda d: _layer(d, "C1")["out_fmt"].update(max=7)),
    ("kind", lambda d: _layer(d, "C1").update(kind="deconv")),
    ("expected integers", lambda d: _layer(d, "C1").update(weights=[0.5] * len(_layer(d, "C1")["weights"]))),
]


@pytest.mark.parametrize("field,mutate", CASES, ids=[c[0] for c in CASES])
def test_malformed_description_is_rejected_naming_the_field(random_qnet, tmp_path, field, mutate):
    _, qnet = random_qnet
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_mutate(qnet, mutate)))
    with pytest.raises(QNetError, match=field):
        QNet.load(path)


def test_classic_specific_rejections(tmp_path):
    from tests.conftest import _random_qnet
    _, qnet = _random_qnet("classic")

    def absent_pair(d):
        c3 = _layer(d, "C3")
        c3["weights"][3 * 25] = 1          # output 0, input 3: absent in Table I
    def short_lut(d):
        _layer(d, "C1")["activation"]["lut"].pop()
    def bad_table(d):
        _layer(d, "C3")["table"][0] = [2, 1]
    for fn, field in [(absent_pair, "table\\[0\\] leaves out"), (short_lut, "activation.lut"),
                      (bad_table, "table\\[0\\]")]:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(_mutate(qnet, fn)))
        with pytest.raises(QNetError, match=field):
            QNet.load(path)


def test_missing_and_non_json_files(tmp_path):
    with pytest.raises(QNetError, match="no such model file"):
        QNet.load(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(QNetError, match="not a JSON"):
        QNet.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("[1, 2]")
    with pytest.raises(QNetError, match="top level"):
        QNet.load(tmp_path / "y.json")
