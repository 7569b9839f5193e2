"""Peak resident memory of a model, measured in a fresh process per model (a process-wide peak cannot
be split between models that share one process)."""
import json
import os
import subprocess
import sys

_RSS_PROBE = r"""
import json, sys
def vm(key):
    for line in open('/proc/self/status'):
        if line.startswith(key + ':'):
            return int(line.split()[1]) / 1024.0
import mxnet, asymmzoo
from asymmzoo.bench.runners import BenchRunner
base = vm('VmRSS')
open('/proc/self/clear_refs', 'w').write('5')   # reset the high-water mark to the current RSS
name, form, engine, batch, threads = json.loads(sys.argv[1])
r = BenchRunner(name, form, engine, (1, batch), threads=threads)
r.run(1); r.run(batch); r.run(batch)
print(json.dumps([base, vm('VmHWM')]))
"""


def peak_rss_mb(name, form='deployed', engine='mxnet', batch=32, threads=None, timeout=600):
    """Peak resident memory (MiB) of building ``name`` and running it at batch 1 and ``batch``, in a
    fresh process (Linux: /proc VmHWM, reset after the imports). Returns ``{'peak', 'after_import'}``
    (``peak`` includes the ~270 MiB of the imported libraries) or None where unmeasurable."""
    if not os.path.exists('/proc/self/clear_refs'):
        return None
    try:
        out = subprocess.run([sys.executable, '-c', _RSS_PROBE,
                              json.dumps([name, form, engine, int(batch), threads])],
                             capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
        base, peak = json.loads(out.stdout.strip().splitlines()[-1])
    except Exception:  # pragma: no cover - no /proc, crash, timeout
        return None
    return {'peak': peak, 'after_import': base}
