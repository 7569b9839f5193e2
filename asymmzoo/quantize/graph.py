"""A network's symbol graph as the quantizer sees it (its nodes, in order) and its first and last
layers."""
import mxnet as mx


def _graph(net):
    import json
    sym = net(mx.sym.var('data'))
    sym = sym[0] if isinstance(sym, (list, tuple)) else sym
    return sym, json.loads(sym.tojson())['nodes']


def first_last_layers(net):
    """Names of the first and last convolution / dense layers of ``net``'s symbol graph."""
    nodes = _graph(net)[1]
    layers = [n['name'] for n in nodes if n['op'] in ('Convolution', 'FullyConnected')]
    return [layers[0], layers[-1]] if layers else []
