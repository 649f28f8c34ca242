#!/usr/bin/env bash
# Create the project's virtual environment with a Python >= 3.11: make-venv.sh DIR [PYTHON]
set -euo pipefail
dir=$1
candidates=("${2:-}" python3.13 python3.12 python3.11 python3)
for py in "${candidates[@]}"; do
  [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
  if "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      exit 0  # already there and recent enough
    fi
    "$py" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip
    exit 0
  fi
done
echo "no Python >= 3.11 found (set PYTHON=/path/to/python3.11)" >&2
exit 1
