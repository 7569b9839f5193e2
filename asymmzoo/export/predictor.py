"""The fastest CPU inference path: :func:`fastest_predictor` (deploy -> ONNX -> onnxruntime) and
:class:`OnnxPredictor`, the callable that runs an exported file in one static-batch onnxruntime session
per batch size."""
import collections
import os
import shutil
import tempfile

import mxnet as mx
import numpy as np

from ..utils.math import max_abs_diff
from ._deps import _import_onnx
from .errors import ExportError
from .onnx import export_onnx
from .prepare import check_initialized, prepare_model
from .runtime import onnx_session


class OnnxPredictor(object):
    """Callable wrapper of onnxruntime: ``predict(x)`` with x a numpy / NDArray batch (N, C, H, W)
    returns a numpy array (or a list for multi-output nets).

    With ``static_batch`` (default) each batch size gets its own session of
    :func:`static_batch_model`, created on first use: static shapes let onnxruntime run the whole
    network in its blocked layout, like MXNet's ``hybridize(static_shape=True)``, and AsymmNet's
    reuse-concat rewrites are chosen for the batch size. They are built from ``source`` (default: the
    file; :func:`fastest_predictor` passes the graph before the rewrites). Building one takes
    onnxruntime's full optimisation (a second or two); the ``max_sessions`` most recently used are
    kept. With ``check`` (default) each new session is compared, on a random batch of its size, with
    the file at ``path`` (which :func:`export_onnx` verified against MXNet): :class:`ExportError` if
    they differ by more than ``atol``. ``static_batch=False`` runs the file as exported (any batch
    size, one session: ``self.session``). Not thread-safe: give each thread its own predictor.

    ``preprocess`` (an :class:`asymmzoo.download.Preprocess`: the weights' mean / std in pixel units)
    lets ``predict`` take raw uint8 pixels too, (N, H, W, 3) or (N, 3, H, W) RGB at the exported
    size, normalised with the weights' own mean / std (:meth:`normalise`)."""

    def __init__(self, path, threads=None, info=None, static_batch=True, max_sessions=4, source=None,
                 check=True, atol=1e-4, preprocess=None):
        self.path = path
        self.preprocess = preprocess
        self.source = path if source is None else source  # what static sessions are built from
        self.threads = threads
        self.static_batch = bool(static_batch)
        self.max_sessions = max(1, int(max_sessions))
        self.check, self.atol = bool(check), float(atol)
        self.info = dict(info or {})
        self._sessions = collections.OrderedDict()
        self.session = None if self.static_batch else onnx_session(path, threads=threads)
        self._reference = self.session
        model = _import_onnx().load(path, load_external_data=False)
        inits = {i.name for i in model.graph.initializer}
        data = [i for i in model.graph.input if i.name not in inits][0]
        self.input_name = data.name
        # (None, C, H, W): every dimension but the batch is fixed in the exported graph
        self.input_shape = tuple([None] + [d.dim_value if d.HasField('dim_value') else None
                                           for d in data.type.tensor_type.shape.dim[1:]])
        self._tmpdir = None   # a folder of fastest_predictor's own, removed by close()
        self.closed = False

    def close(self):
        """Drop the sessions and remove the temporary folder :func:`fastest_predictor` exported to
        (when it chose the path). Also done when the predictor is garbage-collected."""
        self._sessions.clear()
        self.session = self._reference = None
        self.closed = True
        tmp, self._tmpdir = getattr(self, '_tmpdir', None), None
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    def __del__(self):
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def _check(self, sess, batch_size):
        if self._reference is None:
            self._reference = onnx_session(self.path, threads=self.threads)
        shape = [batch_size] + [d if isinstance(d, int) else 1 for d in sess.get_inputs()[0].shape[1:]]
        x = np.random.RandomState(batch_size).standard_normal(shape).astype(np.float32)
        got = sess.run(None, {self.input_name: x})
        ref = self._reference.run(None, {self.input_name: x})
        worst = max_abs_diff(got, ref)
        if not worst <= self.atol:
            raise ExportError("the batch-%d session of %s differs from the verified file by %.3g "
                              "(> %.1g)" % (batch_size, self.path, worst, self.atol))

    def session_for(self, batch_size):
        """The onnxruntime session that runs batches of ``batch_size``."""
        if self.closed:
            raise ValueError("this predictor of %s is closed (close() dropped its sessions): make "
                             "a new one" % self.path)
        if not self.static_batch:
            return self.session
        sess = self._sessions.pop(batch_size, None)
        if sess is None:
            sess = onnx_session(self.source, threads=self.threads, batch_size=batch_size)
            if self.check:
                self._check(sess, batch_size)
        self._sessions[batch_size] = sess
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return sess

    def __call__(self, x):
        if isinstance(x, mx.nd.NDArray):
            x = x.asnumpy()
        if np.asarray(x).dtype.kind in 'biu' and self.preprocess is not None:
            x = self.normalise(x)
        if np.asarray(x).dtype.kind in 'biu':
            raise ValueError("got a %s batch: give the preprocessed float batch the network was trained "
                             "on (e.g. ToTensor + Normalize of gluoncv's presets), not raw pixels"
                             % np.asarray(x).dtype)
        x = np.ascontiguousarray(x, dtype=np.float32)
        want = self.input_shape
        if x.ndim != len(want) or x.shape[0] < 1 or \
                any(w is not None and w != g for w, g in zip(want[1:], x.shape[1:])):
            raise ValueError("expected a non-empty batch of shape (N, %s) (the shape %s was exported "
                             "with; export again for another size), got %s"
                             % (', '.join('?' if w is None else str(w) for w in want[1:]), self.path,
                                x.shape))
        out = self.session_for(x.shape[0]).run(None, {self.input_name: x})
        return out[0] if len(out) == 1 else out

    def normalise(self, pixels):
        """uint8 RGB pixels, (N, H, W, 3) or (N, 3, H, W) -> the float NCHW batch the weights take:
        ``(pixel - mean) / std`` with the weights' own mean / std."""
        if self.preprocess is None:
            raise ValueError("this predictor has no preprocessing: give the preprocessed float batch")
        x = np.asarray(pixels, dtype=np.float32)
        if x.ndim == 4 and x.shape[-1] == 3 and x.shape[1] != 3:
            x = x.transpose(0, 3, 1, 2)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError("expected RGB pixels of shape (N, H, W, 3) or (N, 3, H, W), got %s" % (x.shape,))
        mean = np.asarray(self.preprocess.mean, np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.preprocess.std, np.float32).reshape(1, 3, 1, 1)
        return (x - mean) / std

    def __repr__(self):
        return 'OnnxPredictor(%r, static_batch=%s)' % (self.path, self.static_batch)


def fastest_predictor(net, input_shape=None, path=None, threads=None, verify=True, atol=1e-4,
                      static_batch=True, preprocess='auto'):
    """The project's fastest CPU inference path: deploy -> ONNX (cleaned, h-swish fused, AsymmNet's
    reuse concats moved or split) -> onnxruntime, with one static-shape session per batch size (see
    :class:`OnnxPredictor`). ``net`` is an initialised (trained) network or a registry name (then
    random weights, for benchmarking). A network passed in is deployed **in place**
    (:func:`asymmzoo.deploy`: ACB / RotateConv branches fused, hybridized), as for ``export``: keep
    training a copy, not this one. Returns an :class:`OnnxPredictor`; its ``info`` holds the export
    check (``max_abs_diff`` against MXNet). Without ``path`` the file goes to a temporary folder
    that the predictor removes when it is closed or garbage-collected. A network whose parameters
    were never initialised is refused (``ValueError``) before any work. ``preprocess`` ('auto': the
    preprocessing of the weights the network was loaded with by ``get_model(..., pretrained=True)``,
    ``net.weights_preprocess``; nothing for other weights; or a Preprocess, or None) lets the
    predictor take raw pixels (:meth:`OnnxPredictor.normalise`)."""
    if preprocess == 'auto':   # only weights whose run is known say how to normalise
        preprocess = None if isinstance(net, str) else getattr(net, 'weights_preprocess', None)
    if not isinstance(net, str):
        from ..utils.blocks import check_block
        check_block(net, 'fastest_predictor()', 'a Gluon network (initialised) or a registry name')
        check_initialized(net, 'fastest_predictor')
    net, shape = prepare_model(net, deploy=True, input_shape=input_shape)
    tmp = None
    if path is None:
        name = getattr(net, 'name_in_zoo', type(net).__name__.lower())
        tmp = tempfile.mkdtemp(prefix='asymmzoo-fast-')
        path = os.path.join(tmp, name + '.onnx')
    try:
        info = export_onnx(net, path, shape, verify=verify, atol=atol, keep_base=True)
        base = info.pop('base_model')
        pred = OnnxPredictor(path, threads=threads, info=info, static_batch=static_batch, source=base,
                             preprocess=preprocess)
    except BaseException:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    pred._tmpdir = tmp
    return pred
