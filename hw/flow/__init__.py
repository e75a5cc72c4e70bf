"""The synthesis flow: Yosys + nextpnr builds, their reports, the folding sweep and the README's
results table.

Modules, each doing one thing:

* :mod:`hw.flow.synth`: :func:`~hw.flow.synth.synthesize`, the orchestration of one build (and
  the names callers import from it, re-exported from the modules below);
* :mod:`hw.flow.tools`: finding and running the YoWASP or system tools, their versions, the
  status line; the errors :class:`~hw.flow.tools.SynthError` and
  :class:`~hw.flow.tools.ToolNotFoundError`;
* :mod:`hw.flow.yosys`: the Yosys scripts, the keep selection of the target's closure policy,
  the DSP budget (:func:`~hw.flow.yosys.dsp_cost`, :func:`~hw.flow.yosys.plan_dsp_limit`);
* :mod:`hw.flow.parse`: pure parsers of the tools' logs and reports;
* :mod:`hw.flow.report`: what a build used and whether it fits (exhausted resources, estimates
  from Yosys's cells, inference figures, manifest figures, :func:`~hw.flow.report.summary_line`);
* :mod:`hw.flow.cluster`: tasks (an importable function and a payload of data) on a Dask
  ``distributed`` cluster, embedded or remote, with a client-side content-hash cache;
* :mod:`hw.flow.synth_task`: one synthesis as such a task (Verilog in; report and logs out);
* :mod:`hw.flow.sweep`: one build per point (model x target x fold), a table and a Pareto plot;
* :mod:`hw.flow.presets`: the named sweeps of ``lenet5 sweep --preset``;
* :mod:`hw.flow.accuracy`: the golden integer model's MNIST accuracy of a description (cached);
* :mod:`hw.flow.results`: the README's table of measured results;
* :mod:`hw.flow.naming`: :func:`~hw.flow.naming.fold_slug`, the one definition of a fold's
  file-name form;
* :mod:`hw.flow.verilator`: where Verilator lives (for linting and simulation).

Target facts (part, capacities, DSP and RAM cells, closure policy) come from :mod:`hw.targets`;
clock pins of the board-less builds from :mod:`hw.boards`.
"""

from hw.flow.naming import fold_slug

__all__ = ["fold_slug"]
