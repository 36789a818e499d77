#!/usr/bin/env bash
# Set up (or refresh) the project environment. Idempotent: a second run reuses everything.
#
#   1. find a Python >= 3.12 (scripts/find_python.sh; exits 1 naming what to install)
#   2. get uv: `uv` on PATH if it is at least $UV_VERSION, else a pinned copy in .tools/uv
#   3. uv sync --frozen into .venv from uv.lock (dev group included), never downloading a
#      Python; an .venv that is broken, too old or built from another interpreter is rebuilt
#   4. create or migrate the database: DATABASE_URL, default sqlite:///data/tradedesk.db
#
# Environment: TRADEDESK_PYTHON=/path/to/python picks the interpreter; SETUP_SKIP_MIGRATE=1
# skips step 4.
set -euo pipefail

UV_VERSION="0.13.9" # the uv that wrote uv.lock
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
START=$(date +%s.%N)

# --- 1. Python
PY="$(scripts/find_python.sh)" || exit 1
PY_VERSION="$("$PY" -c 'import platform; print(platform.python_version())')"
say "python $PY_VERSION at $PY"

# --- 2. uv
version_ge() { # version_ge A B: A >= B (dotted numbers)
    [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}
uv_version_of() { "$1" --version 2>/dev/null | awk '{print $2}'; }

UV=""
if command -v uv >/dev/null 2>&1; then
    found="$(uv_version_of "$(command -v uv)" || true)"
    if [ -n "$found" ] && version_ge "$found" "$UV_VERSION"; then
        UV="$(command -v uv)"
    fi
fi
if [ -z "$UV" ]; then
    TOOLS="$ROOT/.tools/uv"
    UV="$TOOLS/bin/uv"
    if [ "$(uv_version_of "$UV" || true)" != "$UV_VERSION" ]; then
        say "installing uv $UV_VERSION into .tools/uv"
        rm -rf "$TOOLS"
        "$PY" -m venv "$TOOLS" \
            || die "could not create a venv with $PY (on Debian/Ubuntu: apt-get install python3-venv, or python3.12-venv)"
        "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" \
            || die "could not pip install uv==$UV_VERSION (is PyPI reachable?)"
    fi
fi
say "uv $(uv_version_of "$UV") at $UV"

# --- 3. .venv from uv.lock
export UV_PROJECT_ENVIRONMENT="$ROOT/.venv"
export UV_PYTHON_DOWNLOADS=never
export UV_LINK_MODE="${UV_LINK_MODE:-copy}" # the uv cache and the tree may be on different disks

if [ -e .venv ]; then
    reason=""
    if [ ! -f .venv/pyvenv.cfg ]; then
        reason="it is not a virtual environment"
    elif ! venv_py="$(.venv/bin/python -c 'import os, sys; print(os.path.realpath(sys._base_executable))' 2>/dev/null)"; then
        reason="its interpreter no longer runs"
    elif [ "$(readlink -f "$venv_py")" != "$(readlink -f "$PY")" ]; then
        reason="it was built from $venv_py, not $PY"
    fi
    if [ -n "$reason" ]; then
        say "rebuilding .venv: $reason"
        rm -rf .venv
    fi
fi

"$UV" sync --frozen --compile-bytecode --python "$PY" --no-python-downloads --quiet \
    || die "uv sync failed (see above); uv.lock must match pyproject.toml: run 'uv lock' and commit it"
say ".venv is in sync with uv.lock"

# --- 4. database
if [ "${SETUP_SKIP_MIGRATE:-}" = "1" ]; then
    say "skipping the database migration (SETUP_SKIP_MIGRATE=1)"
else
    db="${DATABASE_URL:-sqlite:///data/tradedesk.db}"
    # Show where the database is without echoing a password.
    say "database: $(printf '%s' "$db" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')"
    .venv/bin/python -m db.migrate | sed 's/^/setup: /'
fi

say "ready in $(awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')s"
