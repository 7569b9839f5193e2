"""Model registry: one :class:`ModelSpec` per name; ``get_model`` / ``list_models`` / ``get_spec``.

A spec says what a name is without building it: the builder and its fixed keyword arguments, the
``task`` (``classification``, ``detection``, ``pose``, ``action``, ``face``), the ``family``
(``asymmnet``, ``mobilenetv3``, ``acnet``, ``cifar``, ``rotateconv``, ``yolo3``, ...), the ``base``
model it is derived from (an ``_acb`` / ``_rot`` twin's base, a head's backbone), the default input
shape of one item, the frames per item (video models), the store file of its weights and ``source``,
the weights table's row when its weights are published (``asymmzoo/models/sources.py``; attached with
:func:`set_weight_source`, shown by :func:`weight_sources`).

Heads are registered once as a :class:`ModelTemplate` (``yolo3_{backbone}_{dataset}``): a name is
parsed on lookup, and ``list_models`` lists every expansion.

Every registered name is also injected into GluonCV's model-zoo table, so GluonCV code that builds
networks by name (``gluoncv.model_zoo.get_model('asymmnet_large_1.0')``, its pose / CenterNet builders)
finds ours after ``import asymmzoo``.
"""
import difflib
import fnmatch
import functools
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, Optional, Tuple

__all__ = ['ModelSpec', 'ModelTemplate', 'UnknownModelError', 'TASKS', 'register', 'register_template',
           'register_model', 'register_builder', 'unregister', 'get_model', 'get_spec', 'list_models',
           'is_registered', 'set_weight_source', 'weight_sources', 'set_pretrained_init', 'preprocess_of']

TASKS = ('classification', 'detection', 'pose', 'action', 'face')


class UnknownModelError(ValueError):
    """A name that is not registered; the message lists the closest registered names."""


@dataclass(frozen=True)
class ModelSpec:
    """What a registered name is. ``build(**kwargs)`` calls the builder with the fixed kwargs."""
    name: str
    builder: Callable
    kwargs: Dict[str, Any] = field(default_factory=dict)
    task: str = 'classification'
    family: str = ''
    base: Optional[str] = None
    input_shape: Tuple[int, ...] = (1, 3, 224, 224)
    min_input_shape: Optional[Tuple[int, ...]] = None
    frames: int = 1
    weights: Optional[str] = None
    source: Any = None    # the weights table's row (asymmzoo.download.WeightSource), if published

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError("model %s: task must be one of %s, got %r" % (self.name, TASKS, self.task))

    @property
    def min_shape(self):
        """The smallest batch the tests and export checks run: ``min_input_shape``, else two items
        of ``input_shape``."""
        return tuple(self.min_input_shape or (2,) + tuple(self.input_shape[1:]))

    @property
    def weights_file(self):
        """File name of this model's weights in the store (``<name>.params`` unless set)."""
        return self.weights or self.name + '.params'

    def build(self, **kwargs):
        return self.builder(**dict(self.kwargs, **kwargs))


@dataclass(frozen=True)
class ModelTemplate:
    """Names made of a backbone and fixed choices, e.g. ``yolo3_{backbone}_{dataset}`` with
    ``choices={'dataset': ('voc', 'coco', 'custom')}``: each field is passed to the builder by its
    name; ``backbones()`` lists the backbone names the template takes."""
    pattern: str
    builder: Callable
    backbones: Callable
    choices: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    task: str = 'classification'
    family: str = ''
    input_shape: Tuple[int, ...] = (1, 3, 224, 224)
    min_input_shape: Optional[Tuple[int, ...]] = None
    frames: int = 1

    def _fields(self):
        return re.findall(r'\{(\w+)\}', self.pattern)

    def names(self):
        import itertools
        fields = self._fields()
        pools = [self.backbones() if f == 'backbone' else self.choices[f] for f in fields]
        return [self.pattern.format(**dict(zip(fields, combo))) for combo in itertools.product(*pools)]

    def match(self, key):
        """The :class:`ModelSpec` of ``key`` if this template makes it, else None."""
        regex = re.escape(self.pattern)
        for f in self._fields():
            alt = '.+?' if f == 'backbone' else '|'.join(re.escape(c) for c in self.choices[f])
            regex = regex.replace(re.escape('{%s}' % f), '(?P<%s>%s)' % (f, alt))
        m = re.fullmatch(regex, key)
        if not m or ('backbone' in m.groupdict() and m.group('backbone') not in set(self.backbones())):
            return None
        kw = m.groupdict()
        return ModelSpec(key, self.builder, kw, task=self.task, family=self.family,
                         base=kw.get('backbone'), input_shape=self.input_shape,
                         min_input_shape=self.min_input_shape, frames=self.frames)


_SPECS = {}        # name -> ModelSpec
_TEMPLATES = []    # ModelTemplate, in registration order
_SOURCES = {}      # name -> the weights table's row (asymmzoo/models/sources.py)
_INITS = {}        # name -> init(net, name, ctx=, root=, kwargs=): pretrained=True from other weights


def _natural_key(name):
    return [float(t) if re.fullmatch(r'\d+(\.\d+)?', t) else t
            for t in re.split(r'(\d+(?:\.\d+)?)', name)]


def _publish_to_gluoncv(name):
    try:
        from gluoncv.model_zoo import model_zoo as _gzoo
    except ImportError:  # pragma: no cover - gluoncv is a hard dependency, but keep import light
        return
    existing = _gzoo._models.get(name)
    if existing is not None and not getattr(existing, '_asymmzoo', False):
        return  # GluonCV's own model of that name (e.g. resnet18_v1) stays GluonCV's
    fn = functools.partial(get_model, name)
    fn._asymmzoo = True
    _gzoo._models[name] = fn


def _withdraw_from_gluoncv(name):
    try:
        from gluoncv.model_zoo import model_zoo as _gzoo
    except ImportError:  # pragma: no cover
        return
    if getattr(_gzoo._models.get(name), '_asymmzoo', False):
        del _gzoo._models[name]


def register(spec):
    """Register a :class:`ModelSpec` (its name lowercased); refuses a name already registered."""
    key = spec.name.lower()
    if is_registered(key):
        old = get_spec(key)
        raise ValueError("model name %r is already registered (by %s); pick another name"
                         % (key, getattr(old.builder, '__qualname__', old.builder)))
    spec = replace(spec, name=key)
    _SPECS[key] = spec
    _publish_to_gluoncv(key)
    return spec


def register_template(template):
    """Register a :class:`ModelTemplate`; its names must not clash with registered ones."""
    names = template.names()
    clash = [n for n in names if is_registered(n)]
    if clash:
        raise ValueError("template %s makes names already registered: %s" % (template.pattern, clash[:3]))
    _TEMPLATES.append(template)
    for n in names:
        _publish_to_gluoncv(n)
    return template


def register_builder(name, builder, meta=None, **fixed_kwargs):
    """Register ``builder(**kwargs)`` under ``name`` with ``fixed_kwargs`` bound; ``meta`` holds the
    spec's other fields (``task``, ``family``, ``base``, ``input_shape``, ``frames``, ``weights``)."""
    register(ModelSpec(name, builder, dict(fixed_kwargs), **(meta or {})))
    return builder


def register_model(fn=None, *, name=None, meta=None, **fixed_kwargs):
    """Decorator: ``@register_model`` (name = function name) or ``@register_model(name='x', k=v)``."""
    if fn is None:
        return lambda f: register_model(f, name=name, meta=meta, **fixed_kwargs)
    register_builder(name or fn.__name__, fn, meta=meta, **fixed_kwargs)
    return fn


def set_weight_source(name, source):
    """Attach the weights table's row (a :class:`asymmzoo.download.WeightSource`, or None to remove
    it) to a registered name (a template's too): ``get_model(name, pretrained=True)`` then downloads
    it when the store lacks it. Returns the previous row."""
    key = name.lower()
    if _lookup(key) is None:
        raise unknown_model(key)
    old = _SOURCES.get(key)
    if source is None:
        _SOURCES.pop(key, None)
    else:
        _SOURCES[key] = source
    return old


def preprocess_of(name, inherit=True):
    """The preprocessing (``asymmzoo.download.Preprocess``: mean / std in pixel units, input size,
    crop ratio) of ``name``'s published weights; with ``inherit``, else that of the model it starts
    from (an ``_acb`` twin's base, a head's backbone); None when no weights of its line are published."""
    spec, seen = get_spec(name), set()
    while spec is not None:
        if spec.source is not None:
            return spec.source.preprocess
        if not inherit or not spec.base or spec.base in seen:
            return None
        seen.add(spec.base)
        spec = get_spec(spec.base)
    return None


def set_pretrained_init(name, init):
    """``get_model(name, pretrained=True)`` with no store file of ``name`` itself (and no published
    one) calls ``init(net, name, ctx=, root=, kwargs=)`` instead, e.g. an ``_acb`` twin starting
    from its base's weights (:mod:`asymmzoo.models.init_from_base`)."""
    key = name.lower()
    if _lookup(key) is None:
        raise unknown_model(key)
    _INITS[key] = init


def weight_sources(pattern='*'):
    """``{name: WeightSource}`` of the registered names matching ``pattern`` (fnmatch) that have
    published weights, naturally sorted."""
    pattern = pattern.lower()
    return {n: _SOURCES[n] for n in sorted(_SOURCES, key=_natural_key) if fnmatch.fnmatchcase(n, pattern)}


def unregister(name):
    """Remove a name registered with :func:`register` (for plug-ins and tests), with its weights row
    and pretrained initialiser: a model registered again under that name starts clean."""
    key = name.lower()
    if key not in _SPECS:
        raise unknown_model(key)
    del _SPECS[key]
    _SOURCES.pop(key, None)
    _INITS.pop(key, None)
    _withdraw_from_gluoncv(key)


def _lookup(key):
    spec = _SPECS.get(key)
    if spec is None:
        for t in _TEMPLATES:
            spec = t.match(key)
            if spec is not None:
                break
    if spec is not None and key in _SOURCES:
        spec = replace(spec, source=_SOURCES[key])
    return spec


def is_registered(name):
    return isinstance(name, str) and _lookup(name.lower()) is not None


def _all_names():
    names = set(_SPECS)
    for t in _TEMPLATES:
        names.update(t.names())
    return names


def list_models(pattern='*', task=None, family=None):
    """Registered names matching an fnmatch ``pattern`` (case-insensitive), naturally sorted; ``task``
    and ``family`` (a name or a tuple of names) select by the specs."""
    if not isinstance(pattern, str):
        raise TypeError("list_models takes an fnmatch pattern string such as 'asymmnet_*', got %r"
                        % (pattern,))
    for what, value, known in (('task', task, TASKS), ('family', family, None)):
        values = (value,) if isinstance(value, str) else value
        if value is not None and known and not set(values) <= set(known):
            raise ValueError("%s must be one of %s, got %r" % (what, ', '.join(known), value))
    pattern = pattern.lower()
    names = [n for n in _all_names() if fnmatch.fnmatchcase(n, pattern)]
    if task is not None or family is not None:
        tasks = (task,) if isinstance(task, str) else task
        families = (family,) if isinstance(family, str) else family
        specs = [get_spec(n) for n in names]
        names = [s.name for s in specs if (tasks is None or s.task in tasks)
                 and (families is None or s.family in families)]
    return sorted(names, key=_natural_key)


def unknown_model(name, what='model'):
    """The :class:`UnknownModelError` for ``name``, listing the closest registered names."""
    names = _all_names()
    close = difflib.get_close_matches(name, list(names), n=5, cutoff=0.6)
    if not close:  # fall back on a shared prefix, e.g. 'asymmnet_large_2.0'
        stem = name.rsplit('_', 1)[0]
        close = [n for n in list_models(stem + '*')][:5]
    hint = ("closest names: " + ", ".join(close)) if close else \
        "run `asymmzoo summary` or asymmzoo.list_models() to see all %d names" % len(names)
    return UnknownModelError("unknown %s %r; %s" % (what, name, hint))


def get_spec(name):
    """The :class:`ModelSpec` of a registered name (case-insensitive)."""
    if not isinstance(name, str):
        raise TypeError("model name must be a str, got %r; see asymmzoo.list_models()" % (name,))
    spec = _lookup(name.lower())
    if spec is None:
        raise unknown_model(name.lower())
    return spec


def _builder_params(fn):
    """Names of the keyword parameters ``fn`` (a builder or a functools.partial of one) declares."""
    import inspect
    while isinstance(fn, functools.partial):
        fn = fn.func
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return set()


def _check_common_kwargs(key, kwargs):
    """The kwargs every family shares, checked before any builder runs."""
    import numbers
    classes = kwargs.get('classes')
    if isinstance(classes, numbers.Number) and (
            isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or classes < 1):
        raise ValueError("%s: classes must be a positive integer (or, for detectors, a list of class "
                         "names), got %r" % (key, classes))
    dropout = kwargs.get('dropout')
    if dropout is not None and not (isinstance(dropout, numbers.Real) and not isinstance(dropout, bool)
                                    and 0 <= dropout < 1):
        raise ValueError("%s: dropout must be a probability in [0, 1), got %r" % (key, dropout))
    bk = kwargs.get('backbone_kwargs')
    if bk is not None and not isinstance(bk, dict):
        raise TypeError("%s: backbone_kwargs must be a dict of the backbone's keyword arguments "
                        "(e.g. dict(r=2)), got %r" % (key, bk))


def get_model(name, **kwargs):
    """Build a registered model by (case-insensitive) name.

    Common kwargs: ``classes``, ``pretrained`` (False, True = the local store, downloading and
    verifying the published weights first when the weights table has them, or a path to a
    ``.params`` file), ``ctx`` (one device or a list, as GluonCV's scripts pass it: where the
    pretrained weights go, and where builders that return an initialised network put it),
    ``root`` (store folder), ``norm_layer``, ``norm_kwargs``; family specific ones (``r``,
    ``dropout``, ``last_gamma``, ...) pass through to the builder, and one it does not take is
    refused with a ``TypeError`` naming the model. Heads take ``backbone_kwargs`` (a dict passed to
    their backbone, e.g. ``dict(r=2)``).
    Like GluonCV, a model built without ``pretrained`` comes back uninitialised: call ``initialize``
    (the action-recognition builders, like GluonCV's, return it initialised on ``ctx``).
    """
    import mxnet as mx
    spec = get_spec(name)
    key = spec.name
    _check_common_kwargs(key, kwargs)
    pretrained = kwargs.pop('pretrained', False)
    ctx = kwargs.pop('ctx', None)
    root = kwargs.pop('root', None)
    if ctx is not None and 'ctx' in _builder_params(spec.builder):
        kwargs['ctx'] = ctx
    ctx = ctx if ctx is not None else mx.cpu()
    try:
        net = spec.build(**kwargs)
    except TypeError as e:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if not bad or bad.group(1) not in kwargs:   # not the caller's keyword: a builder's own bug
            raise
        raise TypeError("%s does not take the keyword argument %r: leave it out (%s)"
                        % (key, bad.group(1), str(e).splitlines()[0])) from None
    for attr, value in (('name_in_zoo', key), ('default_input_shape', tuple(spec.input_shape)),
                        ('min_input_shape', spec.min_shape)):
        if getattr(net, attr, None) is None:    # what the network does not know about itself
            try:
                setattr(net, attr, value)
            except AttributeError:  # pragma: no cover
                pass
    if pretrained:
        from .store import _stored, load_pretrained
        init = _INITS.get(key)
        if pretrained is True and init is not None and spec.source is None and not _stored(key, root):
            init(net, key, ctx=ctx, root=root, kwargs=kwargs)
        else:
            load_pretrained(net, key, pretrained, ctx=ctx, root=root, source=spec.source)
        if pretrained is True:   # the store's (published) weights: their preprocessing travels with them
            try:
                net.weights_preprocess = preprocess_of(key)
            except AttributeError:  # pragma: no cover
                pass
    return net
