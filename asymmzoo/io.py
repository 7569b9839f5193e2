"""Writing and reading files safely, for the whole package.

* ``atomic_*``: every file the project writes goes through a temporary name in the same folder and an
  atomic rename: a reader sees the old file or the new one, never half of one; a failed write leaves
  nothing behind and names the file.
* Reading weights: :func:`load_params_into` / :func:`load_parameters_checked` refuse an unreadable
  file, NaN or infinite values, and arrays that do not fit the network, with one clear
  :class:`WeightsError` naming the file and the fix.
"""
import contextlib
import errno
import hashlib
import json
import os
import stat
import warnings

import mxnet as mx

__all__ = ['WeightsError', 'atomic_target', 'atomic_save_params', 'atomic_save_parameters', 'atomic_export',
           'atomic_savefig', 'atomic_write_bytes', 'atomic_write_text', 'atomic_write_json', 'sha1_of',
           'load_params_into', 'load_parameters_checked', 'classes_in_params', 'read_params',
           'check_output_file', 'check_writable_folder', 'made_folder', 'load_named_arrays',
           'missing_folders', 'remove_empty_folders']


class WeightsError(ValueError):
    """A weights file is missing, unreadable, corrupted or does not fit the model."""


@contextlib.contextmanager
def atomic_target(path):
    """Yield a temporary name in ``path``'s folder (created if missing) to write to; on success it is
    flushed to disk and renamed onto ``path`` (atomic: a reader sees the old file or the new one,
    never half of one), on any error it is removed and ``path`` is left as it was. The temporary
    keeps ``path``'s extension (writers that infer the format from it work); a symlink ``path`` is
    written through, and a file replaced keeps its permission bits."""
    path = os.path.realpath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "is a folder: give the name of the file to write", path)
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    # pid and a random part: two threads, or two hosts sharing the folder, never share a temporary
    tmp = os.path.join(d, '.%s.tmp-%d-%s%s' % (stem, os.getpid(), os.urandom(4).hex(), ext))
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if os.path.exists(path):
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(tmp, path)
    except mx.base.MXNetError as e:   # MXNet's own writers: a full disk, a read-only folder
        if os.path.exists(tmp):
            os.remove(tmp)
        if 'rite' in str(e) or 'open' in str(e) or 'ermission' in str(e) or 'file' in str(e).lower():
            reason = _mxnet_reason(e).replace(tmp, path)   # the user's file, not our temporary
            raise OSError(errno.EIO, "cannot write it (disk full or not writable: %s)" % reason,
                          path) from None
        raise
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def atomic_save_params(arrays, path):
    """``mx.nd.save`` through a temporary file and an atomic rename: never a half-written file."""
    with atomic_target(path) as tmp:
        mx.nd.save(tmp, arrays)
    return path


def atomic_save_parameters(block, path):
    """``block.save_parameters(path)`` (the same file) through :func:`atomic_target`."""
    with atomic_target(path) as tmp:
        block.save_parameters(tmp)
    return path


def atomic_export(block, prefix, epoch=0, check=None):
    """``block.export(prefix, epoch)`` (a hybridized block run once) with each of the two files,
    ``prefix-symbol.json`` and ``prefix-%04d.params``, written through :func:`atomic_target`.
    ``check(symbol_file, params_file)``, if given, runs on the written files before they replace
    anything: when it raises, the files at ``prefix`` stay as they were. Returns their paths."""
    import tempfile
    d = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(d, exist_ok=True)
    out = [prefix + '-symbol.json', '%s-%04d.params' % (prefix, epoch)]
    with tempfile.TemporaryDirectory(prefix='.export-', dir=d) as tmpdir:
        try:
            block.export(os.path.join(tmpdir, 'net'), epoch=epoch)
        except mx.base.MXNetError as e:
            if 'rite' in str(e) or 'open' in str(e):   # fwrite / FileStream.Write / cannot open
                raise OSError(errno.EIO, "cannot write the export (disk full or not writable: %s)"
                              % _mxnet_reason(e), prefix) from None
            raise
        written = [os.path.join(tmpdir, 'net-symbol.json'), os.path.join(tmpdir, 'net-%04d.params' % epoch)]
        if check is not None:
            check(*written)
        for src, dst in zip(written, out):
            with atomic_target(dst) as tmp:
                os.replace(src, tmp)
    return out


def atomic_savefig(fig, path, close=True, **kwargs):
    """``fig.savefig(path, **kwargs)`` through :func:`atomic_target`; closes ``fig`` unless told not."""
    with atomic_target(path) as tmp:
        fig.savefig(tmp, **kwargs)
    if close:
        import matplotlib.pyplot as plt
        plt.close(fig)
    return path


def atomic_write_bytes(data, path):
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    with atomic_target(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(data)
    return path


def atomic_write_text(text, path):
    return atomic_write_bytes(text.encode('utf8'), path)


def atomic_write_json(obj, path, indent=2, sort_keys=True):
    return atomic_write_text(json.dumps(obj, indent=indent, sort_keys=sort_keys), path)


def sha1_of(path, chunk=1 << 20):
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def load_params_into(net, path, ctx=None, classifier_prefix='output.'):
    """Load a ``.params`` file into ``net`` (initialising it on ``ctx``: one device or a list, as
    GluonCV's scripts pass it), by structural names.

    Classifier weights whose shape differs (another ``classes``) are dropped with a warning and the
    classifier keeps a fresh initialisation; any other missing, extra or misshaped key is an error
    that lists them.
    """
    ctx = ctx or mx.cpu()
    loaded = read_params(path)
    loaded = {k.split(':', 1)[-1]: v for k, v in loaded.items()}  # arg:/aux: prefixes of exports
    params = net._collect_params_with_prefix()
    lines, dropped, missing_cls = _misfit(params, loaded, classifier_prefix)
    if lines:
        raise WeightsError("%s does not fit %s:\n  %s" % (path, type(net).__name__, "\n  ".join(lines)))
    if dropped or missing_cls:
        warnings.warn("%s: classifier weights %s do not fit classes=%s; the classifier is freshly "
                      "initialised, everything else is loaded" % (path, dropped or missing_cls,
                                                                  getattr(net, 'classes', '?')))
    net.initialize(mx.init.Xavier(), ctx=ctx, force_reinit=True)
    for k, p in params.items():
        if k in loaded and k not in dropped:
            p.set_data(loaded[k])   # copied onto each of the parameter's contexts
    return net


def _misfit(params, loaded, classifier_prefix='output.'):
    """How the arrays ``loaded`` fail to fit the parameters ``params`` (both by structural name):
    ``(lines, dropped, missing_classifier)``; ``lines`` is empty when they fit. A classifier of
    another class count, or none, is not a misfit (it is re-initialised)."""
    missing = sorted(set(params) - set(loaded))
    extra = sorted(set(loaded) - set(params))
    bad_shape = sorted(k for k in set(params) & set(loaded)
                       if params[k].shape and 0 not in params[k].shape
                       and tuple(params[k].shape) != tuple(loaded[k].shape))
    is_cls = (lambda k: k.startswith(classifier_prefix)) if classifier_prefix else (lambda k: False)
    dropped = [k for k in bad_shape if is_cls(k)]
    bad_shape = [k for k in bad_shape if k not in dropped]
    missing_cls = [k for k in missing if is_cls(k)]
    missing = [k for k in missing if k not in missing_cls]
    lines = []
    if missing:
        lines.append("missing (%d): " % len(missing) + ", ".join(missing[:10])
                     + (" ..." if len(missing) > 10 else ""))
    if extra:
        lines.append("unexpected (%d): " % len(extra) + ", ".join(extra[:10])
                     + (" ..." if len(extra) > 10 else ""))
    for k in bad_shape[:3]:
        lines.append("shape of %s: file %s, model %s" % (k, loaded[k].shape, params[k].shape))
    if len(bad_shape) > 3:
        lines.append("... and %d more arrays of another shape" % (len(bad_shape) - 3))
    return lines, dropped, missing_cls


def load_named_arrays(path):
    """``mx.nd.load(path)`` as ``{name: NDArray}``, or a :class:`WeightsError` naming a file that
    MXNet cannot read or that holds an unnamed list."""
    try:
        loaded = mx.nd.load(path)
    except mx.base.MXNetError as e:
        raise WeightsError("%s is not a readable MXNet params file (%s)" % (path, _mxnet_reason(e)))
    if not isinstance(loaded, dict):
        raise WeightsError("%s holds an unnamed list of arrays, not named parameters" % path)
    return loaded


def read_params(path):
    if not os.path.isfile(path):
        raise FileNotFoundError("params file %r not found; pass the .params file saved with "
                                "net.save_parameters()" % (path,))
    loaded = load_named_arrays(path)
    import numpy as np
    bad = [k for k, v in loaded.items() if np.dtype(v.dtype).kind == 'f'
           and not np.isfinite(v.asnumpy()).all()]
    if bad:
        raise WeightsError("%s holds NaN or infinite values in %d array(s) (%s%s): weights saved from a "
                         "diverged run? Use an earlier checkpoint" % (
                             path, len(bad), ', '.join(sorted(bad)[:5]), ' ...' if len(bad) > 5 else ''))
    return loaded


def _mxnet_reason(e):
    """The line of an MXNetError that says what went wrong (not its traceback header)."""
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    for l in reversed(lines):
        if 'Check failed' in l or 'Invalid' in l or ('Error' in l and 'Traceback' not in l):
            return l[:200]
    return lines[-1][:200] if lines else type(e).__name__


def classes_in_params(path, classifier_prefix='output.'):
    """The class count of the classifier saved in a ``.params`` file (the first dimension of its last
    ``output.*`` weight), or None when the file has no such weight. Lets ``export`` / ``bench`` build
    the model a checkpoint was trained as (e.g. the 10-class digit models of ``quantize``)."""
    return _classes_of(read_params(path), classifier_prefix)


def _classes_of(loaded, classifier_prefix='output.'):
    weights = [k for k in loaded if k.startswith(classifier_prefix) and k.endswith('weight')
               and len(loaded[k].shape) >= 2]
    return int(loaded[sorted(weights)[-1]].shape[0]) if weights else None


def load_parameters_checked(net, path, ctx=None):
    """``net.load_parameters(path)`` (every parameter, exact shapes) with the failures a user can
    cause turned into one clear :class:`WeightsError`: a missing or unreadable file, a symbol export's
    ``arg:``/``aux:`` file, another model's or another class count's weights."""
    loaded = read_params(path)
    if any(k.startswith(('arg:', 'aux:')) for k in loaded):
        raise WeightsError("%s is a symbol export (arg:/aux: names): load it with "
                         "asymmzoo.export.load_symbol(SYMBOL_JSON, %s), or pass the .params "
                         "saved with net.save_parameters()" % (path, path))
    try:
        net.load_parameters(path, ctx=ctx or mx.cpu(), allow_missing=False, ignore_extra=False)
    except (AssertionError, mx.base.MXNetError) as e:
        theirs = _classes_of(loaded)
        ours = getattr(net, 'classes', None)
        hint = (" (the file's classifier has %d classes, the model %s: build it with classes=%d)"
                % (theirs, ours, theirs)) if theirs and ours and theirs != ours else ''
        first = str(e).strip().splitlines()[0] if isinstance(e, AssertionError) else _mxnet_reason(e)
        for api_hint in (' Set allow_missing', ' Set ignore_extra', ', or set allow_missing'):
            first = first.split(api_hint)[0]   # arguments a command-line user cannot set
        first = first.rstrip(' .')
        raise WeightsError("%s does not fit %s%s: %s. Pass the weights saved from this model with "
                         "net.save_parameters()" % (path, getattr(net, 'name_in_zoo', type(net).__name__),
                                                    hint, first[:300]))


def check_output_file(path, flag, force=False):
    """Refuse, before any work, an output file that would replace one the user has (unless
    ``force``), that is a folder, or whose folder cannot be made or written. Nothing is created
    here: the writer makes the folder when it writes, so a failed run leaves nothing behind."""
    if not path:
        return
    if os.path.isdir(path):
        raise ValueError("%s %s is a folder; give a file name" % (flag, path))
    if os.path.exists(path) and not force:
        raise ValueError("%s %s exists; pass --force to replace it, or choose another file"
                         % (flag, path))
    folder = os.path.dirname(os.path.abspath(path))
    check_writable_folder(folder, '%s %s' % (flag, path), 'its folder %s' % folder)


def check_writable_folder(folder, said, which=None):
    """The folder, or the nearest part of it that exists, is a writable folder (not a file); the
    folder itself is not made."""
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise ValueError("%s: cannot make %s (%s is a file)" % (said, which or 'the folder %s' % folder, probe))
    import tempfile
    try:   # a real write (permissions, a read-only or immutable folder, a read-only file system)
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        raise ValueError("%s: %s is not writable (%s)" % (said, probe, e.strerror or e))


def missing_folders(folder):
    """The folders ``os.makedirs(folder)`` would make, deepest first."""
    made, probe = [], os.path.abspath(folder)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        made.append(probe)
        probe = os.path.dirname(probe)
    return made


def remove_empty_folders(made):
    """Remove the folders ``made`` (deepest first) while they are empty; returns those removed (a
    folder holding anything stops it, and so keeps its parents)."""
    removed = []
    for d in made:
        try:
            os.rmdir(d)
        except OSError:
            break
        removed.append(d)
    return removed


@contextlib.contextmanager
def made_folder(folder):
    """Make ``folder`` (and missing parents) for a job; when the job fails or is interrupted, remove
    again what this made if it is still empty (a folder that existed, or holds anything, stays)."""
    folder = os.path.abspath(folder)
    made = missing_folders(folder)
    os.makedirs(folder, exist_ok=True)
    try:
        yield folder
    except BaseException:
        remove_empty_folders(made)
        raise
