"""Model registry: ``register_model`` / ``get_model`` / ``list_models``.

Every registered name is also injected into GluonCV's model-zoo table, so GluonCV code that builds
networks by name (``gluoncv.model_zoo.get_model('asymmnet_large_1.0')``, its pose / CenterNet builders)
finds ours after ``import asymmzoo``.
"""
import difflib
import fnmatch
import functools
import re

__all__ = ['register_model', 'register_builder', 'get_model', 'list_models', 'is_registered']

_REGISTRY = {}


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


def register_builder(name, builder, **fixed_kwargs):
    """Register ``builder(**kwargs)`` under ``name`` (lowercase), with ``fixed_kwargs`` bound.

    Refuses a name that is already registered.
    """
    key = name.lower()
    if key in _REGISTRY:
        raise ValueError("model name %r is already registered (by %s); pick another name"
                         % (key, getattr(_REGISTRY[key], '__qualname__', _REGISTRY[key])))
    fn = functools.partial(builder, **fixed_kwargs) if fixed_kwargs else builder
    _REGISTRY[key] = fn
    _publish_to_gluoncv(key)
    return builder


def register_model(fn=None, *, name=None, **fixed_kwargs):
    """Decorator: ``@register_model`` (name = function name) or ``@register_model(name='x', k=v)``."""
    if fn is None:
        return lambda f: register_model(f, name=name, **fixed_kwargs)
    register_builder(name or fn.__name__, fn, **fixed_kwargs)
    return fn


def is_registered(name):
    return name.lower() in _REGISTRY


def list_models(pattern='*'):
    """Registered names matching an fnmatch ``pattern`` (case-insensitive), naturally sorted."""
    if not isinstance(pattern, str):
        raise TypeError("list_models takes an fnmatch pattern string such as 'asymmnet_*', got %r"
                        % (pattern,))
    pattern = pattern.lower()
    return sorted((n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern)), key=_natural_key)


def _unknown(name):
    close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.6)
    if not close:  # fall back on a shared prefix, e.g. 'asymmnet_large_2.0'
        stem = name.rsplit('_', 1)[0]
        close = [n for n in list_models(stem + '*')][:5]
    hint = ("closest names: " + ", ".join(close)) if close else \
        "run `asymmzoo summary` or asymmzoo.list_models() to see all %d names" % len(_REGISTRY)
    return ValueError("unknown model %r; %s" % (name, hint))


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


def get_model(name, **kwargs):
    """Build a registered model by (case-insensitive) name.

    Common kwargs: ``classes``, ``pretrained`` (False, True = the local store, or a path to a
    ``.params`` file), ``ctx`` (one device or a list, as GluonCV's scripts pass it: where the
    pretrained weights go, and where builders that return an initialised network put it),
    ``root`` (store folder), ``norm_layer``, ``norm_kwargs``; family specific ones (``r``,
    ``dropout``, ``last_gamma``, ...) pass through to the builder, and one it does not take is
    refused with a ``TypeError`` naming the model.
    Like GluonCV, a model built without ``pretrained`` comes back uninitialised: call ``initialize``
    (the action-recognition builders, like GluonCV's, return it initialised on ``ctx``).
    """
    import mxnet as mx
    if not isinstance(name, str):
        raise TypeError("model name must be a str, got %r; see asymmzoo.list_models()" % (name,))
    key = name.lower()
    if key not in _REGISTRY:
        raise _unknown(key)
    _check_common_kwargs(key, kwargs)
    pretrained = kwargs.pop('pretrained', False)
    ctx = kwargs.pop('ctx', None)
    root = kwargs.pop('root', None)
    builder = _REGISTRY[key]
    if ctx is not None and 'ctx' in _builder_params(builder):
        kwargs['ctx'] = ctx
    ctx = ctx if ctx is not None else mx.cpu()
    try:
        net = builder(**kwargs)
    except TypeError as e:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if not bad or bad.group(1) not in kwargs:   # not the caller's keyword: a builder's own bug
            raise
        raise TypeError("%s does not take the keyword argument %r: leave it out (%s)"
                        % (key, bad.group(1), str(e).splitlines()[0])) from None
    if not hasattr(net, 'name_in_zoo'):
        try:
            net.name_in_zoo = key
        except AttributeError:  # pragma: no cover
            pass
    if pretrained:
        from .store import load_pretrained
        load_pretrained(net, key, pretrained, ctx=ctx, root=root)
    return net
