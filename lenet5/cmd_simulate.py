"""Simulate the generated Verilog on MNIST digits and compare it bit for bit with the golden model.

Generates the accelerator (as `lenet5 generate`, into --out), builds it with Verilator (once per
design; cached under build/sim/), streams the images back to back through its AXI4-Stream ports,
and compares every image's 10 logits and class index with the integer reference
(golden.reference). The images are split over --jobs simulator processes running in parallel.

--driver fast (default) wraps the emitted design in a batch harness (sim/harness.py) that holds
the images in a memory, streams them with its own seeded gaps and backpressure and records every
output word with its cycle stamp: the cocotb testbench wakes once per refill of that memory, not
once per beat. --driver cocotb drives the ports beat by beat from cocotb (a lean driver without
stalls, cocotbext-axi's AXI-Stream models with --stall): slower, kept as the cross-check. The
report's sim_wall_s and sim_cycles_per_s give the simulation's own speed (without the build).

The shards are Dask tasks (hw.flow.cluster): on an embedded cluster of --jobs worker processes,
or on an existing scheduler with --scheduler tcp://HOST:8786 (start `dask scheduler` there and
`dask worker tcp://HOST:8786` on each machine; the Verilog, images and expected words travel with
the task, each worker builds the Verilator model once). --local runs the shards as simulator
processes of this command instead (no Dask; also used with --waves).

--images takes a count of MNIST test images, `all` (the 10,000), `stress` (1,000 images outside
MNIST's distribution: blank, saturated, noise, inverted digits, bars, ...), a .npy file of uint8
(N, 28, 28) or (28, 28), or a folder of 28x28 8-bit grayscale PNG files. MNIST images come with
their labels; for your own, --labels names a .npy file of one integer class 0..9 per image.
The RTL's and the golden model's class per image are in the JSON report (rtl_classes,
golden_classes, labels when known); for up to 20 images a table per image is printed (RTL and
golden class, label, the two largest logits).

With --stall P each cycle has an input gap with probability P and the output withholds
tready with probability P; without it the images go back to back at full rate, and the cycles per image (II: interval between consecutive images' last output beats) and the
latency (first pixel accepted to last output beat of the first image) are measured and compared
with the manifest's predictions.

On a mismatch the first mismatching image is re-run with every stage's output stream recorded
and the first layer, channel and position that differ are reported, with both values. The
exit status is 1 when any image mismatches (or the reset test fails), else 0.
"""

import argparse

from lenet5 import DEFAULT_MODEL, REPO_ROOT, add_arch_argument, positive_int

HELP = "simulate the generated Verilog on MNIST (cocotb + Verilator), bit-exact against golden"


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def default_jobs():
    import os
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def add_arguments(parser, images_default="100"):
    parser.add_argument("--model", metavar="JSON", default=str(DEFAULT_MODEL), help="quantized description")
    parser.add_argument("--images", metavar="N|all|stress|PATH", default=images_default,
                        help="first N MNIST test images, all 10,000, 1,000 stress images outside MNIST's "
                             "distribution (blank, saturated, noise, inverted, ...), a .npy file or a folder of PNG files")
    parser.add_argument("--labels", metavar="FILE.npy",
                        help="labels of the --images (1-D integer array, one class 0..9 per image) "
                             "for accuracy; MNIST images have theirs")
    parser.add_argument("--fold", metavar="SPEC", help="per-layer folding: C1=3x25,C3=8x25,... or a JSON file")
    parser.add_argument("--stall", type=_probability, default=0.0, metavar="P",
                        help="probability per cycle of an input gap and of output backpressure")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the stall patterns")
    parser.add_argument("--driver", choices=("fast", "cocotb"), default="fast",
                        help="fast: batch harness, Python once per batch (default); cocotb: per-beat cocotb drivers")
    parser.add_argument("--jobs", type=positive_int, default=default_jobs(), metavar="N",
                        help="image shards, simulated in parallel (the embedded Dask cluster's worker processes)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="simulate the shards on the Dask scheduler at ADDRESS (tcp://HOST:8786) and its workers")
    parser.add_argument("--local", action="store_true",
                        help="simulator processes of this command, no Dask cluster")
    parser.add_argument("--pgo", action="store_true",
                        help="profile-guided Verilator build of the fast driver's model (about 10 %% faster "
                             "simulation for about 30 s more build; cached like any build)")
    parser.add_argument("--waves", action="store_true",
                        help="record waveforms (FST/VCD per shard; large: use with few images)")
    parser.add_argument("--out", metavar="DIR",
                        help="folder for the generated Verilog (default: build/simulate/<model>-<fold>)")
    parser.add_argument("--data", metavar="DIR", help="MNIST folder (default: $LENET5_MNIST, ../shared/mnist, cache)")
    parser.add_argument("--reset-test", action="store_true",
                        help="also check recovery from a synchronous reset in the middle of an image")
    parser.add_argument("--no-diagnose", action="store_true", help="do not locate the first mismatch layer by layer")
    parser.add_argument("--json", metavar="PATH", help="write the report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    from lenet5.cmd_generate import add_target_argument

    add_target_argument(parser)
    add_arch_argument(parser)


def default_out(model, fold, target=None, arch="dataflow"):
    import hashlib
    from pathlib import Path

    tag = "default" if fold is None else hashlib.sha256(str(fold).encode()).hexdigest()[:10]
    suffix = (f"-{target}" if target else "") + (f"-{arch}" if arch != "dataflow" else "")
    return REPO_ROOT / "build" / "simulate" / f"{Path(model).stem}-{tag}{suffix}"


def simulate_with_progress(gen, images, *, stall=0.0, seed=0, jobs=2, waves=False, diagnose=True,
                           quiet=False, desc="simulating", driver="fast", cluster=None, pgo=False):
    """:func:`sim.accel.simulate` with a tqdm progress bar (images checked) on a terminal; none
    when stderr is not a terminal (a log gets the command's summary lines only) or ``quiet``.
    ``cluster``: a :class:`hw.flow.cluster.TaskCluster` for the shards (None: local processes)."""
    from tqdm import tqdm

    from sim.accel import simulate

    with tqdm(total=len(images), unit="img", desc=desc, disable=True if quiet else None, leave=False,
              dynamic_ncols=True) as bar:
        def progress(done):
            bar.update(min(done, len(images)) - bar.n)

        def status(text):
            bar.set_description(text)

        return simulate(gen, images, stall=stall, seed=seed, jobs=jobs, waves=waves, progress=progress,
                        status=status, diagnose_first=diagnose, driver=driver, cluster=cluster, pgo=pgo)


def _pct(x):
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _per_image_table(rows, logit_fmt, rbf=False) -> list:
    """The per-image lines of a small set: RTL and golden class, label, the two largest logits
    (for an RBF output the two smallest distances)."""
    labels = any(r["label"] is not None for r in rows)
    lines = [f"  {'image':>5}  {'RTL':>3}  {'golden':>6}" + (f"  {'label':>5}" if labels else "")
             + f"  {'2 smallest RBF distances' if rbf else 'top-2 logits'}, class: value ({logit_fmt} word)"]
    for r in rows:
        top = ", ".join(f"{t['class']}: {t['value']:+.3f} ({t['logit']})" for t in r["top2"])
        flag = "" if r["rtl_class"] == r["golden_class"] else "  RTL != golden"
        lines.append(f"  {r['image']:>5}  {r['rtl_class']:>3}  {r['golden_class']:>6}"
                     + (f"  {r['label'] if r['label'] is not None else '-':>5}" if labels else "")
                     + f"  {top}{flag}")
    return lines


def print_report(rep):
    n = rep["images"]
    if rep["rtl_accuracy"] is None:
        agree = round(rep["rtl_golden_class_agreement"] * n)
        classes = f"no labels (--labels FILE.npy gives accuracy); RTL and golden classes agree on {agree} of {n}"
    else:
        classes = f"RTL accuracy {_pct(rep['rtl_accuracy'])}, golden {_pct(rep['golden_accuracy'])}"
    print(f"{rep['variant']}: {n} images ({rep['image_source']}), {rep['mismatches']} mismatches, {classes}")
    if rep.get("per_image"):
        for line in _per_image_table(rep["per_image"], rep.get("logit_fmt", "logit"), rep.get("rbf_output", False)):
            print(line)
    if rep["stall"]:
        print(f"  stall {rep['stall']}: {rep['cycles_per_image']:.1f} cycles per image with gaps and backpressure "
              f"(predicted II without stalls {rep['predicted_ii_cycles']})")
    elif rep["ii_cycles"] is not None:
        print(f"  cycles per image (II) {rep['ii_cycles']} measured, {rep['predicted_ii_cycles']} predicted; "
              f"latency {rep['latency_cycles']} measured, {rep['predicted_latency_cycles']} predicted")
    else:
        print(f"  latency {rep['latency_cycles']} cycles measured, {rep['predicted_latency_cycles']} predicted "
              f"(one image: no II)")
    speed = (f", {rep['sim_cycles']:,} cycles, {rep['sim_cycles_per_s']:,.0f} cycles/s per process"
             if rep.get("sim_cycles") else "")
    print(f"  {rep['sim_wall_s']:.1f} s simulation ({rep['driver']} driver) on {rep['jobs']} process(es) "
          f"({rep['images_per_wall_s']:.1f} images/s{speed})"
          + (f", {rep['build_s']:.0f} s Verilator build" if rep["built"] else ""))
    for shard in rep["shards"]:
        if shard.get("waves"):
            print(f"  waves: {shard['waves']}")
    for m in rep["mismatch_list"][:5]:
        print(f"  image {m['image']}: {m['reason']}")
        d = m.get("diagnosis")
        if d and d.get("first_difference"):
            f = d["first_difference"]
            where = f"position (y={f['position'][0]}, x={f['position'][1]})" if f["position"] else "output"
            print(f"    first difference: layer {f['layer']} ({f['stage']}), channel {f['channel']}, {where}: "
                  f"got {f['got']}, expected {f['expected']}")
        elif d:
            print(f"    diagnosis: {d.get('note') or d.get('error')}")
    if rep["mismatches"] > 5:
        print(f"  ... {rep['mismatches'] - 5} more")


def run(args):
    import json

    from hw.generate import generate
    from dataclasses import replace

    from lenet5.cli import CliError
    from sim.accel import load_images, load_labels, reset_test

    images = load_images(args.images, data=args.data)
    if getattr(args, "labels", None):
        images = replace(images, labels=load_labels(args.labels, len(images)),
                         source=f"{images.source}, labels {args.labels}")
    target = getattr(args, "target", None)
    arch = getattr(args, "arch", "dataflow")
    out = args.out or default_out(args.model, args.fold, target, arch)
    gen = generate(args.model, out, args.fold, lint=False, target=target, arch=arch)
    kwargs = dict(stall=args.stall, seed=args.seed, jobs=args.jobs, waves=args.waves, diagnose=not args.no_diagnose,
                  quiet=args.quiet, driver=getattr(args, "driver", "fast"), pgo=getattr(args, "pgo", False))
    if getattr(args, "local", False) or args.waves:
        if args.scheduler:
            raise CliError("--scheduler runs the shards on a Dask cluster; --local and --waves run them here: "
                           "choose one")
        rep = simulate_with_progress(gen, images, **kwargs)
    else:
        from hw.flow.cluster import ClusterError, TaskCluster

        try:
            with TaskCluster(jobs=args.jobs, scheduler=args.scheduler,
                             log=(lambda text: None) if args.quiet else print) as cluster:
                rep = simulate_with_progress(gen, images, cluster=cluster, **kwargs)
        except ClusterError as exc:
            raise CliError(str(exc)) from None
    rep["model"] = gen.manifest["model"]
    ok = rep["mismatches"] == 0
    if args.reset_test:
        source = images if len(images) >= 7 else load_images(7, data=args.data)
        rep["reset_test"] = reset_test(gen, source)
        ok = ok and rep["reset_test"]["passed"]
    print_report(rep)
    if args.reset_test:
        r = rep["reset_test"]
        print(f"  reset test: {'passed' if r['passed'] else 'FAILED: ' + str(r['message'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=1, sort_keys=True)
            f.write("\n")
    return 0 if ok else 1
