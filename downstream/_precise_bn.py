"""Precise BN: re-estimate BatchNorm running statistics after (short) training."""

__all__ = ['recalibrate_bn', 'take_inputs']


def recalibrate_bn(net, batches, ctx=None):
    """Re-estimate every BatchNorm's running mean / var as the exact average over ``batches``
    (an iterable of input batches) in training mode ("precise BN"); no weight changes.

    Short or fast-moving training leaves running statistics that lag the weights (momentum 0.9 keeps
    a long memory), and inference-mode outputs then differ badly from training-mode ones; this pass
    fixes that. The net's hybridization state is kept.
    """
    import mxnet as mx
    from mxnet.gluon import nn
    from asymmzoo.utils.blocks import iter_blocks, clear_cached_graphs, is_hybridized
    bns = [b for _, _, _, b in iter_blocks(net) if isinstance(b, nn.BatchNorm)]
    if not bns:
        return 0
    saved = [b._kwargs.get('momentum', 0.9) for b in bns]
    hybrid = is_hybridized(net)
    if hybrid:
        net.hybridize(False)
    clear_cached_graphs(net)
    n = 0
    try:
        for x in batches:
            for b in bns:  # running = running * k/(k+1) + batch / (k+1): the mean over batches
                b._kwargs['momentum'] = n / (n + 1.0)
            # MXNet updates BN running statistics in the backward pass: record and backprop a
            # dummy head gradient (parameter gradients are overwritten by the next real step)
            with mx.autograd.record():
                out = net(x.as_in_context(ctx) if ctx is not None else x)
            out.backward()
            n += 1
    finally:
        for b, mom in zip(bns, saved):
            b._kwargs['momentum'] = mom
        clear_cached_graphs(net)
        if hybrid:
            net.hybridize()
    return n


def take_inputs(loader, n, reshape=None):
    """The first ``n`` input batches of a (data, label) loader, optionally reshaped."""
    for i, (x, _) in enumerate(loader):
        if i >= n:
            break
        yield x.reshape(reshape(x.shape)) if reshape else x
