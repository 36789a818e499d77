#!/usr/bin/env bash
# Print the full path of a Python >= 3.12 interpreter, or explain what to install and exit 1.
#
# Every candidate is checked by running it (a pyenv shim on PATH may exist for a version that
# is not active, and `python3` is often older). Order:
#   1. $TRADEDESK_PYTHON, if set (must qualify, or we stop: an explicit choice is not ignored)
#   2. the interpreter the existing .venv was built from, if it still qualifies (keeps the
#      environment instead of rebuilding it on every run)
#   3. PATH: python3.13, python3.12, python3, python
#   4. pyenv installs: $PYENV_ROOT/versions/*/bin/python and ~/.pyenv/versions/*/bin/python,
#      3.12.x first (the version the lock is exercised with), then newer
set -euo pipefail

MIN_MAJOR=3
MIN_MINOR=12
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Print the interpreter's real path if it runs and is new enough; fail otherwise.
qualifies() {
    local candidate="$1" out
    [ -n "$candidate" ] || return 1
    out="$("$candidate" -c "import sys, os
ok = sys.version_info >= ($MIN_MAJOR, $MIN_MINOR) and sys.implementation.name == 'cpython'
print(os.path.realpath(sys.executable) if ok else '')" 2>/dev/null)" || return 1
    [ -n "$out" ] || return 1
    printf '%s\n' "$out"
}

if [ -n "${TRADEDESK_PYTHON:-}" ]; then
    if qualifies "$TRADEDESK_PYTHON"; then exit 0; fi
    echo "TRADEDESK_PYTHON=$TRADEDESK_PYTHON is not a working CPython >= $MIN_MAJOR.$MIN_MINOR" >&2
    exit 1
fi

# The existing environment's interpreter (uv links .venv/bin/python to it).
if [ -x "$ROOT/.venv/bin/python" ]; then
    base="$(readlink -f "$ROOT/.venv/bin/python" 2>/dev/null || true)"
    if [ -n "$base" ] && [ "$base" != "$ROOT/.venv/bin/python" ] && qualifies "$base"; then
        exit 0
    fi
fi

for name in python3.13 python3.12 python3 python; do
    if path="$(command -v "$name" 2>/dev/null)" && qualifies "$path"; then exit 0; fi
done

pyenv_candidates() {
    local root
    for root in "${PYENV_ROOT:-}" "$HOME/.pyenv"; do
        [ -n "$root" ] && [ -d "$root/versions" ] || continue
        ls -d "$root"/versions/*/bin/python 2>/dev/null || true
    done
}
# 3.12.x newest patch first, then 3.13+ in ascending order.
mapfile -t found < <(pyenv_candidates | awk '!seen[$0]++' | while read -r p; do
    v="$(basename "$(dirname "$(dirname "$p")")")"
    IFS=. read -r ma mi pa _ <<<"${v}.0.0"
    [[ "$ma" =~ ^[0-9]+$ && "$mi" =~ ^[0-9]+$ ]] || continue
    pa="${pa%%[!0-9]*}"
    if [ "$ma" -eq 3 ] && [ "$mi" -eq 12 ]; then rank=0; else rank=1; fi
    printf '%d %05d %05d %05d %s\n' "$rank" "$ma" "$mi" "$((99999 - ${pa:-0}))" "$p"
done | sort | cut -d' ' -f5-)
for path in "${found[@]}"; do
    if qualifies "$path"; then exit 0; fi
done

cat >&2 <<EOF
Tradedesk needs Python $MIN_MAJOR.$MIN_MINOR or newer (pandas-ta requires it), and none was found.
Looked at: \$TRADEDESK_PYTHON, python3.13 / python3.12 / python3 / python on PATH, and
pyenv installs under \${PYENV_ROOT:-~/.pyenv}/versions.
Install one, then run this again:
  Debian 13 / Ubuntu 24.04:  apt-get install python3 python3-venv
  Ubuntu 22.04:              add-apt-repository ppa:deadsnakes/ppa && apt-get install python3.12 python3.12-venv
  pyenv:                     pyenv install 3.12
  macOS (Homebrew):          brew install python@3.12
Or point TRADEDESK_PYTHON at an interpreter you already have: TRADEDESK_PYTHON=/path/to/python3.12 make run
EOF
exit 1
