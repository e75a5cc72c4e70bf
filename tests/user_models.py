"""LeNet-style models written as a user would (tutorial style), for the import tests and the
acceptance runs of issue 17. Nothing here uses the project's own model code.

``python -m tests.user_models OUT_DIR [--images N] [--epochs E]`` trains the three acceptance
models on MNIST (inputs ``Normalize(0.1307, 0.3081)`` after ``ToTensor``) and writes
``sequential.pt`` (a state dict of an ``nn.Sequential``, 28x28 input, padding 2),
``sequential_module.pt`` (the same, pickled whole), ``net.ts`` (TorchScript of a class with
``conv1..fc3``, ReLU and max pooling), ``net_state.pt`` (its state dict), ``net.onnx`` and
``brevitas_qat.onnx`` (a Brevitas QAT model exported to QONNX).
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

MEAN, STD = 0.1307, 0.3081


def sequential_lenet():
    """(1) ``nn.Sequential``, 28x28 input, padding 2 on the first conv."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


class Net(nn.Module):
    """(2) The PyTorch tutorial's class with ``conv1..fc3``, ReLU and max pooling (28x28, padding 2)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def brevitas_lenet(w_bits=4, a_bits=4, widths=(6, 16, 120, 84)):
    """(3) A Brevitas QAT LeNet: 8-bit input quantizer, ``w_bits`` weights, ``a_bits`` unsigned ReLU
    outputs, 32-bit integer biases, power-of-two (fixed-point) scales, as for an FPGA export.
    ``widths``: the channels of conv1, conv2 and the units of fc1, fc2."""
    c1, c3, f5, f6 = widths
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import (
        Int8ActPerTensorFixedPoint,
        Int8WeightPerTensorFixedPoint,
        Int32Bias,
        Uint8ActPerTensorFixedPoint,
    )

    def conv(i, o, k, **kw):
        return QuantConv2d(i, o, k, weight_bit_width=w_bits, weight_quant=Int8WeightPerTensorFixedPoint,
                           bias_quant=Int32Bias, **kw)

    def fc(i, o):
        return QuantLinear(i, o, bias=True, weight_bit_width=w_bits, weight_quant=Int8WeightPerTensorFixedPoint,
                           bias_quant=Int32Bias)

    def relu():
        return QuantReLU(bit_width=a_bits, act_quant=Uint8ActPerTensorFixedPoint, return_quant_tensor=True)

    class QuantLeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = QuantIdentity(bit_width=8, act_quant=Int8ActPerTensorFixedPoint, return_quant_tensor=True)
            self.conv1, self.relu1 = conv(1, c1, 5, padding=2), relu()
            self.conv2, self.relu2 = conv(c1, c3, 5), relu()
            self.fc1, self.relu3 = fc(c3 * 25, f5), relu()
            self.fc2, self.relu4 = fc(f5, f6), relu()
            self.fc3 = fc(f6, 10)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            x = self.inp(x)
            x = self.pool(self.relu1(self.conv1(x)))
            x = self.pool(self.relu2(self.conv2(x)))
            x = x.flatten(1)
            x = self.relu3(self.fc1(x))
            x = self.relu4(self.fc2(x))
            return self.fc3(x)

    return QuantLeNet()


def mnist_tensors(images, labels, normalize=True):
    """``ToTensor`` (p/255), then ``Normalize(MEAN, STD)``: ``(N, 1, 28, 28)`` floats and labels."""
    x = torch.tensor(images, dtype=torch.float32)[:, None] / 255.0
    if normalize:
        x = (x - MEAN) / STD
    return x, torch.tensor(labels, dtype=torch.long)


def train(model, images, labels, epochs=1, batch=64, lr=1e-3, seed=0, normalize=True):
    """Adam and cross-entropy, as the tutorials; returns the model in eval mode."""
    torch.manual_seed(seed)
    x, y = mnist_tensors(images, labels, normalize)
    opt = torch.optim.Adam(model.parameters(), lr)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


def export_qonnx(model, path):
    """Brevitas' QONNX export with a 1x1x28x28 example input, as one file (no external data)."""
    import onnx
    from brevitas.export import export_qonnx as _export

    _export(model, torch.zeros(1, 1, 28, 28), str(path))
    onnx.save(onnx.load(str(path)), str(path), save_as_external_data=False)
    Path(str(path) + ".data").unlink(missing_ok=True)


#: The tiny Brevitas model committed for the fast tests (tests/data/import/brevitas_tiny.onnx).
TINY_WIDTHS = (4, 8, 32, 16)


def write_tiny_qonnx(path, images=2000):
    """Train the tiny Brevitas model (:data:`TINY_WIDTHS`) on the first ``images`` MNIST training
    images for one epoch and export it to QONNX at ``path`` (how tests/data/import/brevitas_tiny.onnx
    was made)."""
    from golden.mnist import load_mnist

    x, y = load_mnist("train")
    export_qonnx(train(brevitas_lenet(widths=TINY_WIDTHS), x[:images], y[:images]), path)


def main(argv=None):
    import argparse
    import time

    from golden.mnist import load_mnist

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("out")
    p.add_argument("--images", type=int, default=60000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--tiny-qonnx", action="store_true", help="only write OUT/brevitas_tiny.onnx (the tests' file)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.tiny_qonnx:
        write_tiny_qonnx(out / "brevitas_tiny.onnx")
        return
    x, y = load_mnist("train")
    x, y = x[:args.images], y[:args.images]
    t0 = time.perf_counter()
    seq = train(sequential_lenet(), x, y, args.epochs)
    torch.save(seq.state_dict(), out / "sequential.pt")
    torch.save(seq, out / "sequential_module.pt")
    net = train(Net(), x, y, args.epochs)
    torch.save(net.state_dict(), out / "net_state.pt")
    torch.jit.save(torch.jit.script(net), str(out / "net.ts"))
    torch.onnx.export(net, torch.zeros(1, 1, 28, 28), str(out / "net.onnx"), dynamo=False)
    qat = train(brevitas_lenet(), x, y, args.epochs)
    export_qonnx(qat, out / "brevitas_qat.onnx")
    print(f"trained and wrote the models into {out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
