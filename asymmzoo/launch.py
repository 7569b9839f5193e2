"""Start MXNet's own parameter-server job (ps-lite): 1 scheduler, S servers, W workers.

Locally (loopback only) :func:`launch_local` starts every process with the ``DMLC_*`` environment
(``DMLC_ROLE`` scheduler / server / worker, ``DMLC_PS_ROOT_URI=127.0.0.1``, a free
``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_WORKER``, ``DMLC_NUM_SERVER``), waits for the workers under a
timeout, and always cleans up: a failing or hanging process takes the whole job down, and every
process group it started is terminated before returning. For a cluster :func:`cluster_commands`
prints the command to run on each host instead. Scheduler and servers run ``python -c 'import
mxnet'`` (importing mxnet with ``DMLC_ROLE`` server / scheduler enters MXNet's server loop); workers
run your command, which creates ``mx.kv.create('dist_sync')``.
"""
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

__all__ = ['free_port', 'dmlc_env', 'launch_local', 'cluster_commands', 'LaunchError']

SERVER_CMD = [sys.executable, '-c', 'import mxnet']


class LaunchError(RuntimeError):
    pass


def free_port(host='127.0.0.1'):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def dmlc_env(role, num_workers, num_servers, root_uri, root_port, node_host=None):
    env = {'DMLC_ROLE': role, 'DMLC_PS_ROOT_URI': str(root_uri), 'DMLC_PS_ROOT_PORT': str(root_port),
           'DMLC_NUM_WORKER': str(num_workers), 'DMLC_NUM_SERVER': str(num_servers)}
    if node_host:
        env['DMLC_NODE_HOST'] = str(node_host)
    return env


def _kill_group(proc, sig):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _stop_all(procs, grace=5.0):
    for _, p in procs:
        _kill_group(p, signal.SIGTERM)
    deadline = time.time() + grace
    for _, p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            _kill_group(p, signal.SIGKILL)
            p.wait(5)


def launch_local(cmd, num_workers, num_servers=1, port=None, timeout=None, log_dir=None, env=None,
                 server_grace=30.0, verbose=True):
    """Run ``cmd`` (a list) as ``num_workers`` workers of a local ps-lite job; returns the workers'
    exit codes. Raises :class:`LaunchError` if a worker fails or the job exceeds ``timeout`` seconds
    (every started process is stopped first)."""
    if num_workers < 1 or num_servers < 1:
        raise ValueError("need at least 1 worker and 1 server, got -n %d -s %d" % (num_workers, num_servers))
    if not cmd:
        raise ValueError("no worker command given: asymmzoo launch -n 2 -s 1 -- python train_imagenet.py ...")
    port = port or free_port()
    base = dict(os.environ)
    base.update(env or {})
    if log_dir:
        os.makedirs(log_dir, exist_ok=True)
    procs, files = [], []

    def start(role, i, argv):
        e = dict(base)
        e.update(dmlc_env(role, num_workers, num_servers, '127.0.0.1', port, node_host='127.0.0.1'))
        out = None
        if log_dir:
            f = open(os.path.join(log_dir, '%s%s.log' % (role, '' if role == 'scheduler' else i)), 'wb')
            files.append(f)
            out = f
        p = subprocess.Popen(argv, env=e, stdout=out, stderr=subprocess.STDOUT if out else None,
                             start_new_session=True)
        procs.append(('%s%s' % (role, '' if role == 'scheduler' else i), p))
        return p

    deadline = time.time() + timeout if timeout else None
    try:
        start('scheduler', 0, SERVER_CMD)
        for i in range(num_servers):
            start('server', i, SERVER_CMD)
        workers = [start('worker', i, list(cmd)) for i in range(num_workers)]
        if verbose:
            print("[launch] scheduler + %d server(s) + %d worker(s) on 127.0.0.1:%d%s"
                  % (num_servers, num_workers, port, (", logs in %s" % log_dir) if log_dir else ''),
                  file=sys.stderr)
        while True:
            codes = [w.poll() for w in workers]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                raise LaunchError("worker %d exited with code %d; stopped the job%s"
                                  % (failed[0][0], failed[0][1],
                                     (" (see %s)" % log_dir) if log_dir else ''))
            dead = [name for name, p in procs if not name.startswith('worker') and p.poll() not in (None, 0)]
            if dead and any(c is None for c in codes):
                raise LaunchError("%s died while workers were running; stopped the job" % dead[0])
            if all(c == 0 for c in codes):
                break
            if deadline and time.time() > deadline:
                raise LaunchError("the job did not finish within %gs; stopped every process" % timeout)
            time.sleep(0.1)
        # workers are done: servers and scheduler exit on their own shortly
        end = time.time() + server_grace
        for name, p in procs:
            try:
                p.wait(max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                pass
        return codes
    finally:
        _stop_all(procs)
        for f in files:
            f.close()


def cluster_commands(cmd, hosts, num_workers, num_servers=1, port=9091):
    """The shell command to run on each host: ``[(host, role, command_line)]``. The scheduler and the
    root URI are the first host; servers and workers go round-robin over ``hosts``."""
    if not hosts:
        raise ValueError("no hosts given")
    root = hosts[0]
    out = []

    def line(role, host, argv):
        env = dmlc_env(role, num_workers, num_servers, root, port, node_host=host)
        return (host, role, ' '.join('%s=%s' % (k, shlex.quote(v)) for k, v in env.items()) + ' '
                + ' '.join(shlex.quote(a) for a in argv))

    server_argv = ['python', '-c', 'import mxnet']
    out.append(line('scheduler', root, server_argv))
    for i in range(num_servers):
        out.append(line('server', hosts[i % len(hosts)], server_argv))
    for i in range(num_workers):
        out.append(line('worker', hosts[i % len(hosts)], list(cmd)))
    return out
