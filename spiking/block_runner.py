"""Run blocks of Diehl & Cook presentations on a Brian2 device.

``runtime``: Brian2's runtime mode (Cython or numpy code generation), the network is built once
and restored to t = 0 before each block. Fine for tiny networks and tests.

``cpp_standalone`` (and brian2cuda's ``cuda_standalone``): the block is generated and compiled
once into a build folder (cached on disk, so later processes skip the compilation) and the
binary is re-run per block with the new state passed through ``run_args``. The random seed of
each block comes from an environment variable read by the generated ``main`` (C++'s generators,
or brian2cuda's cuRAND buffer), so runs are reproducible on either device.

``cuda_standalone`` needs ``pip install brian2cuda`` (1.0b1 pins Brian2 2.10.1, which needs
Python 3.12 or newer), an NVIDIA GPU, and the CUDA toolkit with cuRAND's headers and library.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import shutil
import time
import weakref
from dataclasses import asdict
from pathlib import Path
from typing import IO

import numpy as np

from spiking.diehl_cook import (
    DiehlCookNetwork,
    DiehlCookParameters,
    NetworkState,
    Presentations,
    build_network,
    read_presentations,
    read_state,
    state_values,
    synapse_order,
)

DEVICES = ("cpp_standalone", "runtime", "cuda_standalone")
SEED_VARIABLE = "SPIKEBRIDGE_BRIAN_SEED"


class DeviceError(RuntimeError):
    """The chosen Brian2 device cannot be used here; the message names the fix."""


def _seed_from_environment(device: str, threads: int) -> str:
    """C++ for the generated main: seed the random generators from $SPIKEBRIDGE_BRIAN_SEED
    (every OpenMP thread's generator with ``cpp_standalone``, the cuRAND buffer with brian2cuda)."""
    if device == "cuda_standalone":
        set_seed = "    brian::random_number_buffer.set_seed(seed);\n"
    else:
        set_seed = (
            f"    for (int thread = 0; thread < {max(threads, 1)}; thread++)\n"
            "        brian::_random_generators[thread].seed(seed + thread);\n"
        )
    return (
        "{\n"
        f'    const char* seed_text = std::getenv("{SEED_VARIABLE}");\n'
        "    const unsigned long long seed = seed_text ? std::strtoull(seed_text, nullptr, 10) : 0ULL;\n"
        + set_seed
        + "}\n"
    )


def _flush_subnormals_to_zero(threads: int) -> str:
    """C++ for the generated main: treat subnormal floats as zero on x86 (flush-to-zero and
    denormals-are-zero in every OpenMP thread's MXCSR). The STDP traces and conductances decay
    geometrically towards zero and spend most of a block below 1e-308, where each operation on
    them costs about a hundred times more; as zeros they change no spike."""
    set_flags = "__builtin_ia32_ldmxcsr(__builtin_ia32_stmxcsr() | 0x8040);\n"
    if threads > 1:
        set_flags = f"#pragma omp parallel\n{{\n{set_flags}}}\n"
    return f"#if defined(__SSE__)\n{set_flags}#endif\n"


# Brian2's spike queue files each synaptic event of a spike under queue[(offset + delay) % size],
# one push_back per synapse. The patches below (old text, new text) group each source's synapses,
# when prepared, into runs with equal delay (consecutive in its list; the whole run of arrivals in
# one time step when the synapses are stored in spiking.diehl_cook.synapse_order) and file a run
# with one insert. Each slot receives the same synapses in the same order, so nothing changes but
# the time. The slot is found by one comparison: offset and delay are both below the size.
_SPIKE_QUEUE_PATCHES = (
    ("    vector< vector<int> > synapses;\n",
     "    vector< vector<int> > synapses;\n"
     "    vector< vector< pair<int, int> > > delay_runs;  // per source: (end in synapses[source], delay)\n"),
    ("        dt = _dt;\n",
     "        delay_runs.assign(synapses.size(), vector< pair<int, int> >());\n"
     "        for (size_t source = 0; n_delays > 1 && source < synapses.size(); source++)\n"
     "        {\n"
     "            const vector<int> &indices = synapses[source];\n"
     "            for (size_t k = 0; k < indices.size(); k++)\n"
     "            {\n"
     "                const int delay = delays[indices[k] - openmp_padding];\n"
     "                if (k + 1 == indices.size() || delays[indices[k + 1] - openmp_padding] != delay)\n"
     "                    delay_runs[source].push_back(make_pair((int)k + 1, delay));\n"
     "            }\n"
     "        }\n"
     "        dt = _dt;\n"),
    ("            int * __restrict rdelays = delays-openmp_padding;\n", ""),
    ("                for(int idx_indices=0; idx_indices<num_indices; idx_indices++)\n"
     "                {\n"
     "                    const int synaptic_index = cur_indices[idx_indices];\n"
     "                    int delay = rdelays[synaptic_index];\n"
     "                    queue[(offset+delay)%queue.size()].push_back(synaptic_index);\n"
     "                }\n",
     "                int run_start = 0;\n"
     "                for (const pair<int, int> &run : delay_runs[idx_neuron])\n"
     "                {\n"
     "                    int slot = offset + run.second;\n"
     "                    if (slot >= (int)queue.size())\n"
     "                        slot -= (int)queue.size();\n"
     "                    queue[slot].insert(queue[slot].end(), cur_indices + run_start, cur_indices + run.first);\n"
     "                    run_start = run.first;\n"
     "                }\n"),
)


def _patch_spike_queue(build_dir: Path) -> bool:
    """Apply :data:`_SPIKE_QUEUE_PATCHES` to the copy of Brian2's spike queue in ``build_dir``,
    keeping its time stamp so that a cached build is not recompiled; ``False`` if this Brian2's
    queue differs from the text they replace (the build then runs unpatched)."""
    header = build_dir / "brianlib" / "spikequeue.h"
    text = header.read_text()
    if any(text.count(old) != 1 for old, _ in _SPIKE_QUEUE_PATCHES):
        return False
    stamp = header.stat()
    for old, new in _SPIKE_QUEUE_PATCHES:
        text = text.replace(old, new)
    header.write_text(text)
    os.utime(header, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    return True


def _use_cpp17_for_cuda() -> None:
    """brian2cuda's makefile asks for C++11, which the Thrust and CUB of CUDA 13 refuse; C++17
    compiles with every CUDA toolkit from 11 on (nvcc and the host compiler take the last -std)."""
    from brian2 import prefs

    nvcc_args = prefs.devices.cuda_standalone.cuda_backend.extra_compile_args_nvcc
    if "-std=c++17" not in nvcc_args:
        prefs.devices.cuda_standalone.cuda_backend.extra_compile_args_nvcc = [*nvcc_args, "-std=c++17"]
    prefs.codegen.cpp.extra_compile_args_gcc = [
        "-std=c++17" if arg == "-std=c++11" else arg for arg in prefs.codegen.cpp.extra_compile_args_gcc
    ]


class RuntimeBlockRunner:
    """Blocks in Brian2's runtime mode."""

    def __init__(self, params: DiehlCookParameters, n_excitatory: int, slots: int, codegen_target: str | None = None):
        import brian2

        brian2.get_device().reinit()
        brian2.set_device("runtime")
        has_compiler = shutil.which("gcc") or shutil.which("cc")
        brian2.prefs.codegen.target = codegen_target or ("cython" if has_compiler else "numpy")
        self.net: DiehlCookNetwork = build_network(params, n_excitatory, slots)
        self.net.network.store("block_start")
        self.compile_seconds = 0.0

    def start_block(self, state: NetworkState, pixels: np.ndarray, intensity: float, plastic: bool, seed: int) -> None:
        """Reset the network to t = 0 and load the state a block starts from."""
        import brian2

        net = self.net
        net.network.restore("block_start")
        net.pixels.values[:] = pixels
        for group, name, value in state_values(net, state, plastic, intensity):
            getattr(group, name)[:] = value
        net.input_to_excitatory.delay[:] = state.delays_ms.ravel() * brian2.ms
        brian2.seed(seed)

    def run_block(
        self, state: NetworkState, pixels: np.ndarray, intensity: float, plastic: bool, seed: int
    ) -> tuple[NetworkState, Presentations]:
        import brian2

        self.start_block(state, pixels, intensity, plastic, seed)
        self.net.network.run(self.net.slots * self.net.params.slot_ms * brian2.ms, namespace={})
        return read_state(self.net, state), read_presentations(self.net)


class StandaloneBlockRunner:
    """Blocks compiled once with ``cpp_standalone`` or ``cuda_standalone`` and re-run via run_args.

    ``profile``: time every code object; :meth:`profile_seconds` reads the last block's times.
    ``flush_subnormals``: see :func:`_flush_subnormals_to_zero` (``False`` only to measure it).
    ``delays_ms``: the synaptic delays of the states it will run, to store the synapses in
    :func:`spiking.diehl_cook.synapse_order` (faster; any state runs correctly either way).
    ``patch_spike_queue``: see :data:`_SPIKE_QUEUE_PATCHES` (``False`` only to measure it);
    :attr:`spike_queue_patched` says whether it applied.
    """

    def __init__(
        self, params: DiehlCookParameters, n_excitatory: int, slots: int, build_root: Path,
        threads: int = 1, device: str = "cpp_standalone", profile: bool = False, flush_subnormals: bool = True,
        delays_ms: np.ndarray | None = None, patch_spike_queue: bool = True,
    ):
        import brian2
        from brian2.codegen.cpp_prefs import get_compiler_and_args
        from brian2.utils.logger import BrianLogger

        require_device(device)
        if device == "cuda_standalone":
            _use_cpp17_for_cuda()
        brian2.get_device().reinit()  # a process may build several networks, one at a time
        layout = None if delays_ms is None else hashlib.sha256(synapse_order(delays_ms, params.dt_ms)).hexdigest()
        patch_spike_queue = patch_spike_queue and device == "cpp_standalone"
        key = json.dumps([asdict(params), n_excitatory, slots, threads, device, profile, flush_subnormals, layout,
                          {"spike_queue": _SPIKE_QUEUE_PATCHES} if patch_spike_queue else None, brian2.__version__],
                         sort_keys=True)
        self.build_dir, self._lock = claim_build_dir(
            Path(build_root) / f"diehl-cook-{device}-{hashlib.sha256(key.encode()).hexdigest()[:16]}")
        brian2.set_device(device, directory=str(self.build_dir), build_on_run=False)
        self.device = brian2.get_device()
        if device == "cpp_standalone":
            brian2.prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
        # every block passes a new seed in the same variable; Brian2 reports each change
        BrianLogger.suppress_name("overwritten_env_var")
        self.net: DiehlCookNetwork = build_network(params, n_excitatory, slots, delays_ms)
        self.device.insert_code("main", _seed_from_environment(device, threads))
        if device == "cpp_standalone" and flush_subnormals:
            self.device.insert_code("main", _flush_subnormals_to_zero(threads))
        self.device.apply_run_args()
        # Pathway delays cannot be set through run_args (Brian2 2.9 names them after the pathway),
        # so they are read from a TimedArray (index i*N + j) that run_args can set, after it is set.
        synapses = self.net.input_to_excitatory
        self.delay_table = brian2.TimedArray(np.zeros(synapses.source.N * n_excitatory) * brian2.ms,
                                             dt=brian2.ms, name="input_delays")
        synapses.namespace.update(input_delays=self.delay_table, n_excitatory=n_excitatory)
        synapses.delay = "input_delays((i * n_excitatory + j) * ms)"
        self.net.network.run(slots * params.slot_ms * brian2.ms, namespace={}, profile=profile)
        started = time.perf_counter()
        try:
            self.device.build(directory=str(self.build_dir), compile=not patch_spike_queue, run=False,
                              with_output=False)
            self.spike_queue_patched = patch_spike_queue and _patch_spike_queue(self.build_dir)
            if patch_spike_queue:
                compiler, _ = get_compiler_and_args()
                self.device.compile_source(str(self.build_dir), compiler, debug=False, clean=False)
        except Exception as exc:  # Brian2 raises RuntimeError or a subprocess error for a failed build
            raise DeviceError(
                f"building the {device} network in {self.build_dir} failed ({str(exc).splitlines()[0]}); "
                "check the C++ compiler or use --device runtime"
            ) from None
        self.compile_seconds = time.perf_counter() - started
        self.results_name = f"results-{os.getpid()}"  # per process: concurrent runs of one build do not mix
        weakref.finalize(self, shutil.rmtree, self.build_dir / self.results_name, ignore_errors=True)

    def run_block(
        self, state: NetworkState, pixels: np.ndarray, intensity: float, plastic: bool, seed: int
    ) -> tuple[NetworkState, Presentations]:
        import brian2

        net = self.net
        run_args = {getattr(group, name): value for group, name, value in state_values(net, state, plastic, intensity)}
        run_args[net.pixels] = pixels
        run_args[self.delay_table] = state.delays_ms.ravel() * brian2.ms
        self.device.run_environment_variables[SEED_VARIABLE] = str(seed)
        self.device.run(results_directory=self.results_name, run_args=run_args, with_output=False)
        self.device.delete(code=False, data=False, run_args=True, directory=False, force=True)
        for lock in (self.build_dir / "static_arrays").glob("*.lock"):
            lock.unlink(missing_ok=True)
        return read_state(net, state), read_presentations(net)

    def profile_seconds(self) -> dict[str, float]:
        """CPU seconds per code object in the last block, largest first (needs ``profile=True``)."""
        path = self.build_dir / self.results_name / "profiling_info.txt"
        if not path.is_file():
            raise DeviceError(f"no profile in {path}: build the runner with profile=True and run a block")
        times = (line.split() for line in path.read_text().splitlines() if line.strip())
        return dict(sorted(((name, float(seconds)) for name, seconds in times), key=lambda item: -item[1]))


def claim_build_dir(build_dir: Path) -> tuple[Path, IO]:
    """``build_dir``, or ``build_dir-1``, ``-2``, ... if another process holds it, with its lock
    (held until it is closed or the process ends). Blocks pass their inputs through files in the
    build folder (run_args), so two processes running one build at a time would read each other's
    weights; each takes a folder of its own, compiled once and reused by later runs."""
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    for copy in itertools.count():
        claimed = build_dir if copy == 0 else build_dir.with_name(f"{build_dir.name}-{copy}")
        lock = open(claimed.with_name(f"{claimed.name}.lock"), "w")  # noqa: SIM115 (held with the runner)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return claimed, lock


def require_device(device: str) -> None:
    """Raise :class:`DeviceError`, naming the fix, if ``device`` cannot run here: an unknown name,
    a standalone device without a C++ compiler, ``cuda_standalone`` without brian2cuda."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose one of {DEVICES}")
    if device == "cuda_standalone":
        try:
            import brian2cuda  # noqa: F401  (registers the device)
        except ImportError:
            raise DeviceError(
                "device cuda_standalone needs brian2cuda and a CUDA GPU: `pip install brian2cuda` "
                "(Python 3.12 or newer), or use --device cpp_standalone"
            ) from None
    if device != "runtime" and shutil.which("g++") is None and shutil.which("c++") is None:
        raise DeviceError(
            f"device {device} needs a C++ compiler (g++): install it (e.g. `apt-get install g++`) "
            "or use --device runtime (much slower)"
        )


def make_runner(
    device: str, params: DiehlCookParameters, n_excitatory: int, slots: int, build_root: Path, threads: int = 1,
    delays_ms: np.ndarray | None = None,
):
    """A block runner for ``device`` (one of :data:`DEVICES`); ``delays_ms``: see
    :class:`StandaloneBlockRunner`."""
    require_device(device)
    if device == "runtime":
        return RuntimeBlockRunner(params, n_excitatory, slots)
    return StandaloneBlockRunner(params, n_excitatory, slots, build_root, threads, device, delays_ms=delays_ms)
