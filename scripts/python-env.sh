#!/usr/bin/env bash
# Create or update the Python venv used by tests and notebooks (moto server, pyarrow, pandas, ...).
#   venv:   ${STOCKLAKE_VENV:-<repo>/.venv}
#   python: ${PYTHON:-python3} (CPython 3.11 here)
#   cache:  ${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}, and a wheelhouse
#           ${STOCKLAKE_WHEELHOUSE:-$PIP_CACHE_DIR/stocklake-wheels} (the registry here sends no
#           caching headers, so pip's HTTP cache stores nothing; the wheelhouse keeps the files)
# Installs requirements.txt only when it (or the interpreter) changed since the last successful
# install; the sha256 stamp lives in the venv. Safe to rerun. Prints the venv path last.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${STOCKLAKE_VENV:-$repo/.venv}"
req="$repo/requirements.txt"
python="${PYTHON:-python3}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
wheelhouse="${STOCKLAKE_WHEELHOUSE:-$PIP_CACHE_DIR/stocklake-wheels}"
mkdir -p "$PIP_CACHE_DIR" "$wheelhouse"

# A venv whose interpreter no longer runs (moved, Python removed) is rebuilt.
if [ -d "$venv" ] && ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "python-env: $venv is broken, recreating" >&2
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "python-env: creating $venv" >&2
  "$python" -m venv "$venv"
fi

# Serialise concurrent runs on the same venv.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$venv/.stocklake-install.lock"
  flock 9
fi

stamp="$venv/.stocklake-requirements.sha256"
want="$( { sha256sum "$req" | cut -d' ' -f1; "$venv/bin/python" -VV; } | sha256sum | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
  echo "python-env: installing $req" >&2
  rm -f "$stamp"
  # Fetch only what the wheelhouse lacks, then install from it alone.
  "$venv/bin/python" -m pip download --quiet --dest "$wheelhouse" --requirement "$req"
  "$venv/bin/python" -m pip install --quiet --no-index --find-links "$wheelhouse" --requirement "$req"
  echo "$want" >"$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
else
  echo "python-env: requirements up to date" >&2
fi

echo "$venv"
