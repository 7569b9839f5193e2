"""Putting weights into the store, checked against the architecture of the model they are stored
under (``asymmzoo store add``); the published file of a model with a weights-table row (fetched
elsewhere, zipped or not) is recognised by its hash and converted like a download."""
import os
import shutil

from .download import source_matches, store_source_file
from .io import WeightsError, atomic_target, read_params, sha1_of, _misfit
from .registry import get_model, get_spec, is_registered, unknown_model
from .store import store_root

__all__ = ['add_to_store']


def _params_and_class_keys(name):
    """The parameters of model ``name`` by structural name, and the names of those whose shape
    depends on its class count (a classifier, a detector's prediction layers), found by building it
    for two class counts: weights fine-tuned for other classes still belong to the model."""
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
    if not os.path.isfile(path):
        raise FileNotFoundError("no such file: %s" % path)
    if not is_registered(name):
        raise WeightsError("cannot store weights under %s" % unknown_model(name.lower()))
    source = get_spec(name).source
    if source is not None and source_matches(path, source):   # the published file: convert it
        return store_source_file(path, name, source, store_root(root))
    # refuse what would not load before it enters the store: unreadable, NaN, another model's
    loaded = {k.split(':', 1)[-1]: v for k, v in read_params(path).items()}
    params, per_class = _params_and_class_keys(name)
    lines, _, _ = _misfit({k: p for k, p in params.items() if k not in per_class},
                          {k: v for k, v in loaded.items() if k not in per_class}, classifier_prefix=None)
    if lines:
        raise WeightsError("%s does not hold %s's weights:\n  %s\nstore it under the model it was saved "
                         "from" % (path, name, "\n  ".join(lines)))
    root = store_root(root)
    os.makedirs(root, exist_ok=True)
    dst = os.path.join(root, '%s-%s.params' % (name, sha1_of(path)[:8]))
    with atomic_target(dst) as tmp:
        shutil.copyfile(path, tmp)
    return dst
