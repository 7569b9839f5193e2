"""Reproduce the numbers of docs/performance-measured.md: measure every part, then rebuild that page
and the latency-vs-MAdds plot from the saved results.

    .venv/bin/python benchmarks/run_all.py                     # all parts (~1.5 h on 2 idle cores)
    .venv/bin/python benchmarks/run_all.py --parts zoo int8    # some parts, then the page
    .venv/bin/python benchmarks/run_all.py --report-only       # rebuild the page and plot from saved JSON

The two steps are separate modules: ``benchmarks/measure.py`` runs the parts and saves
``benchmarks/results/<part>.json`` (its docstring lists the parts); ``benchmarks/report.py`` reads
those files and writes docs/performance-measured.md and docs/performance_latency_vs_madds.png, and
nothing else. The measuring flags are measure.py's.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import measure  # noqa: E402  (benchmarks/ is not a package)
import report   # noqa: E402

# run_all's own flags; every other flag goes to measure.py
_OWN = ('--report-only', '--no-report')


def parser():
    p = measure.parser(description=__doc__.split('\n\n')[0].replace('\n', ' '))
    p.add_argument('--report-only', action='store_true',
                   help='do not measure: rebuild the page and plot from the saved results')
    p.add_argument('--no-report', action='store_true', help='measure only (the page is not rebuilt)')
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    p = parser()
    args = p.parse_args(argv)
    measure.check_args(p, args)
    if args.report_only and args.no_report:
        p.error('--report-only and --no-report together would do nothing')
    if not args.report_only:
        measure.run(args, [a for a in argv if a not in _OWN])
    if not args.no_report:
        report.write()
    return 0


if __name__ == '__main__':
    sys.exit(main())
