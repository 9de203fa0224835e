"""The Diehl & Cook STDP rule on one synapse in Brian 1.4 (the simulator of the authors' code).

Runs under Python 2.7 with brian==1.4.4 and prints, as JSON, the weight change of a synapse
(weight 0.5, delay d) for each case given as JSON on the command line: ``[[delay_ms, [pre
emission times ms], [post spike times ms]], ...]``. The rule's strings, constants and the
``brian_no_units`` import are those of the authors' script; ``--weave`` selects Brian 1's C STDP
(what the authors' preferences select, ``usecstdp=True`` with weave), otherwise its Python STDP.
``benchmarks/brian1_stdp.py`` runs it beside this project's synapse.

    PYTHONPATH=<brian 1 site> python2.7 benchmarks/brian1/stdp_pairs.py [--weave] '<cases>'
"""
import json
import sys

import brian_no_units  # noqa: F401  (as in the authors' script: it changes how units are read)
import numpy as np
from brian import (
    STDP,
    Clock,
    Connection,
    Network,
    NeuronGroup,
    log_level_error,
    ms,
    reinit_default_clock,
    set_global_preferences,
)

weave = "--weave" in sys.argv
set_global_preferences(defaultclock=Clock(dt=0.5 * ms), useweave=weave, usecodegen=True, usecodegenweave=weave,
                       usecodegenstateupdate=True, usecodegenthreshold=False, usenewpropagate=True, usecstdp=weave)
log_level_error()

tc_pre_ee, tc_post_1_ee, tc_post_2_ee = 20 * ms, 20 * ms, 40 * ms
nu_ee_pre, nu_ee_post = 0.0001, 0.01
STDP_EQUATIONS = """
    post2before                        : 1.0
    dpre/dt   = -pre/(tc_pre_ee)       : 1.0
    dpost1/dt = -post1/(tc_post_1_ee)  : 1.0
    dpost2/dt = -post2/(tc_post_2_ee)  : 1.0
"""
ON_PRE = "pre = 1.; w -= nu_ee_pre * post1"
ON_POST = "post2before = post2; w += nu_ee_post * pre * post2before; post1 = 1.; post2 = 1."


def fires_at(times_ms):
    """A threshold string true on the time step of each given time (units are off: seconds)."""
    return " + ".join("((t > {!r}) * (t < {!r}))".format(x * 1e-3 - 2e-4, x * 1e-3 + 2e-4) for x in times_ms)


def weight_change(delay_ms, pre_ms, post_ms):
    reinit_default_clock()
    source = NeuronGroup(1, "v : 1", threshold=fires_at(pre_ms), reset=0)
    target = NeuronGroup(1, "ge : 1", threshold=fires_at(post_ms), reset=0)
    synapse = Connection(source, target, "ge", structure="dense", delay=True, max_delay=10 * ms)
    synapse.connect(source, target, np.array([[0.5]]), delay=delay_ms * ms)
    rule = STDP(synapse, eqs=STDP_EQUATIONS, pre=ON_PRE, post=ON_POST, wmin=0.0, wmax=1.0)
    Network(source, target, synapse, rule).run((max(pre_ms + post_ms) + 15) * ms)
    return float(synapse.W[0, 0] - 0.5)


cases = json.loads([arg for arg in sys.argv[1:] if arg != "--weave"][0])
print(json.dumps([weight_change(*case) for case in cases]))
