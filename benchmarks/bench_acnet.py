#!/usr/bin/env python
"""ACNet latency: base model vs ACB train form vs deployed, batch 1 and 32, hybridized.

All three forms of each model are built first and then timed round-robin in one process (every round
runs each form ``--iters`` times), so background load hits them alike; the table reports the median
over rounds of the per-forward time and the median of the per-round deployed / base ratios (with their
spread), the round order alternating so that drifting load favours neither form. Target: deployed
within +-3% of base -- the two run the very same ops on the same shapes, so on a quiet machine the
ratio is 1 up to timing noise; on a loaded one the spread column shows how much noise there is.

    python benchmarks/bench_acnet.py                                  # cifar_resnet56_v1, resnet18_v1
    python benchmarks/bench_acnet.py --models cifar_quick asymmnet_large_1.0 --batches 1 32 --rounds 7

Not a test: it prints a markdown table and exits 0.
"""
import argparse
import time

import mxnet as mx
import numpy as np

import asymmzoo
from asymmzoo.utils import count_params


def build(base, rng):
    shape = tuple(getattr(asymmzoo.get_model(base), 'default_input_shape', (1, 3, 224, 224)))[1:]
    nets = {}
    mx.random.seed(0)
    nets['base'] = asymmzoo.get_model(base)
    nets['acb'] = asymmzoo.get_model(base + '_acb')
    dep = asymmzoo.get_model(base + '_acb')
    for n in (nets['base'], nets['acb'], dep):
        n.initialize(mx.init.Xavier())
        n(mx.nd.zeros((1,) + shape))
    # give the ACB form non-trivial BN statistics, then deploy a copy holding the same weights
    for p in nets['acb'].collect_params().values():
        if p.name.endswith('running_var'):
            p.set_data(mx.nd.array(rng.uniform(0.5, 2, p.shape)))
    for (k, p), (k2, p2) in zip(sorted(nets['acb']._collect_params_with_prefix().items()),
                                sorted(dep._collect_params_with_prefix().items())):
        p2.set_data(p.data())
    nets['deployed'] = asymmzoo.deploy(dep, input_shape=(2,) + shape)
    for n in nets.values():
        n.hybridize(static_alloc=True, static_shape=True)
    return nets, shape


def time_forward(net, x, iters):
    with mx.autograd.predict_mode():
        net(x).wait_to_read()
        t = time.perf_counter()
        for _ in range(iters):
            out = net(x)
        out.wait_to_read()
    return (time.perf_counter() - t) / iters * 1e3


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--models', nargs='+', default=['cifar_resnet56_v1', 'resnet18_v1'])
    ap.add_argument('--batches', type=int, nargs='+', default=[1, 32])
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--iters', type=int, default=0, help='forwards per round (default: by size)')
    args = ap.parse_args(argv)
    rng = np.random.RandomState(0)
    rows = []
    for base in args.models:
        nets, shape = build(base, rng)
        params = {k: count_params(v) for k, v in nets.items()}
        for b in args.batches:
            x = mx.nd.array(rng.standard_normal((b,) + shape))
            iters = args.iters or max(2, int(64 // b) if shape[-1] <= 64 else int(16 // b))
            for n in nets.values():  # warm up: allocations, oneDNN primitive caches
                time_forward(n, x, 2)
            times = {k: [] for k in nets}
            order = ['base', 'deployed', 'acb']  # base and deployed back to back
            for r in range(args.rounds):
                for k in (order if r % 2 == 0 else order[::-1]):
                    times[k].append(time_forward(nets[k], x, iters))
            med = {k: float(np.median(v)) for k, v in times.items()}
            ratios = np.array(times['deployed']) / np.array(times['base'])
            rows.append((base, b, med['base'], med['acb'], med['deployed'], float(np.median(ratios)),
                         float(ratios.min()), float(ratios.max()), params['base'], params['acb'],
                         params['deployed']))
            print('%s batch %d done' % (base, b), flush=True)
    print('\n| model | batch | base ms | ACB (train form) ms | deployed ms | deployed/base (median of rounds) | per-round range | params base / ACB / deployed |')
    print('|---|---:|---:|---:|---:|---:|---|---|')
    for r in rows:
        print('| %s | %d | %.2f | %.2f | %.2f | %.3f | %.2f-%.2f | %s / %s / %s |'
              % (r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], '{:,}'.format(r[8]),
                 '{:,}'.format(r[9]), '{:,}'.format(r[10])))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
