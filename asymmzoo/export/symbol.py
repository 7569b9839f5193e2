"""MXNet symbol export: ``prefix-symbol.json`` / ``prefix-0000.params`` written from a hybridized
network (:func:`export_symbol`), loaded back as a Gluon ``SymbolBlock`` (:func:`load_symbol`)."""
import mxnet as mx

from .errors import ExportError
from .prepare import check_initialized, default_input_shape


def _hybrid_forward_once(net, shape):
    if not isinstance(net, mx.gluon.HybridBlock):
        raise ExportError("%s is not a HybridBlock; only hybridizable networks can be exported"
                          % type(net).__name__)
    net.hybridize(static_alloc=True, static_shape=True)
    with mx.autograd.predict_mode():
        return net(mx.nd.zeros(shape))


def export_symbol(net, prefix, input_shape=None, epoch=0):
    """Hybridize, run once and write ``prefix-symbol.json`` / ``prefix-%04d.params``.
    Returns the two paths. A network whose parameters were never initialised is refused."""
    from ..io import atomic_export
    from ..nn.concat import plain_concat
    from ..utils.blocks import check_block, check_input_shape
    check_block(net, 'export_symbol()')
    check_initialized(net, 'export_symbol')
    shape = check_input_shape(input_shape, 'export_symbol()') if input_shape is not None \
        else default_input_shape(net)
    with plain_concat(net):   # an exported graph runs inference only (see asymmzoo.nn.concat)
        _hybrid_forward_once(net, shape)
        return tuple(atomic_export(net, prefix, epoch=epoch))


def load_symbol(symbol_file, params_file, ctx=None):
    """Load exported symbol files back as a Gluon ``SymbolBlock`` (input name ``data``)."""
    ctx = ctx or mx.cpu()
    with_warnings = __import__('warnings')
    with with_warnings.catch_warnings():
        with_warnings.simplefilter('ignore')
        return mx.gluon.SymbolBlock.imports(symbol_file, ['data'], params_file, ctx=ctx)
