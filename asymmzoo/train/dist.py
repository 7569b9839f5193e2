"""Gradient / parameter synchronisation over an MXNet KVStore (``dist_sync``, ``dist_device_sync``,
or a local ``device`` store for several GPUs).

Why not ``gluon.Trainer(kvstore=dist_kv, update_on_kvstore=False)``: on mxnet 1.9.1 its lazy
``broadcast`` of the initial parameters races on a ps-lite job (measured here: 1 run in 3 on 127.0.0.1
leaves one worker with its own initial weights, so the workers train different models). Explicit
``init`` / ``push`` / ``pull`` calls are ordered by MXNet's engine and always agree, so the Trainer is
kept local (it owns the optimizer state, which can then be saved and resumed) and this class does
the all-reduce: gradients are summed over devices and workers, every worker applies the same update.
BN running statistics are not gradients; :meth:`average_aux` averages them so that every worker
ends with identical parameters.
"""

__all__ = ['KVSync', 'GRAD_KEY_BASE', 'PARAM_KEY_BASE', 'AUX_KEY_BASE']

GRAD_KEY_BASE = 0
AUX_KEY_BASE = 1000000
PARAM_KEY_BASE = 2000000


class KVSync(object):
    def __init__(self, kv, net, ctx):
        self.kv = kv
        self.ctx = list(ctx)
        self.params = [p for _, p in sorted(net.collect_params().items())]
        self.trainable = [p for p in self.params if p.grad_req != 'null']
        self.aux = [p for p in self.params if p.grad_req == 'null']
        self._grad_ready = False
        self._aux_ready = False

    @property
    def num_workers(self):
        return self.kv.num_workers if 'dist' in self.kv.type else 1

    def broadcast_params(self):
        """Every worker takes worker 0's parameters (trainable and BN statistics)."""
        for i, p in enumerate(self.params):
            key = PARAM_KEY_BASE + i
            self.kv.init(key, p.data(self.ctx[0]))
            self.kv.pull(key, out=p.list_data(), priority=-i)
        for p in self.params:
            p.data(self.ctx[0]).wait_to_read()

    def allreduce_grads(self):
        """Sum each gradient over devices and workers, in place on every device."""
        if not self._grad_ready:
            for i, p in enumerate(self.trainable):
                self.kv.init(GRAD_KEY_BASE + i, p.grad(self.ctx[0]).zeros_like())
            self._grad_ready = True
        for i, p in enumerate(self.trainable):
            self.kv.push(GRAD_KEY_BASE + i, p.list_grad(), priority=-i)
            self.kv.pull(GRAD_KEY_BASE + i, out=p.list_grad(), priority=-i)

    def average_aux(self):
        """Average BN running statistics over devices and workers."""
        if not self.aux:
            return
        if not self._aux_ready:
            for i, p in enumerate(self.aux):
                self.kv.init(AUX_KEY_BASE + i, p.data(self.ctx[0]))
            self._aux_ready = True
        n = float(self.num_workers * len(self.ctx))
        for i, p in enumerate(self.aux):
            self.kv.push(AUX_KEY_BASE + i, p.list_data(), priority=-i)
            self.kv.pull(AUX_KEY_BASE + i, out=p.list_data(), priority=-i)
        for p in self.aux:
            for d in p.list_data():
                d[:] = d / n
