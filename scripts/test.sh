#!/usr/bin/env bash
# Set up everything and run the whole test suite: lint, format, types, tests.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.12}
command -v "$PYTHON" >/dev/null || { echo "scripts/test.sh: needs Python 3.12+ as '$PYTHON' (set PYTHON=...)" >&2; exit 2; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
# The docs build draws a sweep's graph with graphviz's `dot` (Debian package graphviz).
if ! command -v dot >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -qq graphviz || (apt-get update -qq && apt-get install -y -qq graphviz)) >/dev/null
  else
    echo "scripts/test.sh: the docs build needs graphviz's 'dot': install it (apt-get install graphviz)" >&2; exit 2
  fi
fi

echo "== ruff check";  .venv/bin/ruff check .
echo "== ruff format"; .venv/bin/ruff format --check .
echo "== mypy";        .venv/bin/mypy --strict gmat_sweep
echo "== pytest"
# Two worker processes, each taking whole test files (their module-scoped sweeps are shared
# within a file): the GMAT runs of one keep both cores busy while the other starts
# processes, imports or waits. Pass -n 0 to run in one process.
status=0
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests — that is a failure, not a pass" >&2
fi
exit "$status"
