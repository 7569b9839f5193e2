"""What the benchmarks time: a model by registry name, or ``gluoncv:NAME`` for a GluonCV model-zoo
network built with ``pretrained=False`` (``gluoncv:mobilenetv3_large`` / ``gluoncv:mobilenetv3_small``
use ``gluoncv.model_zoo.mobilenetv3.get_mobilenet_v3``), built and initialised (:func:`build_network`),
in one form on one engine (:class:`BenchRunner`: ``run(batch)`` is one synchronous forward pass), and
one training step (forward + backward + SGD update, hybridized).

Engines:
  ``mxnet``        Gluon, ``hybridize(static_alloc=True, static_shape=True)``
  ``onednn``       MXNet with oneDNN graph fusion: ``net.optimize_for(x, backend='MKLDNN')``
  ``onnxruntime``  deployed, exported to ONNX (:func:`asymmzoo.export.export_onnx`, verified
                   against MXNet; h-swish fused, AsymmNet's reuse concats split), run in onnxruntime
                   with full graph optimisation and one static-batch session per batch size (SE
                   scaling in the blocked layout): the fastest path, as ``fastest_predictor`` runs it
  ``onnxruntime-plain``  the same without our graph rewrites (MXNet's exporter output, weights
                   moved out of the graph inputs, dynamic batch), to show what the rewrites buy
"""
import os
import shutil

import mxnet as mx
import numpy as np

ENGINES = ('mxnet', 'onednn', 'onnxruntime', 'onnxruntime-plain')
FORMS = ('deployed', 'train')


def resolve_names(patterns):
    """Expand fnmatch patterns over the registry (keeping ``gluoncv:`` names); error if a pattern
    matches nothing."""
    from ..registry import list_models, unknown_model
    names = []
    for pat in patterns:
        if pat.startswith('gluoncv:'):
            found = [pat]
            _check_gluoncv_name(pat.split(':', 1)[1])
        else:
            found = list_models(pat)
            if not found:
                if any(ch in pat for ch in '*?['):
                    raise ValueError("no registered model matches %r; see `asymmzoo summary`" % pat)
                raise unknown_model(pat.lower())
        names += [n for n in found if n not in names]
    return names


def _check_gluoncv_name(gname):
    """Refuse a ``gluoncv:NAME`` that GluonCV's model zoo does not have, with its closest names."""
    import difflib
    from gluoncv.model_zoo import get_model_list
    known = get_model_list()
    if gname.lower() in known:
        return
    if any(ch in gname for ch in '*?['):
        raise ValueError("gluoncv:%s: give one GluonCV model name, not a pattern (e.g. "
                         "gluoncv:mobilenetv3_large)" % gname)
    close = difflib.get_close_matches(gname.lower(), known, n=5, cutoff=0.6)
    raise ValueError("unknown GluonCV model %r; %s" % (
        gname, ('closest: ' + ', '.join(close)) if close else
        'see gluoncv.model_zoo.get_model_list() for the %d names' % len(known)))


def build_network(name, form='deployed', seed=0, input_shape=None):
    """Initialised network for ``name`` in ``form`` ('deployed' = asymmzoo.deploy applied, 'train' =
    as built); returns ``(net, input_shape)``."""
    from ..export import prepare_model, default_input_shape, batch_input_shape
    if form not in FORMS:
        raise ValueError("form must be one of %s, got %r" % (FORMS, form))
    if name.startswith('gluoncv:'):
        gname = name.split(':', 1)[1]
        import gluoncv
        if gname in ('mobilenetv3_large', 'mobilenetv3_small'):
            from gluoncv.model_zoo.mobilenetv3 import get_mobilenet_v3
            net = get_mobilenet_v3(gname.split('_')[1], pretrained=False)
        else:
            try:
                net = gluoncv.model_zoo.get_model(gname, pretrained=False)
            except ValueError as e:
                raise ValueError("unknown GluonCV model %r (%s)" % (gname, str(e).splitlines()[0]))
        net.name_in_zoo = name
        shape = tuple(input_shape) if input_shape else default_input_shape(net)
        # GluonCV's builder initialises with its own defaults: re-initialise like ours, so that both
        # run on comparable (non-vanishing) activations
        from ..export import randomize_bn_stats
        mx.random.seed(seed)
        net.initialize(mx.init.MSRAPrelu(), force_reinit=True)
        rng = np.random.RandomState(seed)
        randomize_bn_stats(net, mx.nd.array(rng.standard_normal(batch_input_shape(net, shape, 2))))
        return prepare_model(net, deploy=False, input_shape=shape, seed=seed)
    return prepare_model(name, deploy=(form == 'deployed'), input_shape=input_shape, seed=seed)


class BenchRunner(object):
    """One (model, form, engine): ``run(batch)`` executes one synchronous forward pass."""

    def __init__(self, name, form, engine, batch_sizes, threads=None, seed=0, input_shape=None,
                 onnx_dir=None, profile=False):
        """``onnx_dir``: where onnxruntime engines write their exported files (kept); default a
        temporary folder, removed once the sessions are loaded. ``profile``: run the static-batch
        sessions under onnxruntime's profiler, writing ``{name}-b{batch}-profile_*.json`` there on
        ``session.end_profiling()`` (:func:`op_profile` reads and removes them)."""
        from ..utils.counting import count_params, count_madds
        if engine not in ENGINES:
            raise ValueError("engine must be one of %s, got %r" % (ENGINES, engine))
        if engine.startswith('onnxruntime') and form == 'train':
            raise ValueError("onnxruntime runs the deployed form only; use --form deployed")
        self.name, self.form, self.engine = name, form, engine
        net, shape = build_network(name, form, seed=seed, input_shape=input_shape)
        from ..export import batch_input_shape
        self.input_shape = batch_input_shape(net, shape, 1)   # one item (a video: its frames)
        self.params = count_params(net)
        self.madds = count_madds(net, self.input_shape)
        self.net = None  # the MXNet network, for the MXNet engines only
        rng = np.random.RandomState(seed)
        self.inputs = {b: rng.standard_normal(batch_input_shape(net, shape, b)).astype(np.float32)
                       for b in batch_sizes}
        self.check = None
        self._tmp_dir = None
        if engine.startswith('onnxruntime'):
            import tempfile
            d = onnx_dir or tempfile.mkdtemp(prefix='asymmzoo-bench-')
            self._tmp_dir = None if onnx_dir else d
            try:
                self._build_sessions(net, d, batch_sizes, threads, profile)
            except BaseException:
                remove_profiles(getattr(self, 'sessions', {}).values() if profile else ())
                self.close()
                raise
            if not profile:
                self.close()  # the sessions hold the models: the files are not needed
            # not kept: the sessions do not need the network, and its static-shape graph holds
            # buffers for every verified batch size (~1 GB at batch 32; a benchmark of ten models
            # on four engines ran out of 24 GiB while the runners kept them)
        else:
            self.net = net
            self.nd_inputs = {b: mx.nd.array(x) for b, x in self.inputs.items()}
            if engine == 'onednn':
                net.optimize_for(self.nd_inputs[batch_sizes[0]], backend='MKLDNN',
                                 static_alloc=True, static_shape=True)
            else:
                net.hybridize(static_alloc=True, static_shape=True)

    def _build_sessions(self, net, d, batch_sizes, threads, profile):
        from ..export import export_onnx, onnx_session, verify_onnx
        name = self.name
        path = os.path.join(d, name.replace(':', '_') + '.onnx')
        plain = self.engine == 'onnxruntime-plain'
        self.check = export_onnx(net, path, self.input_shape, verify=True,
                                 fuse_activations=not plain, split_concats=not plain,
                                 keep_base=True)
        base = self.check.pop('base_model')
        # the fastest path runs one static-shape session per batch size, its rewrites chosen
        # for that size (as fastest_predictor does), each checked against MXNet; the plain
        # export runs as MXNet's exporter wrote it, dynamic batch
        self.sessions = {}
        if plain:
            one = onnx_session(path, threads=threads)
            self.sessions = {b: one for b in batch_sizes}
        else:
            for b in batch_sizes:
                prefix = os.path.join(d, '%s-b%d-profile' % (name.replace(':', '_'), b)) \
                    if profile else None
                rows = self.inputs[b].shape[0]   # a video model's b items are b x its frames
                self.sessions[b] = onnx_session(base, threads=threads, batch_size=rows,
                                                profile_prefix=prefix)
                diff = verify_onnx(net, path, self.input_shape, batch_sizes=(b,),
                                   session=self.sessions[b])['max_abs_diff']
                self.check['max_abs_diff'] = max(self.check['max_abs_diff'], diff)
        self.iname = self.sessions[batch_sizes[0]].get_inputs()[0].name

    def close(self):
        """Remove the temporary folder of the exported files (when no ``onnx_dir`` was given)."""
        if self._tmp_dir:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    @property
    def label(self):
        return '%s [%s, %s]' % (self.name, self.form, self.engine)

    def run(self, batch):
        if self.engine.startswith('onnxruntime'):
            self.sessions[batch].run(None, {self.iname: self.inputs[batch]})
        else:
            with mx.autograd.predict_mode():
                out = self.net(self.nd_inputs[batch])
            (out[0] if isinstance(out, (list, tuple)) else out).wait_to_read()


def remove_profiles(sessions):
    """End the profiling of onnxruntime ``sessions`` not yet ended and delete what it writes
    (cleanup on failure: a profiled session left alone writes its file when it is destroyed)."""
    for s in {id(s): s for s in sessions}.values():
        try:
            path = s.end_profiling()
            if path and os.path.exists(path):
                os.remove(path)
        except Exception:  # best effort: never hide the error being handled
            pass


def _train_step_runner(name, batch, seed=0, input_shape=None):
    """Returns ``step()`` doing forward + softmax CE + backward + SGD update on the train form."""
    from ..export import batch_input_shape, is_detector
    net, shape = build_network(name, 'train', seed=seed, input_shape=input_shape)
    if is_detector(net):
        raise ValueError("--train-step times a classification step (softmax cross-entropy); %s is a "
                         "detector, whose training step needs its targets: time it with "
                         "downstream/detection/train_yolo3.py" % name)
    if getattr(net, 'embedding_size', None):
        raise ValueError("--train-step times a classification step (softmax cross-entropy over "
                         "classes); %s is an embedding network (its loss is the margin head's): time "
                         "it with downstream/face/train_arcface.py" % name)
    net.hybridize(static_alloc=True, static_shape=True)
    rng = np.random.RandomState(seed)
    x = mx.nd.array(rng.standard_normal(batch_input_shape(net, shape, batch)))
    with mx.autograd.predict_mode():
        out = net(x)
    out = out[0] if isinstance(out, (list, tuple)) else out
    if out.ndim != 2 or out.shape[0] != batch:
        raise ValueError("--train-step times a classification step (softmax cross-entropy over "
                         "(batch, classes) logits); %s outputs %s for a batch of %d" %
                         (name, out.shape, batch))
    y = mx.nd.array(rng.randint(0, out.shape[1], size=batch))
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 1e-4, 'momentum': 0.9})

    def step():
        with mx.autograd.record():
            out = net(x)
            out = out[0] if isinstance(out, (list, tuple)) else out
            loss = loss_fn(out, y)
        loss.backward()
        trainer.step(batch)
        loss.wait_to_read()
        mx.nd.waitall()
    return step
