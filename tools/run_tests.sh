#!/usr/bin/env bash
# The project's test command (README.md names it; .ci/run runs it).
# 1. notebooks and package do not drift (nbdev_export + nbdev_clean change nothing),
#    and README.md is in step with nbs/index.ipynb;
# 2. every notebook's inline tests (nbdev_test; slow/gpu cells skipped);
# 3. the end-to-end tests in tests/ (pytest).
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}  # busy-waiting OpenMP threads make a shared 2-core machine crawl
fail=0
# Notebook tests make scratch folders with tempfile, and a failing cell leaves its own behind: give the whole run a
# private TMPDIR and remove it at the end, so repeated runs on one machine do not fill its disk.
export TMPDIR="$(mktemp -d "${TMPDIR:-/tmp}/reid_nb_tests.XXXXXX")"
trap 'rm -rf "$TMPDIR"' EXIT

snapshot() { git status --porcelain --untracked-files=all; git diff; }
before="$(snapshot | sha1sum)"
nbdev_export && nbdev_clean && python tools/make_readme.py || { echo "FAIL: export/clean/readme step errored"; fail=1; }
after="$(snapshot | sha1sum)"
if [ "$before" != "$after" ]; then
  echo "FAIL: nbdev_export / nbdev_clean / tools/make_readme.py changed the tree: notebooks, package and README drift."
  echo "      Run them, review 'git diff', and commit."
  git status --short
  fail=1
else
  echo "OK: no drift between nbs/, reid_nb/ and README.md"
fi

echo "== nbdev_test"
nbdev_test --n_workers "${NBDEV_WORKERS:-2}" --timing || { echo "FAIL: nbdev_test"; fail=1; }

echo "== pytest tests"
python -m pytest tests -ra -q --timeout "${PYTEST_TIMEOUT:-1200}" || { echo "FAIL: pytest"; fail=1; }

exit $fail
