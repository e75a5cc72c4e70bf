"""The content-addressed build cache: where a build of some Verilog lives and what its hash covers.

Every distinct design is built once into ``build/sim/<build_key>-<hash>`` under the repository
root; the hash covers the Verilog text, top level, simulator (and its version), cocotb version,
timescale, waves and the build options (:class:`BuildOptions`), so a design is rebuilt exactly
when one of them changes. Folders are locked with :func:`flock` while they are built or run in;
a finished build is marked by :data:`MARKER`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cocotb

from sim.toolchain import check_simulator, default_simulator, tool_version, waves_format, waves_requested

__all__ = ["REPO_ROOT", "SIM_BUILD_ROOT", "VERILATOR_BUILD_ARGS", "VERILATOR_MAKE_VARS", "MARKER", "PGO_GENERATE",
           "PGO_USE",
           "BuildOptions", "build_recipe", "build_dir_for", "flock", "sha", "safe_name"]


#: Repository root (``sim`` is used from a checkout / editable install).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: All simulation builds live below this folder (``make clean`` removes it).
SIM_BUILD_ROOT = REPO_ROOT / "build" / "sim"

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

MARKER = ".lenet5-built.json"

#: Profile-guided optimisation of a Verilator model (``pgo=True``, gcc only): the model's C++
#: is compiled with :data:`PGO_GENERATE` added to ``OPT_FAST``, a training run of the testbench
#: records where the model branches, and the model's C++ is compiled again with
#: :data:`PGO_USE`. Part of the build hash.
PGO_GENERATE: tuple[str, ...] = ("-fprofile-generate", "-fprofile-update=single")
PGO_USE: tuple[str, ...] = ("-fprofile-use", "-fprofile-partial-training", "-Wno-missing-profile")


@contextlib.contextmanager
def flock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on *path* (created if missing) for the duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sha(obj) -> str:
    """SHA-256 (hex) of the JSON form of ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def safe_name(label: str) -> str:
    """``label`` as a folder name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "design"


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """Per-build Verilator options (see the module docstring); the defaults change nothing.

    ``pgo``: profile-guided optimisation of the model's C++ (:data:`PGO_GENERATE`,
    :data:`PGO_USE`; a training run of the testbench between the two compilations, see
    :func:`sim.runner.run_cocotb`). ``main``: a C++ file that replaces cocotb's simulator main
    (e.g. ``sim/clocked_main.cpp``); its text is part of the build hash."""
    build_args: tuple[str, ...] = ()
    make_vars: tuple[str, ...] = ()
    public: bool | tuple[str, ...] = True
    pgo: bool = False
    main: str | None = None

    @classmethod
    def of(cls, build_args: Sequence[str] = (), make_vars: Sequence[str] = (),
           public: bool | Sequence[str] = True, pgo: bool = False, main: str | None = None) -> "BuildOptions":
        for name, value in (("build_args", build_args), ("make_vars", make_vars)):
            if isinstance(value, str):
                raise TypeError(f"{name} is a list of strings, not the string {value!r}")
        for var in make_vars:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", var):
                raise ValueError(f"make_vars entry {var!r} is not NAME=value")
        if isinstance(public, str):
            raise TypeError(f"public is True, False or a list of signal names, not the string {public!r}")
        if not isinstance(public, bool):
            public = tuple(public)
            if not public:
                raise ValueError("public: an empty list of signal names; use public=False for the top's signals")
        if main is not None and not Path(main).is_file():
            raise FileNotFoundError(f"simulator main {main} does not exist")
        return cls(tuple(build_args), tuple(make_vars), public, bool(pgo),
                   None if main is None else str(Path(main).resolve()))

    @property
    def make(self) -> tuple[str, ...]:
        """Effective make variables: the defaults, then the overrides (make keeps the last)."""
        return VERILATOR_MAKE_VARS + self.make_vars

    @property
    def opt_fast(self) -> str:
        """The effective ``OPT_FAST`` (compiler options of the model's hot code)."""
        values = [v.split("=", 1)[1] for v in self.make if v.startswith("OPT_FAST=")]
        return values[-1] if values else ""

    def recipe(self) -> dict:
        """Entries of the build recipe; empty for the defaults, so existing hashes stay put."""
        extra = {}
        if self.build_args:
            extra["extra_build_args"] = list(self.build_args)
        if self.make_vars:
            extra["extra_make_vars"] = list(self.make_vars)
        if self.public is False:
            extra["public"] = False
        elif self.public is not True:
            extra["public"] = list(self.public)
        if self.pgo:
            extra["pgo"] = {"generate": list(PGO_GENERATE), "use": list(PGO_USE)}
        if self.main is not None:
            extra["main"] = [Path(self.main).name, hashlib.sha256(Path(self.main).read_bytes()).hexdigest()]
        return extra


def build_recipe(simulator: str, waves: bool, timescale,
                  options: BuildOptions = BuildOptions()) -> dict:
    """Everything besides the sources that determines a build (part of its hash)."""
    recipe = {
        "recipe": _RECIPE,
        "simulator": simulator,
        "tool": tool_version(simulator),
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
                  public: bool = True, pgo: bool = False, main: str | None = None) -> Path:
    """The cache folder of a build of *sources* (``(file name, Verilog text)`` pairs).

    ``build/sim/<build_key or toplevel>-<16 hex digits>``; the digits hash the sources, the top
    level and everything in the build recipe (simulator and its version, cocotb version,
    options, timescale, waves, and *build_args*, *make_vars*, *public*, *pgo*, *main* as for
    :func:`run_cocotb`).
    """
    simulator = (simulator or default_simulator()).lower()
    check_simulator(simulator)
    options = BuildOptions.of(build_args, make_vars, public, pgo, main)
    digest = sha({
        "sources": [[Path(name).name, hashlib.sha256(text.encode()).hexdigest()]
                    for name, text in sources],
        "toplevel": toplevel,
        **build_recipe(simulator, waves_requested(waves), timescale, options),
    })
    return SIM_BUILD_ROOT / f"{safe_name(build_key or toplevel)}-{digest[:16]}"
