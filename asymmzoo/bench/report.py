"""Markdown tables of benchmark results: :func:`format_table` (of :func:`asymmzoo.bench.benchmark`),
:func:`format_ratios` (of :func:`asymmzoo.bench.paired_ratios`) and :func:`format_op_profile` (of
:func:`asymmzoo.bench.op_profile`)."""
from .host import host_note


def _threads_label(threads):
    return '%d thread%s' % (threads, 's' if threads > 1 else '') if threads else \
        "onnxruntime's default threads (one per core)"


def format_op_profile(rows):
    """Markdown tables of :func:`op_profile` results, one per (batch size, threads), models side by
    side: each operator type's node count and time (µs), then the kernel sum, the time between
    kernels and the run."""
    if not rows:
        return '(no results)'
    tables = []
    groups = []
    for r in rows:
        if (r['batch'], r['threads']) not in groups:
            groups.append((r['batch'], r['threads']))
    for batch, threads in groups:
        part = [r for r in rows if (r['batch'], r['threads']) == (batch, threads)]
        types = sorted({t for r in part for t in r['ops']},
                       key=lambda t: -max(r['ops'].get(t, {'us': 0})['us'] for r in part))
        lines = ['batch %d, %s, onnxruntime profiler (µs, median per node, summed):'
                 % (batch, _threads_label(threads)), '',
                 '| operator | ' + ' | '.join(r['model'] for r in part) + ' |',
                 '|---|' + '---:|' * len(part)]
        for t in types:
            cells = ['%d x %.0f' % (r['ops'][t]['count'], r['ops'][t]['us']) if t in r['ops'] else '-'
                     for r in part]
            lines.append('| %s | %s |' % (t, ' | '.join(cells)))
        for label, key in (('kernels', 'kernel_us'), ('between kernels', 'between_us'),
                           ('run (profiled)', 'run_us')):
            cells = ['%.0f' % r[key] if key != 'kernel_us' else '%d nodes, %.0f' % (r['nodes'], r[key])
                     for r in part]
            lines.append('| %s | %s |' % (label, ' | '.join(cells)))
        tables.append('\n'.join(lines))
    return '\n\n'.join(tables)


def format_ratios(rows):
    """Markdown table of :func:`paired_ratios` results."""
    if not rows:
        return '(no results)'
    lines = ['| A | B | engine | batch | A ms | B ms | ratio A/B (median of rounds) | 95% interval '
             '| CPU-time ratio | rounds |', '|---|---|---|---:|---:|---:|---:|---|---:|---:|']
    for r in rows:
        lines.append('| %s | %s | %s | %d | %.2f | %.2f | %.3f | %.3f-%.3f | %.3f | %d |'
                     % (r['a'], r['b'], r['engine'], r['batch'], r['a_ms'], r['b_ms'], r['ratio'],
                        r['ci95'][0], r['ci95'][1], r['cpu_ratio'], r['rounds']))
    runs = {}   # one paired_ratios call each (one per engine in `asymmzoo bench --paired`), in order
    for r in rows:
        note = host_note(r.get('host_gflops'))
        if note:
            runs.setdefault((r['engine'], r.get('threads'), note), r)
    if runs:
        lines += [''] + ['* %s: %s UTC%s' % (engine, r.get('time_utc'), note)
                         for (engine, _, note), r in runs.items()]
    return '\n'.join(lines)


def format_table(results, batch_sizes=None):
    """Markdown table of :func:`benchmark` results."""
    if not results:
        return '(no results)'
    bs = batch_sizes or sorted({int(b) for r in results for b in r['batch']})
    head = ['model', 'form', 'engine', 'params', 'MAdds']
    for b in bs:
        if b == 1:
            head += ['b1 median ms', 'b1 p90 ms']
        else:
            head += ['b%d median ms' % b, 'b%d img/s' % b]
    has_train = any('train_step' in r for r in results)
    has_mem = any(r.get('peak_rss_mb') for r in results)
    has_onnx = any('onnx_max_abs_diff' in r for r in results)
    if has_train:
        head.append('train step ms')
    if has_mem:
        head.append('peak RSS MiB')
    if has_onnx:
        head.append('ONNX max|diff|')
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '|'.join(['---'] * 3 + ['---:'] * (len(head) - 3)) + '|']
    for r in results:
        cells = [r['model'], r['form'], r['engine'], '%.2fM' % (r['params'] / 1e6),
                 '%.1fM' % (r['madds'] / 1e6)]
        for b in bs:
            s = r['batch'].get(str(b))
            if s is None:
                cells += ['', '']
            elif b == 1:
                cells += ['%.2f' % s['median_ms'], '%.2f' % s['p90_ms']]
            else:
                cells += ['%.1f' % s['median_ms'], '%.0f' % s['throughput_ips']]
        if has_train:
            t = r.get('train_step')
            cells.append('%.0f (b%d)' % (t['median_ms'], t['batch']) if t else '')
        if has_mem:
            m = r.get('peak_rss_mb')
            cells.append('%.0f' % m['peak'] if m else '')
        if has_onnx:
            d = r.get('onnx_max_abs_diff')
            cells.append('%.1e' % d if d is not None else '')
        lines.append('| ' + ' | '.join(cells) + ' |')
    env = results[0].get('env', {})
    lines.append('')
    lines.append('%s UTC; %s CPUs; OMP_NUM_THREADS=%s; onnxruntime threads=%s; %d rounds '
                 'interleaved; 1-min load average %.2f%s' % (
                     env.get('time_utc'), env.get('cpus'), env.get('OMP_NUM_THREADS') or 'unset',
                     env.get('onnxruntime_threads') or 'default', env.get('rounds', 0),
                     env.get('loadavg_1min') or 0.0,
                     host_note(env.get('host_gflops'))))
    return '\n'.join(lines)
