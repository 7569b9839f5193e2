#!/usr/bin/env bash
# One entry point for a fresh machine (Python 3.11 or 3.12 needed, found by itself):
#   ./run.sh main   [args]   set up .venv if missing, then run the project's main job
#   ./run.sh test   [args]   set up .venv if missing, then run the whole test suite (slow tests included)
#   ./run.sh fast   [args]   the same without the tests marked slow
#   ./run.sh setup           only set up .venv
#   ./run.sh python VERSION  print the interpreter run.sh would use for VERSION (3.11 or 3.12), or fail
# PYTHON=/path/to/python picks the interpreter; VENV=folder another virtual environment (default .venv).
set -euo pipefail
cd "$(dirname "$0")"
SUPPORTED="3.11 3.12"
VENV=${VENV:-.venv}

py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
is_supported() { case " $SUPPORTED " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# candidates for one version: on PATH, then interpreters pyenv installed (not always on PATH)
candidates() {
  echo "python$1"
  local root=${PYENV_ROOT:-$HOME/.pyenv} d
  for d in "$root"/versions/"$1".*/bin/python"$1"; do [ -x "$d" ] && echo "$d"; done
  return 0
}

find_python() {   # $1: one version, or empty for the first supported one
  local want=${1:-$SUPPORTED} v c
  for v in $want; do
    for c in $(candidates "$v") python3; do
      [ "$(py_version "$c")" = "$v" ] && { echo "$c"; return 0; }
    done
  done
  return 1
}

no_python() {   # $1: what was wrong with PYTHON=, if it was given
  local seen="" c v
  for c in python3 python; do
    v=$(py_version "$c") && seen="$seen $c is $v;"
  done
  if [ -n "${1:-}" ]; then
    echo "[run.sh] asymmzoo needs Python 3.11 or 3.12 (mxnet 1.9.1 and the numpy it runs on): $1." >&2
  else
    echo "[run.sh] asymmzoo needs Python 3.11 or 3.12 (mxnet 1.9.1 and the numpy it runs on), and found neither:" \
      "it looked for python3.11, python3.12 and python3 on PATH and under ${PYENV_ROOT:-$HOME/.pyenv}/versions${seen:+ (${seen% })}." >&2
  fi
  cat >&2 <<EOF
[run.sh] get one, then rerun (or point PYTHON= at it):
[run.sh]   Ubuntu 24.04:  apt install python3.12-venv  (Debian 12: apt install python3.11-venv)
[run.sh]   pyenv:  pyenv install 3.11 && PYTHON=\$(pyenv root)/versions/\$(pyenv latest 3.11)/bin/python3.11 ./run.sh ...
[run.sh]   conda:  conda create -n py311 python=3.11 && PYTHON=\$(conda run -n py311 which python) ./run.sh ...
EOF
  exit 2
}

cmd=${1:-main}; shift || true
if [ "$cmd" = python ]; then
  find_python "${1:?usage: ./run.sh python VERSION}" || exit 1
  exit 0
fi
case "$cmd" in setup|main|test|fast) ;; *) echo "usage: ./run.sh {main|test|fast|setup|python VERSION} [args]" >&2; exit 2 ;; esac

if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
  v=$(py_version "$PY") || no_python "PYTHON=$PY does not run"
  is_supported "$v" || no_python "PYTHON=$PY is Python $v"
elif [ -x "$VENV/bin/python" ] && is_supported "$(py_version "$VENV/bin/python")"; then
  PY=$VENV/bin/python
else
  PY=$(find_python) || no_python
fi
v=$(py_version "$PY")
if [ -x "$VENV/bin/python" ] && [ "$(py_version "$VENV/bin/python")" != "$v" ]; then
  echo "[run.sh] $VENV was made with Python $(py_version "$VENV/bin/python"), not $v: remove it, or set VENV= to another folder" >&2
  exit 2
fi
case "$v" in 3.11) NUMPY=1.23.5 ;; *) NUMPY=1.26.4 ;; esac

stamp_src=$( (cat requirements.txt setup.py asymmzoo-mxnet-compat.pth; echo "$v") | sha1sum | cut -c1-16)
stamp="$VENV/.installed-$stamp_src"
if [ ! -f "$stamp" ]; then
  echo "[run.sh] setting up $VENV with Python $v (pinned stack, one time)" >&2
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -r requirements.txt >&2
  PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip install -q --no-deps -e . >&2   # (setuptools' editable-install notice)
  # the start-up hook (numpy's removed aliases before any `import mxnet`); an editable install
  # does not carry it, a wheel does
  cp asymmzoo-mxnet-compat.pth "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"
  "$VENV/bin/python" -c "import mxnet, numpy; assert numpy.__version__ == '$NUMPY', numpy.__version__" >&2
  rm -f "$VENV"/.installed-*; touch "$stamp"
fi
export MPLBACKEND=Agg
case "$cmd" in
  setup) ;;
  main)  exec "$VENV/bin/python" train_imagenet.py "$@" ;;
  test)  exec "$VENV/bin/python" -m pytest tests --runslow -q "$@" ;;
  fast)  exec "$VENV/bin/python" -m pytest tests -q "$@" ;;
esac
