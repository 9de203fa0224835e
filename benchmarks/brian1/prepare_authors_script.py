"""Apply this project's recorded changes to the authors' Diehl & Cook (2015) training script.

Reads the published ``Diehl&Cook_spiking_MNIST.py`` (github.com/peter-u-diehl/stdp-mnist, commit
d527ca3ee579d4f156d25ff160c0551a5ab82cf1) and writes a copy that trains headless in Brian 1.4.4
under Python 2.7, with options for the neuron count, the training length, the initial weights,
checkpoints, resuming and a per-presentation log (``python2.7 OUTPUT --help``). Each change is a
few substitutions at short anchors (a statement's start); the original's code itself is not part of
this repository. An anchor that is missing or found twice stops with status 2 and one line.

    python benchmarks/brian1/prepare_authors_script.py --original 'Diehl&Cook_spiking_MNIST.py' \\
        --output diehl_cook_brian1.py
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# sha256 of the published file with LF line endings (it is stored with CRLF)
PUBLISHED_SHA256 = "2924644ac3805f933c1ac876bb8bfbecd48ec3b793e9f1e742e1af8eadad557c"
MARK = "# spikebridge:"

# Python 2.7 code inserted after the script's imports: options, data, initial state, log, checkpoints.
HOOKS = r'''
# spikebridge: options and hooks added by benchmarks/brian1/prepare_authors_script.py
import argparse as _sb_argparse
import json as _sb_json
import os as _sb_os
import struct as _sb_struct
import sys as _sb_sys
import zlib as _sb_zlib

import numpy as _sb_np

_SB_INPUTS = 784


def _sb_options():
    parser = _sb_argparse.ArgumentParser(
        description="Diehl & Cook (2015) training in Brian 1, changed by spikebridge (headless, with a log)")
    parser.add_argument('--neurons', type=int, required=True, help='excitatory neurons (n_e)')
    parser.add_argument('--images', type=int, default=60000,
                        help='training examples in all, 60000 per pass (default 60000)')
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument('--initial-weights', metavar='NPY',
                       help='input-to-excitatory weights [784, n_e], or (i, j, w) rows as in random/XeAe.npy')
    start.add_argument('--weights-seed', type=int, metavar='SEED',
                       help="draw them by the rules of the authors' generator, numpy seed SEED")
    start.add_argument('--resume', type=int, metavar='IMAGES',
                       help='continue from the checkpoint after IMAGES examples in --checkpoint-dir')
    parser.add_argument('--poisson-seed', type=int,
                        help='reseed numpy before the first presentation (required with --resume)')
    parser.add_argument('--log', required=True, help='JSON lines, one per presentation (appended)')
    parser.add_argument('--checkpoint-dir', required=True, help='weights-<N>.npy and theta_mV-<N>.npy go here')
    parser.add_argument('--checkpoint-every', type=int, default=10000, metavar='K')
    options = parser.parse_args()
    if min(options.neurons, options.images, options.checkpoint_every) < 1:
        parser.error('--neurons, --images and --checkpoint-every must be >= 1')
    if options.resume is not None and options.poisson_seed is None:
        parser.error('--resume needs a new --poisson-seed')
    if options.resume is not None and not 0 < options.resume < options.images:
        parser.error('--resume must lie between 0 and --images')
    return options


_sb = _sb_options()
_sb_first_example = _sb.resume or 0
if not _sb_os.path.isdir(_sb.checkpoint_dir):
    _sb_os.makedirs(_sb.checkpoint_dir)
_sb_log = open(_sb.log, 'a', 1)


def _sb_fail(message):
    _sb_sys.exit('spikebridge: ' + message)


def _sb_checkpoint_path(kind, images):
    return _sb_os.path.join(_sb.checkpoint_dir, '%s-%d.npy' % (kind, images))


def _sb_load(path, shape):
    if not _sb_os.path.isfile(path):
        _sb_fail('%s does not exist' % path)
    try:
        array = _sb_np.load(path)
    except (IOError, ValueError) as error:
        _sb_fail('cannot read %s: %s' % (path, error))
    if array.ndim == 2 and array.shape[1] == 3 and array.shape != shape:  # (i, j, w) rows, as the authors save
        sources, targets = array[:, 0].astype(int), array[:, 1].astype(int)
        if len(shape) != 2 or sources.max() >= shape[0] or targets.max() >= shape[1]:
            _sb_fail('%s holds (i, j, w) rows beyond %s' % (path, shape))
        matrix = _sb_np.zeros(shape)
        matrix[sources, targets] = array[:, 2]
        array = matrix
    if array.shape != shape:
        _sb_fail('%s holds shape %s, expected %s' % (path, array.shape, shape))
    return _sb_np.asarray(array, dtype=float)


def _sb_read_idx(name):
    """One MNIST file of the spikebridge data cache (raw or gzipped IDX)."""
    root = _sb_os.environ.get('SPIKEBRIDGE_DATA') or _sb_os.path.expanduser('~/.cache/spikebridge')
    path = _sb_os.path.join(root, 'mnist', name)
    if not _sb_os.path.isfile(path) and _sb_os.path.isfile(path + '.gz'):
        path += '.gz'
    if not _sb_os.path.isfile(path):
        _sb_fail('%s is missing; run `spikebridge data fetch mnist` in the project' % path)
    with open(path, 'rb') as handle:
        data = handle.read()
    if data[:2] == b'\x1f\x8b':
        data = _sb_zlib.decompress(data, 16 + _sb_zlib.MAX_WBITS)
    ndim = ord(data[3:4])
    shape = _sb_struct.unpack('>%dI' % ndim, data[4:4 + 4 * ndim])
    return _sb_np.frombuffer(data, dtype=_sb_np.uint8, offset=4 + 4 * ndim).reshape(shape)


def get_labeled_data(picklename, bTrain=True):
    """The authors' data dictionary, read from the spikebridge cache (no pickles written)."""
    split = 'train' if bTrain else 't10k'
    x = _sb_read_idx(split + '-images-idx3-ubyte')
    y = _sb_read_idx(split + '-labels-idx1-ubyte').reshape(-1, 1)
    return {'x': x, 'y': y, 'rows': x.shape[1], 'cols': x.shape[2]}


def get_matrix_from_file(fileName):
    """Initial input weights from the options; the recurrent weights by the generator's rules for n_e."""
    name = _sb_os.path.basename(fileName)[:4]
    if name == 'AeAi':  # one inhibitory partner per excitatory neuron
        return 10.4 * _sb_np.eye(n_e)
    if name == 'AiAe':  # each inhibitory neuron inhibits every other excitatory neuron
        return 17.0 * (1.0 - _sb_np.eye(n_e))
    if name != 'XeAe':
        _sb_fail('no rule for the connection %s' % fileName)
    if _sb.resume is not None:
        return _sb_load(_sb_checkpoint_path('weights', _sb.resume), (_SB_INPUTS, n_e))
    if _sb.initial_weights is not None:
        return _sb_load(_sb.initial_weights, (_SB_INPUTS, n_e))
    return 0.3 * (_sb_np.random.RandomState(_sb.weights_seed).random_sample((_SB_INPUTS, n_e)) + 0.01)


def _sb_initial_theta(default):
    if _sb.resume is None:
        return default
    return _sb_load(_sb_checkpoint_path('theta_mV', _sb.resume), (n_e,)) * 1e-3  # volts, as Brian 1 holds it


def _sb_seed_poisson():
    if _sb.poisson_seed is not None:
        _sb_np.random.seed(_sb.poisson_seed)


def _sb_log_presentation(example, intensity, counts, theta):
    record = {'image': int(example), 'intensity': float(intensity), 'spikes': int(_sb_np.sum(counts)),
              'theta_mV': round(float(_sb_np.mean(theta)) * 1e3, 6)}
    _sb_log.write(_sb_json.dumps(record, sort_keys=True) + '\n')


def _sb_save(path, array):
    partial = '%s.partial-%d' % (path, _sb_os.getpid())
    with open(partial, 'wb') as handle:
        _sb_np.save(handle, _sb_np.array(array, dtype=float))
        handle.flush()
        _sb_os.fsync(handle.fileno())
    _sb_os.rename(partial, path)


def _sb_checkpoint(examples, weights, theta):
    if examples % _sb.checkpoint_every == 0 or examples == _sb.images:
        _sb_save(_sb_checkpoint_path('weights', examples), weights)
        _sb_save(_sb_checkpoint_path('theta_mV', examples), _sb_np.asarray(theta) * 1e3)
        _sb_sys.stdout.write('spikebridge: checkpoint after %d examples in %s\n' % (examples, _sb.checkpoint_dir))


def _sb_finish(examples):
    _sb_log.close()
    _sb_sys.stdout.write('spikebridge: trained to example %d, log %s\n' % (examples, _sb.log))
'''


@dataclass(frozen=True)
class Change:
    """One recorded change: substitutions, each at an anchor that must match exactly once."""

    name: str
    substitutions: list[tuple[str, Callable[[re.Match], str]]]


def replace_line(comment: str) -> Callable[[re.Match], str]:
    """The matched line becomes ``pass`` (indented like it) with a comment."""
    return lambda m: f"{m['indent']}pass  {MARK} {comment}"


def append_line(line: str) -> Callable[[re.Match], str]:
    """The matched line, then ``line`` indented like it."""
    return lambda m: f"{m[0]}\n{m['indent']}{line}"


S, EOL = r"[ \t]*", r"[ \t]*$"  # spaces or tabs; the end of a line
INDENTED = r"^(?P<indent>[ \t]+)"
CHANGES = [
    Change("MNIST read from the spikebridge cache", [
        (r"^def get_labeled_data\(", lambda m: "def _authors_get_labeled_data("),
    ]),
    Change("initial weights from --initial-weights, --weights-seed or --resume", [
        (r"^def get_matrix_from_file\(", lambda m: "def _authors_get_matrix_from_file("),
    ]),
    Change("gcc options passed as two arguments (today's g++ refuses them as one)", [
        (rf"^(?P<head>[ \t]+gcc_options{S}={S})\['-ffast-math -march=native'\]",
         lambda m: f"{m['head']}['-ffast-math', '-march=native']"),
    ]),
    Change("training mode", [
        (rf"^test_mode{S}={S}True{EOL}", lambda m: f"test_mode = False  {MARK} train"),
    ]),
    Change("training length from --images", [
        (rf"{INDENTED}num_examples{S}={S}60000{S}\*{S}3{EOL}", lambda m: f"{m['indent']}num_examples = _sb.images"),
    ]),
    Change("n_e from --neurons", [
        (rf"^n_e{S}=.*$", lambda m: "n_e = _sb.neurons"),
    ]),
    Change("plotting removed (headless)", [
        (rf"^import matplotlib\.cm as cmap{EOL}", lambda m: f"{MARK} matplotlib not imported (headless)"),
        (rf"^b\.ion\(\){EOL}", lambda m: f"{MARK} no interactive figures (headless)"),
        (rf"{INDENTED}do_plot_performance{S}={S}True{EOL}", lambda m: f"{m['indent']}do_plot_performance = False"),
        (rf"{INDENTED}ee_STDP_on{S}={S}True{EOL}",
         append_line(f"record_spikes = False  {MARK} no spike monitors or rasters")),
        (rf"{INDENTED}input_weight_monitor\b.*$", replace_line("no weight figure")),
        (rf"{INDENTED}update_2d_input_weights\(.*$", replace_line("no weight figure")),
    ]),
    Change("no weight files written into ./weights/ (checkpoints replace them)", [
        (rf"{INDENTED}save_connections\(str\(j\)\){EOL}", replace_line("see the checkpoints")),
        (rf"{INDENTED}save_theta\(str\(j\)\){EOL}", replace_line("see the checkpoints")),
        (r"^print 'save results'(?s:.*)\Z", lambda m: f"_sb_finish(j)  {MARK} final saves and figures removed\n"),
    ]),
    Change("theta from the checkpoint when resuming", [
        (rf"^(?P<head>[ \t]+neuron_groups\['e'\]\.theta{S}={S})(?P<default>np\.ones.*?){EOL}",
         lambda m: f"{m['head']}_sb_initial_theta({m['default']})"),
    ]),
    Change("first example and Poisson seed", [
        (rf"^j{S}={S}0{EOL}", lambda m: "_sb_seed_poisson()\nj = _sb_first_example"),
    ]),
    Change("per-presentation log", [
        (rf"{INDENTED}previous_spike_count{S}=.*$",
         append_line("_sb_log_presentation(j, input_intensity, current_spike_count, neuron_groups['e'].theta)")),
    ]),
    Change("checkpoints every --checkpoint-every examples", [
        (rf"{INDENTED}j{S}\+={S}1{EOL}",
         append_line("_sb_checkpoint(j, connections['XeAe'][:], neuron_groups['e'].theta)")),
    ]),
    # last, so that no anchor above can match the inserted code
    Change("options and hooks after the imports", [
        (rf"^from brian import \*{EOL}", lambda m: f"{m[0]}\n{HOOKS}"),
    ]),
]


class AnchorError(ValueError):
    """An anchor of a change is missing or not unique."""


def apply_changes(text: str, source: str) -> str:
    """``text`` with every change applied; raises :class:`AnchorError` naming the change and ``source``."""
    for change in CHANGES:
        for anchor, replacement in change.substitutions:
            pattern = re.compile(anchor, re.MULTILINE)
            found = len(pattern.findall(text))
            if found != 1:
                where = "not found" if found == 0 else f"found {found} times"
                raise AnchorError(f"change '{change.name}': anchor /{anchor}/ {where} in {source}")
            text = pattern.sub(replacement, text, count=1)
    return text


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            handle.write(text)
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--original", type=Path, required=True, help="the published Diehl&Cook_spiking_MNIST.py")
    parser.add_argument("--output", type=Path, required=True, help="where the changed copy goes")
    args = parser.parse_args()
    try:
        text = args.original.read_bytes().decode("ascii").replace("\r\n", "\n")
    except (OSError, UnicodeDecodeError) as exc:
        sys.exit(f"cannot read {args.original}: {exc}")
    try:
        changed = apply_changes(text, str(args.original))
    except AnchorError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
    if hashlib.sha256(text.encode()).hexdigest() != PUBLISHED_SHA256:
        print(f"note: {args.original} differs from the published file at commit d527ca3; every anchor matched once",
              file=sys.stderr)
    try:
        write_atomic(args.output, changed)
    except OSError as exc:
        sys.exit(f"cannot write {args.output}: {exc}")
    print(f"wrote {args.output} ({len(CHANGES)} changes)")


if __name__ == "__main__":
    main()
