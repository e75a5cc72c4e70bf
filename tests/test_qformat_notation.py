"""QFormat's notation (issue 15): ``sQm.n`` stays as shipped; formats with fewer integer bits than
the sign needs (``sQ0.4``, ``sQ-1.5``) are explained with their HLS type and real range."""

import json

import pytest

from golden.qformat import QFormat
from lenet5 import MODELS_DIR


def test_str_unchanged_for_every_shipped_format():
    """The strings in the shipped models (``"q"``) are what str() writes, unusual ones included."""
    for path in sorted(MODELS_DIR.glob("*.json")):
        text = path.read_text()
        if '"q": ' not in text:
            continue

        def check(obj):
            if isinstance(obj, dict):
                if "q" in obj and "bits" in obj:
                    assert str(QFormat.from_dict(obj)) == obj["q"], path
                for v in obj.values():
                    check(v)
            elif isinstance(obj, list):
                for v in obj:
                    check(v)

        check(json.loads(text))


@pytest.mark.parametrize("fmt, text, ap, unusual", [
    (QFormat(8, 7, True), "sQ1.7", "ap_fixed<8,1>", False),
    (QFormat(8, 8, False), "uQ0.8", "ap_ufixed<8,0>", False),
    (QFormat(16, 10, True), "sQ6.10", "ap_fixed<16,6>", False),
    (QFormat(4, 4, True), "sQ0.4", "ap_fixed<4,0>", True),
    (QFormat(4, 5, True), "sQ-1.5", "ap_fixed<4,-1>", True),
    (QFormat(8, 9, False), "uQ-1.9", "ap_ufixed<8,-1>", True),
    (QFormat(8, -2, True), "sQ10.-2", "ap_fixed<8,10>", True),
])
def test_ap_type_and_unusual(fmt, text, ap, unusual):
    assert str(fmt) == text and fmt.ap_type == ap and fmt.unusual is unusual


def test_describe_gives_the_real_range():
    assert QFormat(4, 5, True).describe() == \
        "sQ-1.5 (ap_fixed<4,-1>: 4 bits, 5 fractional; [-0.25, 0.21875] in steps of 2^-5)"
    assert QFormat(8, 7, True).describe() == \
        "sQ1.7 (ap_fixed<8,1>: 8 bits, 7 fractional; [-1, 0.9921875] in steps of 2^-7)"
    assert QFormat(8, -2, True).describe().endswith("[-512, 508] in steps of 2^2)")
    assert QFormat(10, 14, True).describe().endswith("[-0.03125, 0.03118896484375] in steps of 2^-14)")


def test_docstring_documents_the_notation():
    import golden.qformat as qformat

    doc = qformat.__doc__
    assert "sQ-1.5" in doc and "ap_fixed<W,I>" in doc and "below" in doc


def test_quantize_table_explains_unusual_formats():
    from golden.qnet import QNet
    from lenet5.cmd_quantize import format_table

    lines = format_table(QNet.load(MODELS_DIR / "modern_w4a8_qat.json"))
    assert any(" w sQ-1.5 " in line for line in lines)
    assert "    sQ-1.5 (ap_fixed<4,-1>: 4 bits, 5 fractional; [-0.25, 0.21875] in steps of 2^-5)" in lines
    assert not any("sQ1.7 (" in line for line in lines)       # usual formats are not explained
