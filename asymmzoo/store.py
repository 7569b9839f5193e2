"""Local pretrained-weight store, GluonCV style, and conversion of the authors' released checkpoint.

Files live in ``$MXNET_HOME/models`` (default ``~/.mxnet/models``) or a ``root`` you pass, named
``{model}-{sha1[:8]}.params``; the sha1 prefix in the name is checked against the file's content
before loading, so a truncated or corrupted download is refused instead of half-loaded.
Nothing here downloads: ``asymmzoo store add FILE --model NAME`` puts a file in place.
"""
import contextlib
import errno
import glob
import hashlib
import json
import os
import shutil
import stat
import warnings

import mxnet as mx

__all__ = ['store_root', 'sha1_of', 'find_pretrained', 'add_to_store', 'load_pretrained',
           'load_params_into', 'convert_official', 'atomic_target', 'atomic_save_params',
           'atomic_save_parameters', 'atomic_export', 'atomic_savefig', 'atomic_write_bytes',
           'atomic_write_text', 'atomic_write_json', 'StoreError']

_EXPECTED_KEYS_JSON = 'released_asymmnet_large_1.0_keys.json'


class StoreError(ValueError):
    """A pretrained file is missing, corrupted or does not fit the model."""


def store_root(root=None):
    if root is None:
        root = os.path.join(os.environ.get('MXNET_HOME', os.path.join('~', '.mxnet')), 'models')
    return os.path.expanduser(root)


def sha1_of(path, chunk=1 << 20):
    h = hashlib.sha1()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            h.update(block)
    return h.hexdigest()


def find_pretrained(name, root=None):
    """Path of the verified store file for ``name``; a clear StoreError when absent or corrupt."""
    root = store_root(root)
    candidates = sorted(glob.glob(os.path.join(root, '%s-*.params' % name)))
    candidates = [c for c in candidates
                  if len(os.path.basename(c)) == len(name) + 1 + 8 + len('.params')]
    if not candidates:
        raise StoreError(
            "no pretrained weights for %r in %s. asymmzoo downloads nothing: put the file there as "
            "%s-<first 8 hex digits of its sha1>.params, e.g. with `asymmzoo store add FILE --model %s` "
            "(or pass pretrained='/path/to/file.params')." % (name, root, name, name))
    path = candidates[-1]
    expected = os.path.basename(path)[len(name) + 1:len(name) + 9]
    actual = sha1_of(path)
    if not actual.startswith(expected):
        raise StoreError("%s is corrupted: its sha1 is %s but the name says %s...; delete it and put "
                         "a good copy back with `asymmzoo store add`" % (path, actual, expected))
    return path


def _params_and_class_keys(name):
    """The parameters of model ``name`` by structural name, and the names of those whose shape
    depends on its class count (a classifier, a detector's prediction layers), found by building it
    for two class counts: weights fine-tuned for other classes still belong to the model."""
    from .registry import get_model
    shapes = []
    for classes in (3, 5):
        try:
            net = get_model(name, classes=classes)
        except (TypeError, ValueError):   # a model without classes
            net = get_model(name)
        shapes.append({k: tuple(p.shape) for k, p in net._collect_params_with_prefix().items()})
    params = net._collect_params_with_prefix()
    return params, {k for k in shapes[0] if shapes[0][k] != shapes[1].get(k)}


def add_to_store(path, name, root=None):
    """Copy ``path`` into the store under its sha1-named file name; returns the new path."""
    from .registry import get_model, is_registered, _unknown
    if not os.path.isfile(path):
        raise FileNotFoundError("no such file: %s" % path)
    if not is_registered(name):
        raise StoreError("cannot store weights under %s" % _unknown(name.lower()))
    # refuse what would not load before it enters the store: unreadable, NaN, another model's
    loaded = {k.split(':', 1)[-1]: v for k, v in _read_params(path).items()}
    params, per_class = _params_and_class_keys(name)
    lines, _, _ = _misfit({k: p for k, p in params.items() if k not in per_class},
                          {k: v for k, v in loaded.items() if k not in per_class}, classifier_prefix=None)
    if lines:
        raise StoreError("%s does not hold %s's weights:\n  %s\nstore it under the model it was saved "
                         "from" % (path, name, "\n  ".join(lines)))
    root = store_root(root)
    os.makedirs(root, exist_ok=True)
    dst = os.path.join(root, '%s-%s.params' % (name, sha1_of(path)[:8]))
    with atomic_target(dst) as tmp:
        shutil.copyfile(path, tmp)
    return dst


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
    tmp = os.path.join(d, '.%s.tmp-%d%s' % (stem, os.getpid(), ext))
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
        if 'Write' in str(e) or 'write' in str(e) or 'open' in str(e):
            raise OSError(errno.EIO, "cannot write it (disk full or not writable: %s)"
                          % _mxnet_reason(e), path) from None
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
        block.export(os.path.join(tmpdir, 'net'), epoch=epoch)
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


def load_params_into(net, path, ctx=None, classifier_prefix='output.'):
    """Load a ``.params`` file into ``net`` (initialising it on ``ctx``: one device or a list, as
    GluonCV's scripts pass it), by structural names.

    Classifier weights whose shape differs (another ``classes``) are dropped with a warning and the
    classifier keeps a fresh initialisation; any other missing, extra or misshaped key is an error
    that lists them.
    """
    ctx = ctx or mx.cpu()
    loaded = _read_params(path)
    loaded = {k.split(':', 1)[-1]: v for k, v in loaded.items()}  # arg:/aux: prefixes of exports
    params = net._collect_params_with_prefix()
    lines, dropped, missing_cls = _misfit(params, loaded, classifier_prefix)
    if lines:
        raise StoreError("%s does not fit %s:\n  %s" % (path, type(net).__name__, "\n  ".join(lines)))
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


def _read_params(path):
    if not os.path.isfile(path):
        raise FileNotFoundError("params file %r not found; pass the .params file saved with "
                                "net.save_parameters()" % (path,))
    try:
        loaded = mx.nd.load(path)
    except mx.base.MXNetError as e:
        raise StoreError("%s is not a readable MXNet params file (%s)" % (path, _mxnet_reason(e)))
    if not isinstance(loaded, dict):
        raise StoreError("%s holds an unnamed list of arrays, not named parameters" % path)
    import numpy as np
    bad = [k for k, v in loaded.items() if np.dtype(v.dtype).kind == 'f'
           and not np.isfinite(v.asnumpy()).all()]
    if bad:
        raise StoreError("%s holds NaN or infinite values in %d array(s) (%s%s): weights saved from a "
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
    return _classes_of(_read_params(path), classifier_prefix)


def _classes_of(loaded, classifier_prefix='output.'):
    weights = [k for k in loaded if k.startswith(classifier_prefix) and k.endswith('weight')
               and len(loaded[k].shape) >= 2]
    return int(loaded[sorted(weights)[-1]].shape[0]) if weights else None


def load_parameters_checked(net, path, ctx=None):
    """``net.load_parameters(path)`` (every parameter, exact shapes) with the failures a user can
    cause turned into one clear :class:`StoreError`: a missing or unreadable file, a symbol export's
    ``arg:``/``aux:`` file, another model's or another class count's weights."""
    loaded = _read_params(path)
    if any(k.startswith(('arg:', 'aux:')) for k in loaded):
        raise StoreError("%s is a symbol export (arg:/aux: names): load it with "
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
        raise StoreError("%s does not fit %s%s: %s. Pass the weights saved from this model with "
                         "net.save_parameters()" % (path, getattr(net, 'name_in_zoo', type(net).__name__),
                                                    hint, first[:300]))


def load_pretrained(net, name, pretrained, ctx=None, root=None):
    """``pretrained=True``: the verified store file for ``name``; a str: that file."""
    if isinstance(pretrained, str):
        if not os.path.isfile(os.path.expanduser(pretrained)):
            raise StoreError("pretrained file not found: %s" % pretrained)
        path = os.path.expanduser(pretrained)
    else:
        path = find_pretrained(name, root)
    return load_params_into(net, path, ctx=ctx)


# ----------------------------------------------------------------------------------------------
# The authors' released AsymmNet-L x1.0 checkpoint (0.7542-imagenet-modifiedv3-358-best.params)

def _official_to_ours(key, n_features):
    """Map a released key to ours. Released ``features`` also hold GAP / 1280 conv / act / dropout
    (indices n_features .. n_features+3); ours keep those in ``head``. Block child names
    (expand / conv1 / se / conv2, conv / bn) and the X | Y | X concat order are the same, so the
    depthwise weights map channel for channel."""
    parts = key.split('.')
    if parts[0] == 'features' and int(parts[1]) >= n_features:
        return '.'.join(['head', str(int(parts[1]) - n_features)] + parts[2:])
    return key


def expected_official_keys():
    """The released checkpoint's key -> shape table (from the project's reference copy)."""
    path = os.path.join(os.path.dirname(__file__), 'data', _EXPECTED_KEYS_JSON)
    with open(path) as f:
        return {k: tuple(v) for k, v in json.load(f).items()}


def convert_official(src, dst, model='asymmnet_large_1.0'):
    """Convert the authors' released checkpoint into a file ``get_model(model, pretrained=dst)``
    loads. Every key and shape is checked; wrong or missing keys raise StoreError listing them."""
    from .registry import get_model
    if model != 'asymmnet_large_1.0':
        raise StoreError("only the released asymmnet_large_1.0 checkpoint is known; got %r" % model)
    if not os.path.isfile(src):
        raise FileNotFoundError("no such file: %s" % src)
    if os.path.isdir(dst):
        raise StoreError("the output %s is a folder: give the file to write, e.g. %s"
                         % (dst, os.path.join(dst, model + '.params')))
    if os.path.exists(dst) and os.path.samefile(src, dst):
        raise StoreError("the output %s is the input file: write the converted weights to another "
                         "file (the released checkpoint would be lost)" % dst)
    try:
        loaded = mx.nd.load(src)
    except mx.base.MXNetError as e:
        raise StoreError("%s is not a readable MXNet params file (%s)" % (src, _mxnet_reason(e)))
    expected = expected_official_keys()
    missing = sorted(set(expected) - set(loaded))
    extra = sorted(set(loaded) - set(expected))
    bad = sorted(k for k in set(expected) & set(loaded) if tuple(loaded[k].shape) != expected[k])
    if missing or extra or bad:
        msg = ["%s is not the released asymmnet_large_1.0 checkpoint:" % src]
        if missing:
            msg.append("missing keys (%d): %s%s" % (len(missing), ", ".join(missing[:10]),
                                                    " ..." if len(missing) > 10 else ""))
        if extra:
            msg.append("unexpected keys (%d): %s%s" % (len(extra), ", ".join(extra[:10]),
                                                       " ..." if len(extra) > 10 else ""))
        for k in bad[:3]:
            msg.append("shape of %s: %s, expected %s" % (k, tuple(loaded[k].shape), expected[k]))
        if len(bad) > 3:
            msg.append("... and %d more arrays of another shape" % (len(bad) - 3))
        raise StoreError("\n  ".join(msg))
    net = get_model(model)
    n_features = len(net.features)
    ours = net._collect_params_with_prefix()
    out = {}
    for k, v in loaded.items():
        nk = _official_to_ours(k, n_features)
        if nk not in ours or tuple(ours[nk].shape) != tuple(v.shape):
            raise StoreError("released key %s maps to %s, which %s does not have with shape %s"
                             % (k, nk, model, tuple(v.shape)))
        out[nk] = v
    left = sorted(set(ours) - set(out))
    if left:
        raise StoreError("conversion left parameters unset: %s" % ", ".join(left))
    return atomic_save_params(out, dst)
