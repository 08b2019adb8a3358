#!/usr/bin/env bash
# Mutation testing of chosen modules with mutmut, in a scratch copy of the tree (the working tree
# is never touched). Not part of .ci/run: it runs the chosen tests once per mutant.
#
#   tools/mutation.sh [-t "TEST_FILE..."] [-k EXPR] MODULE.py...
#
#   MODULE      paths of the modules to mutate, e.g. bot/delivery/ratelimit.py or bot/delivery/*.py
#   -t FILES    the tests to run against each mutant (default: every test file); give the tests
#               that exercise the modules, the run is proportional to them
#   -k EXPR     pytest -k expression (default "not postgresql": invariant tests pass on SQLite
#               alone; use -k "not sqlite" with SYNCUP_TEST_DATABASE_URL to run on PostgreSQL)
#
# Prints mutmut's results (each surviving mutant's name; `mutmut show NAME` in $WORKDIR shows its
# diff) and a score per module. WORKDIR (default /tmp/syncup-mutation) keeps mutmut's cache: a
# second run only tests mutants whose code or tests changed. docs/testing.md says when to run it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tests=""
filter="not postgresql"
while getopts "t:k:" opt; do
  case $opt in
    t) tests=$OPTARG ;;
    k) filter=$OPTARG ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then sed -n '2,16p' "$0"; exit 2; fi
for module in "$@"; do
  [ -f "$module" ] || { echo "mutation.sh: no such module: $module" >&2; exit 2; }
done
python=${PYTHON:-$root/.venv/bin/python}
"$python" -c 'import mutmut' 2>/dev/null || {
  echo "mutation.sh: mutmut is not installed: $root/.venv/bin/pip install -e '.[mutation]'" >&2
  exit 2
}
workdir=${WORKDIR:-/tmp/syncup-mutation}
mkdir -p "$workdir"
# A copy of the tracked files as they are in the working tree; mutmut's cache (mutants/) stays.
git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- ./ "$workdir/"

quote() { for x in "$@"; do printf '    %s\n' "$x"; done; }
{
  echo "[mutmut]"
  echo "source_paths ="
  quote bot adapters storage migrations
  echo "only_mutate ="
  quote "$@"
  echo "also_copy ="
  quote benchmarks docs config.example.toml README.md
  echo "pytest_add_cli_args ="
  quote -q -x -p no:cacheprovider -p no:randomly -k "$filter"
  if [ -n "$tests" ]; then
    echo "pytest_add_cli_args_test_selection ="
    # shellcheck disable=SC2086
    quote $tests
  fi
} > "$workdir/setup.cfg"

cd "$workdir"
start=$(date +%s)
"$python" -m mutmut run --max-children "${JOBS:-2}" || true
"$python" -m mutmut results --all true > results.txt || true
echo "mutation run took $(( $(date +%s) - start )) s"
"$python" - "$@" <<'PY'
import re, sys
from collections import Counter
score: dict[str, Counter] = {}
for line in open("results.txt"):
    m = re.match(r"\s*([\w.]+)__mutmut_\d+: (\w[\w ]*)", line)
    if not m:
        continue
    name, status = m.groups()
    module = name.split(".x")[0].split(".xǁ")[0]
    score.setdefault(module.rsplit(".", 1)[0] if "ǁ" in name else module, Counter())[status] += 1
for module, counts in sorted(score.items()):
    total = sum(counts.values())
    killed = counts["killed"] + counts["timeout"]
    print(f"{module:50} {killed}/{total} killed  " + ", ".join(f"{k} {v}" for k, v in counts.items()))
PY
grep -E ': (survived|no tests)' results.txt || echo "no surviving mutants"
