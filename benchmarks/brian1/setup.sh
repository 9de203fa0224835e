#!/usr/bin/env bash
# Install Brian 1.4.4 (the simulator of Diehl & Cook's 2015 script) for Python 2.7 into a folder.
#
#     PYTHON2=/path/to/python2.7 benchmarks/brian1/setup.sh [DIR]     (DIR: default .brian1-env)
#
# DIR is a pip --target folder, used as PYTHONPATH=DIR python2.7 ... (see README.md here).
# scipy 0.18 is the last scipy with weave, which Brian 1 compiles its C code with.
set -euo pipefail

PYTHON2="${PYTHON2:-python2.7}"
DIR="${1:-.brian1-env}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

fail() { echo "setup.sh: $*" >&2; exit 1; }

command -v "$PYTHON2" >/dev/null || fail "no interpreter '$PYTHON2'; set PYTHON2=/path/to/python2.7 (README.md says how to get one)"
"$PYTHON2" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' \
    || fail "$PYTHON2 is not Python 2.7; set PYTHON2=/path/to/python2.7"
"$PYTHON2" -m pip --version >/dev/null 2>&1 || fail "$PYTHON2 has no pip; run '$PYTHON2 -m ensurepip --user' first"
command -v g++ >/dev/null || fail "no C++ compiler; weave needs g++ (e.g. apt-get install g++)"

PIP=("$PYTHON2" -m pip install --disable-pip-version-check --upgrade --target "$DIR")
"${PIP[@]}" numpy==1.16.6 scipy==0.18.1 sympy==1.5.1
# brian's setup.py imports numpy, so it is built against the folder's numpy, without its listed extras
PYTHONPATH="$DIR" "${PIP[@]}" --no-build-isolation --no-deps brian==1.4.4

echo "checking: Brian 1 imports and weave compiles its C STDP (the first compilation takes a minute)"
PYTHONPATH="$DIR" "$PYTHON2" -W ignore::UserWarning -c 'import brian, scipy.weave; print("brian %s, scipy %s" % (brian.__version__, scipy.__version__))'
if ! check=$(PYTHONPATH="$DIR" "$PYTHON2" "$HERE/stdp_pairs.py" --weave '[[0, [50], [10, 70]]]' 2>&1); then
    echo "$check" >&2
    fail "Brian 1's C STDP did not compile or run (its output is above)"
fi
echo "Brian 1.4.4 is ready: PYTHONPATH=$DIR $PYTHON2 ..."
