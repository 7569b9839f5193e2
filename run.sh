#!/usr/bin/env bash
# One entry point for a fresh machine (only Python 3.11 needed):
#   ./run.sh main   [args]   set up .venv if missing, then run the project's main job
#   ./run.sh test   [args]   set up .venv if missing, then run the whole test suite (slow tests included)
#   ./run.sh setup           only set up .venv
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv
stamp_src=$(cat requirements.txt setup.py | sha1sum | cut -c1-16)
stamp="$VENV/.installed-$stamp_src"
if [ ! -f "$stamp" ]; then
  echo "[run.sh] setting up $VENV (pinned stack, one time)" >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -r requirements.txt >&2
  "$VENV/bin/python" -m pip install -q --no-deps -e . >&2
  "$VENV/bin/python" -c "import numpy, mxnet; assert numpy.__version__ == '1.23.5', numpy.__version__" >&2
  rm -f "$VENV"/.installed-*; touch "$stamp"
fi
export MPLBACKEND=Agg
cmd=${1:-main}; shift || true
case "$cmd" in
  setup) ;;
  main)  exec "$VENV/bin/python" train_imagenet.py "$@" ;;
  test)  exec "$VENV/bin/python" -m pytest tests --runslow -q "$@" ;;
  *) echo "usage: ./run.sh {main|test|setup} [args]" >&2; exit 2 ;;
esac
