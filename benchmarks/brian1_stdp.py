"""The Diehl & Cook STDP rule in Brian 1.4 (the authors' simulator) against this project's synapse.

For pairs and trains of pre- and postsynaptic spikes, with synaptic delays of 0, 4 and 9.5 ms,
prints the weight change of one synapse in Brian 1.4.4 (its C STDP, which the authors'
preferences select, and its Python STDP) beside this project's synapse with the paper's
constants and with the ``authors-brian1`` preset, and writes ``benchmarks/results/brian1_stdp.json``.

Brian 1 needs Python 2.7: ``python2.7 -m pip install --target DIR numpy==1.16.6 scipy==0.18.1
sympy==1.5.1`` (scipy 0.18 still has weave), then ``PYTHONPATH=DIR python2.7 -m pip install
--no-build-isolation --no-deps --target DIR brian==1.4.4``.

    python benchmarks/brian1_stdp.py --python2 python2.7 --brian1-site DIR
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from spikebridge.records import make_record, provenance, write_record
from spiking.diehl_cook import PRESETS, DiehlCookParameters, with_overrides
from spiking.stdp_window import weight_change

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "brian1_stdp.json"
PRIME_MS, PRE_MS = 10.0, 50.0  # a first post spike primes post2; the presynaptic spike is emitted at 50 ms


def cases() -> list[list]:
    """``[delay, pre emission times, post times]``: single pairs around the arrival, and a train."""
    rows = []
    for delay in (0.0, 4.0, 9.5):
        arrival = PRE_MS + delay
        rows += [[delay, [PRE_MS], [PRIME_MS, arrival + lag]] for lag in (-20.0, -5.0, -1.0, 1.0, 5.0, 20.0)]
        rows.append([delay, [50.0, 60.0, 75.0], [20.0, 58.0, 66.0, 80.0]])
    return rows


def brian1(python2: str, site: str, weave: bool, rows: list[list]) -> list[float]:
    command = [python2, str(HERE / "brian1" / "stdp_pairs.py"), *(["--weave"] if weave else []), json.dumps(rows)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": site}, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python2", default="python2.7")
    parser.add_argument("--brian1-site", required=True, help="folder holding brian 1.4.4 and its dependencies")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = provenance(seeds={"spike_times": "fixed by cases(); no random draws"})

    rows = cases()
    c_stdp = brian1(args.python2, args.brian1_site, True, rows)
    python_stdp = brian1(args.python2, args.brian1_site, False, rows)
    paper = DiehlCookParameters()
    as_run = with_overrides(paper, PRESETS["authors-brian1"])
    results = []
    print("| delay (ms) | pre emitted (ms) | post (ms) | Brian 1 C STDP | Brian 1 Python STDP | ours, paper "
          "| ours, authors-brian1 |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for (delay, pre, post), c_change, python_change in zip(rows, c_stdp, python_stdp, strict=True):
        arrivals = [t + delay for t in pre]
        ours = {"paper": weight_change(arrivals, post, paper), "authors-brian1": weight_change(arrivals, post, as_run)}
        results.append({"delay_ms": delay, "pre_emitted_ms": pre, "post_ms": post, "brian1_c_stdp": c_change,
                        "brian1_python_stdp": python_change, "ours": ours})
        print(f"| {delay} | {pre} | {post} | {c_change:+.3e} | {python_change:+.3e} | {ours['paper']:+.3e} "
              f"| {ours['authors-brian1']:+.3e} |")
    print(f"wrote {write_record(args.output, make_record({'rows': results}, started))}")


if __name__ == "__main__":
    main()
