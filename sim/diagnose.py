"""Locating a mismatch stage by stage: the debug build with tap ports, and the golden value of
every stage's output stream.

:func:`diagnose` generates the design under test again with ``taps=True``
(:func:`hw.generate.generate`: the same model, fold, target and architecture) into its own work
folder. That build has, for every datapath stage of :attr:`tap_stages` (all but the register
slices and the output stage), top-level output ports ``tap_<stage>__valid``,
``tap_<stage>__ready`` and ``tap_<stage>__payload`` (:attr:`hw.arch.dataflow.Stage.name`, e.g.
``c3_engine``). The testbench (``capture_taps`` in :mod:`sim.tb.tb_accel`) records every beat
transferred on them, and each stage's values are compared in stream order with the golden ones
(:func:`golden.reference.layer_accumulate`, :func:`golden.arith.requantize`, the layer outputs of
:func:`golden.reference.run`). The stages are found from the plan (the accelerator's stage list),
never from the Verilog text.
"""

from __future__ import annotations

import numpy as np

from golden import arith, reference
from golden.qnet import QNet
from sim.shards import FAST_BUILD, Run, cocotb_bench, timeout_cycles, work_dir

__all__ = ["DEBUG_BUILD", "diagnose", "tapped_design", "tap_ports"]

#: ``run_cocotb`` options of the diagnosis runs: the fast build. The tap ports are ports of the
#: top module, which the fast build keeps visible through VPI.
DEBUG_BUILD = FAST_BUILD

_TAP_SIGNALS = ("valid", "ready", "payload")


def tap_ports(stages) -> list:
    """The top-level port names of the tapped stages' output streams.

    Parameters
    ----------
    stages : list of hw.arch.dataflow.Stage
        The tapped stages (``accel.tap_stages`` of a ``taps=True`` build).

    Returns
    -------
    list of dict
        ``{"name": stage name, "valid", "ready", "payload": port names}`` per stage, in
        pipeline order: ``tap_<stage>__valid`` and so on (Amaranth flattens the member
        ``tap_<stage>`` of the top-level signature with ``__``).
    """
    return [{"name": s.name, **{k: f"tap_{s.name}__{k}" for k in _TAP_SIGNALS}} for s in stages]


def _target_of(accel):
    """The target name ``accel`` was generated for, as far as its gateware depends on it: the
    DSP blocks and primitive that :func:`hw.arch.accelerator` takes from the target."""
    target = getattr(getattr(accel, "plan", None), "target", None)
    if target is not None:
        return target.name
    if accel.dsp_blocks is None:
        return None
    from hw.targets import TARGETS

    for name, tgt in TARGETS.items():
        if tgt.vendor == accel.dsp_primitive and tgt.dsp_budget() == accel.dsp_blocks:
            return name
    raise ValueError(f"no target plans {accel.dsp_blocks} DSP blocks with primitive {accel.dsp_primitive!r}: "
                     "cannot generate the same design with tap ports")


def tapped_design(gen, out_dir=None):
    """``gen``'s design generated again with tap ports (``generate(..., taps=True)``).

    Parameters
    ----------
    gen : hw.generate.Generated
        The design under test. Its hardware is rebuilt from ``gen.accel`` (network, fold,
        target), not from ``gen.qnet``, which is the golden side and may differ in a test.
    out_dir : Path, optional
        Output folder; default: a ``taps`` folder in ``gen``'s work folder.

    Raises
    ------
    RuntimeError
        The tapped build's stages differ from the design's (it would not locate its fault).
    """
    from hw.arch import DEFAULT_ARCH
    from hw.generate import generate

    accel = gen.accel
    out = out_dir or work_dir(gen, "taps")
    tapped = generate(accel.qnet, out, accel.fold, lint=False, target=_target_of(accel),
                      arch=gen.manifest.get("arch", DEFAULT_ARCH), taps=True)
    same = ([(s.name, s.component.o.payload.shape().size) for s in tapped.accel.stages]
            == [(s.name, s.component.o.payload.shape().size) for s in accel.stages]
            and (tapped.accel.dsp_blocks, tapped.accel.dsp_primitive) == (accel.dsp_blocks, accel.dsp_primitive)
            and tapped.manifest["predicted_latency_cycles"] == gen.manifest["predicted_latency_cycles"])
    if not same:
        raise RuntimeError(f"the tapped build in {out} is not the design of {gen.verilog}")
    return tapped


def _stage_expected(qnet: QNet, stage, taps: dict) -> np.ndarray:
    """Golden values of a stage's output for a batch: (N, C, H, W) maps or (N, O) vectors."""
    layer = qnet.layer(stage.layer)
    names = ["input"] + [l.name for l in qnet.layers]
    x = taps[names[names.index(layer.name) - 1]]
    if stage.role == "engine":
        if layer.kind == "pool" and layer.pool == "max":
            return reference.layer_forward(layer, x)
        return reference.layer_accumulate(layer, x)
    if stage.role == "requant":
        a = arith.requantize(reference.layer_accumulate(layer, x), layer.requant.multiplier,
                             layer.requant.shift, layer.act_fmt)
        return arith.relu(a) if layer.activation.kind == "relu" else a
    if stage.role == "tanh":
        return taps[layer.name]
    raise ValueError(f"no golden value for stage role {stage.role!r}")


def _stream_order(values: np.ndarray) -> np.ndarray:
    """One frame in stream order (:func:`golden.reference.raster_order` for maps; vectors as they are)."""
    return reference.raster_order(values) if values.ndim == 3 else values.reshape(-1)


def _frame_values(stage, hex_beats, frame: int, values: int) -> tuple[np.ndarray, int]:
    """The lane values of frame ``frame`` from a tap's beats (hex payloads), and the number of
    beats of that frame seen."""
    from amaranth.lib import data as adata

    layout = stage.component.o.payload.shape()
    lanes = layout.members["data"].length
    per_frame = values // lanes
    mine = [adata.Const(layout, int(h, 16)) for h in hex_beats[frame * per_frame:(frame + 1) * per_frame]]
    return np.array([int(b.data[i]) for b in mine for i in range(lanes)], dtype=np.int64), len(mine)


def first_difference(stage, want: np.ndarray, got: np.ndarray, beats_seen: int) -> dict | None:
    """Where a stage's output frame (values in stream order) first differs from the golden frame
    ``want`` ((C, H, W) map or (O,) vector): layer, stage, channel, position ``[y, x]`` (None for
    vectors), both values, beat and lane; None when they agree."""
    want_flat = _stream_order(want)
    lanes = stage.component.o.payload.shape().members["data"].length
    n = min(len(got), len(want_flat))
    diff = np.nonzero(got[:n] != want_flat[:n])[0]
    if not diff.size and len(got) == len(want_flat):
        return None
    e = int(diff[0]) if diff.size else n
    if want.ndim == 3:
        c_, _, w_ = want.shape
        channel, position = e % c_, [e // (c_ * w_), (e // c_) % w_]
    else:
        channel, position = e, None
    return {"layer": stage.layer, "stage": stage.name, "channel": int(channel), "position": position,
            "expected": int(want_flat[e]) if e < len(want_flat) else None,
            "got": int(got[e]) if e < len(got) else None,
            "beat": e // lanes, "lane": e % lanes,
            "beats_seen": beats_seen, "beats_expected": len(want_flat) // lanes}


def diagnose(gen, images, index: int, *, previous: bool = True) -> dict:
    """Locate a mismatch of image ``index`` stage by stage.

    Re-runs image ``index`` (after image ``index - 1``, back to back, when ``previous``) on
    :func:`tapped_design` (:data:`DEBUG_BUILD`), records every tapped stage's output stream and
    compares it with the golden values of that stage.

    Parameters
    ----------
    gen : hw.generate.Generated
        The design under test; ``gen.qnet`` gives the golden values.
    images : sim.images.ImageSet
    index : int

    Returns
    -------
    dict
        ``first_difference`` (:func:`first_difference`) or None, ``reproduced`` (the final
        output differs again), ``stages_checked``, ``images_run``, ``note``.
    """
    indices = [index - 1, index] if previous and index > 0 else [index]
    subset = images.images[indices]
    ref = reference.run(gen.qnet, subset, taps=True)
    expected = np.concatenate([ref.logits, ref.classes[:, None]], axis=1).astype(np.int64)
    tapped = tapped_design(gen)
    run = Run(cocotb_bench(tapped, DEBUG_BUILD), work_dir(tapped, subset, "diagnose"), "diagnose", subset, expected,
              {"timeout_cycles": timeout_cycles(tapped.manifest, 0.0), "taps": tap_ports(tapped.accel.tap_stages)},
              "capture_taps")
    run()
    r = run.results()
    frame = len(indices) - 1
    reproduced = bool(np.any(r["outputs"][frame] != expected[frame])) if len(r["outputs"]) > frame else True
    first, checked = None, []
    for k, stage in enumerate(tapped.accel.tap_stages):
        want = _stage_expected(gen.qnet, stage, ref.taps)[frame]
        got, seen = _frame_values(stage, r[f"tap_{k}"], frame, want.size)
        checked.append(stage.name)
        first = first_difference(stage, want, got, seen)
        if first is not None:
            break
    return {"image": index, "images_run": [int(i) for i in indices], "reproduced": reproduced,
            "first_difference": first, "stages_checked": checked,
            "note": None if first else ("every stage output matches the golden values; the difference is in "
                                        "the output stage" if reproduced else
                                        "not reproduced when re-run after the previous image alone")}
