"""The main job, end to end: the shipped int8 model -> Verilog -> bit-exact simulation on MNIST.

1. generate the accelerator from the quantized description (default models/modern_int8.json)
   into build/demo/ (lenet5_accel.v, manifest.json) and lint it with Verilator;
2. simulate it with cocotb + Verilator on the first 100 MNIST test images, streamed back to
   back through its AXI4-Stream ports, comparing every image's logits and class with the
   integer reference (golden.reference);
3. print accuracy (RTL and golden), mismatches, cycles per image and latency (measured and
   predicted), and the wall time.

The first run builds the Verilator model (about half a minute; cached under build/sim/).
Exit status 0 when the Verilog is lint-clean and every image matches bit for bit.
"""

from lenet5 import DEFAULT_MODEL, REPO_ROOT, positive_int

HELP = "main job: generate the shipped int8 model's Verilog and prove it on 100 MNIST images"


def add_arguments(parser):
    from lenet5.cmd_simulate import default_jobs

    parser.add_argument("--model", metavar="JSON", default=str(DEFAULT_MODEL), help="quantized description")
    parser.add_argument("--images", type=positive_int, default=100, metavar="N", help="MNIST test images to simulate")
    parser.add_argument("--out", metavar="DIR", default=str(REPO_ROOT / "build" / "demo"),
                        help="folder for the generated Verilog and manifest")
    parser.add_argument("--jobs", type=positive_int, default=default_jobs(), metavar="N",
                        help="simulator processes in parallel")
    parser.add_argument("--data", metavar="DIR", help="MNIST folder (default: $LENET5_MNIST, ../shared/mnist, cache)")
    parser.add_argument("--json", metavar="PATH", help="write the simulation report as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _rel(path):
    from pathlib import Path
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(args):
    import json
    import time

    from hw.generate import generate, load_model
    from lenet5.cmd_simulate import simulate_with_progress
    from sim.accel import load_images

    t0 = time.perf_counter()
    images = load_images(args.images, data=args.data)
    load_model(args.model)                  # a bad model file fails here, before any output
    print(f"generating the accelerator from {_rel(args.model)} ...", flush=True)
    gen = generate(args.model, args.out)
    t_gen = time.perf_counter() - t0
    rep = simulate_with_progress(gen, images, jobs=args.jobs, quiet=args.quiet)
    total = time.perf_counter() - t0
    m = gen.manifest
    lint = gen.lint_warnings
    lines = gen.verilog.read_text().count("\n")
    fold = ", ".join(f"{k}={v[0]}x{v[1]}" for k, v in m["fold"].items())
    rows = [
        ("model", f"{_rel(args.model)} ({m['variant']}, {m['multipliers']} multipliers; fold {fold})"),
        ("Verilog", f"{_rel(gen.verilog)} ({lines} lines, "
                    + ("lint clean" if not lint else f"{len(lint)} lint warnings") + f"), {_rel(gen.manifest_path)}"),
        ("images", f"{rep['images']} ({rep['image_source']})"),
        ("accuracy", f"RTL {100 * rep['rtl_accuracy']:.2f} %, golden {100 * rep['golden_accuracy']:.2f} %"),
        ("mismatches", f"{rep['mismatches']} of {rep['images']} images (10 logits + class, bit for bit)"),
        ("cycles per image", f"{rep['ii_cycles']} measured, {rep['predicted_ii_cycles']} predicted (II)"
         if rep["ii_cycles"] is not None else "n/a (one image)"),
        ("latency", f"{rep['latency_cycles']} cycles measured, {rep['predicted_latency_cycles']} predicted"),
        ("wall time", f"{rep['wall_s']:.1f} s simulation on {rep['jobs']} process(es) "
                      f"({rep['images_per_wall_s']:.1f} images/s)"
                      + (f", {rep['build_s']:.0f} s Verilator build" if rep["built"] else "")
                      + f", {t_gen:.1f} s generate + lint, {total:.1f} s in all"),
    ]
    width = max(len(k) for k, _ in rows)
    print("LeNet-5 accelerator demo")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    for mm in rep["mismatch_list"][:3]:
        print(f"  mismatch: image {mm['image']}: {mm['reason']}")
        f = (mm.get("diagnosis") or {}).get("first_difference")
        if f:
            print(f"    first difference: layer {f['layer']} ({f['stage']}), channel {f['channel']}, "
                  f"position {f['position']}: got {f['got']}, expected {f['expected']}")
    if args.json:
        rep["model"] = m["model"]
        with open(args.json, "w") as fh:
            json.dump(rep, fh, indent=1, sort_keys=True)
            fh.write("\n")
    return 0 if rep["mismatches"] == 0 and not lint else 1
