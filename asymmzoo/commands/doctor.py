"""`asymmzoo doctor`: what a bug report needs, like ``python -m torch.utils.collect_env``.

Python and package versions, MXNet's build features, the CPU's vector extensions, the instruction set
oneDNN dispatches to and onnxruntime's blocked-layout width, thread settings and the weight store.
"""
import os
import platform
import subprocess
import sys

# CPU flags that decide which kernels oneDNN and onnxruntime pick
_CPU_FLAGS = ('sse4_2', 'avx', 'avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512dq',
              'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile', 'amx_int8', 'amx_bf16', 'asimd',
              'sve')
_THREAD_VARS = ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS',
                'MXNET_CPU_WORKER_NTHREADS', 'MXNET_ENGINE_TYPE', 'DNNL_MAX_CPU_ISA',
                'MKLDNN_MAX_CPU_ISA', 'MXNET_MKLDNN_ENABLED', 'MXNET_HOME', 'MXNET_GLUON_REPO')

_ONEDNN_PROBE = ("import mxnet as mx\n"
                 "x = mx.nd.ones((1, 16, 8, 8)); w = mx.nd.ones((16, 16, 3, 3))\n"
                 "mx.nd.Convolution(x, w, kernel=(3, 3), num_filter=16, no_bias=True).wait_to_read()\n")


def cpu_info():
    """``(model name, sorted flags of interest)`` from /proc/cpuinfo (empty where it is absent)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                key, _, value = line.partition(':')
                key = key.strip()
                if key == 'model name' and model in ('', platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ('flags', 'Features'):
                    flags.update(value.split())
    except OSError:
        pass
    return model, [f for f in _CPU_FLAGS if f in flags]


def onednn_isa(timeout=60):
    """The ISA line oneDNN prints when it runs a convolution here (``DNNL_VERBOSE``), and its
    version, from a subprocess; ``(None, reason)`` if it cannot be read."""
    env = dict(os.environ, DNNL_VERBOSE='1', MKLDNN_VERBOSE='1')
    try:
        out = subprocess.run([sys.executable, '-c', _ONEDNN_PROBE], env=env, capture_output=True,
                             text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, 'probe failed: %s' % e
    isa = version = None
    for line in (out.stdout + out.stderr).splitlines():
        parts = line.split(',')
        if len(parts) >= 3 and parts[0] in ('dnnl_verbose', 'mkldnn_verbose') and parts[1] == 'info':
            if parts[2].startswith('oneDNN') or parts[2].startswith('DNNL'):
                version = parts[2]
            elif parts[2] == 'cpu' and len(parts) > 3 and parts[3].startswith('isa:'):
                isa = ','.join(parts[3:])[4:]
    if isa is None:
        return None, 'oneDNN printed no ISA (exit %d)' % out.returncode
    return isa, version


def _version(mod):
    try:
        m = __import__(mod)
    except Exception as e:   # a broken install is exactly what the report should show
        return 'not importable (%s)' % type(e).__name__
    return getattr(m, '__version__', '?')


def collect():
    """The report as an ordered list of ``(key, value)``."""
    rows = [('asymmzoo', _version('asymmzoo')),
            ('python', '%s (%s)' % (platform.python_version(), sys.executable)),
            ('platform', platform.platform())]
    for mod in ('mxnet', 'numpy', 'gluoncv', 'onnx', 'onnxruntime', 'cv2', 'scipy'):
        rows.append((mod, _version(mod)))
    try:
        import mxnet as mx
        feats = mx.runtime.Features()
        on = [k for k in sorted(feats.keys()) if feats.is_enabled(k)]
        rows.append(('mxnet features', ' '.join(on)))
    except Exception as e:
        rows.append(('mxnet features', 'unavailable (%s)' % e))
    model, flags = cpu_info()
    rows.append(('cpu', model))
    rows.append(('cpu flags', ' '.join(flags) or 'none of interest'))
    isa, version = onednn_isa()
    rows.append(('oneDNN', '%s, ISA: %s' % (version, isa) if isa else version))
    try:
        from ..export.nchwc import nchwc_block_size
        b = nchwc_block_size()
        rows.append(('onnxruntime NCHWc block', '%d channels' % b if b > 1 else 'not used'))
    except Exception as e:
        rows.append(('onnxruntime NCHWc block', 'unavailable (%s)' % type(e).__name__))
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        ncpu = os.cpu_count()
    rows.append(('cores usable', '%s of %s' % (ncpu, os.cpu_count())))
    for var in _THREAD_VARS:
        rows.append((var, os.environ.get(var, '(unset)')))
    from ..store import store_root
    root = store_root()
    above = root
    while not os.path.exists(above) and os.path.dirname(above) != above:
        above = os.path.dirname(above)
    if os.path.exists(root) and not os.path.isdir(root):
        rows.append(('weight store', '%s (not a folder: check MXNET_HOME)' % root))
    elif not os.path.isdir(above):
        rows.append(('weight store', '%s (cannot be made: %s is a file; check MXNET_HOME)' % (root, above)))
    elif not os.path.isdir(root):
        rows.append(('weight store', '%s (does not exist yet)' % root))
    else:
        try:
            n = len([f for f in os.listdir(root) if f.endswith('.params')])
            rows.append(('weight store', '%s (%d .params file(s))' % (root, n)))
        except OSError as e:
            rows.append(('weight store', '%s (unreadable: %s)' % (root, e.strerror or e)))
    return rows


def _doctor(args):
    rows = collect()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print('%s  %s' % (k.ljust(width), v))
    return 0


def add_commands(sub):
    p = sub.add_parser('doctor', help='print the facts a bug report needs (versions, CPU, oneDNN '
                       'ISA, threads, store)')
    p.set_defaults(func=_doctor)
