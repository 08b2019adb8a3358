#!/usr/bin/env bash
# Mutation testing of chosen modules with mutmut, in a scratch copy of the tree (the working tree
# is never touched). Not part of .ci/run: it runs the chosen tests once per mutant.
#
#   tools/mutation.sh [-t "TEST_FILE..."] [-k EXPR] [-m "MUTANT_GLOB..."] [-s] MODULE.py...
#
#   MODULE      paths of the modules to mutate, e.g. bot/delivery/ratelimit.py or bot/delivery/*.py
#   -t FILES    the tests to run against each mutant (default: every test file); give the tests
#               that exercise the modules, the run is proportional to them
#   -k EXPR     pytest -k expression (default "not postgresql": invariant tests pass on SQLite
#               alone; use -k "not sqlite" with SYNCUP_TEST_DATABASE_URL to run on PostgreSQL)
#   -m GLOBS    only the mutants whose names match, e.g. "bot.directory.x_permission_of__mutmut_*"
#               (functions: x_NAME, methods: xǁCLASSǁNAME); the score counts only mutants tested
#   -s          recheck: run the -t tests (as they are now) against each survivor of the last run
#               in WORKDIR only, and say which are killed now (minutes, where a rerun takes long);
#               one that runs past RECHECK_TIMEOUT seconds (default 900) is a kill (it hung)
#
# Prints mutmut's results (each surviving mutant's name; `mutmut show NAME` in $WORKDIR shows its
# diff) and a score per module. WORKDIR (default /tmp/syncup-mutation) keeps mutmut's cache: a
# second run only tests mutants whose code or tests changed. JOBS (default 1) mutants run at once;
# TIMEOUT (default 15) times a mutant's tests' recorded time ends it as a timeout (counted killed,
# and listed: mutmut limits CPU time, and wall time to half of it, from the tests' durations
# without their fixtures, so a low TIMEOUT, or 15 under load, stops mutants that do not hang: use
# 60 on a busy machine; rerun a listed one with -s or MUTANT_UNDER_TEST).
# docs/testing.md says when to run it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tests=""
filter="not postgresql"
mutants=""
recheck=""
while getopts "t:k:m:s" opt; do
  case $opt in
    t) tests=$OPTARG ;;
    k) filter=$OPTARG ;;
    m) mutants=$OPTARG ;;
    s) recheck=1 ;;
    *) sed -n '2,25p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then sed -n '2,25p' "$0"; exit 2; fi
for module in "$@"; do
  [ -f "$module" ] || { echo "mutation.sh: no such module: $module" >&2; exit 2; }
done
python=${PYTHON:-$root/.venv/bin/python}
"$python" -c 'import mutmut' 2>/dev/null || {
  echo "mutation.sh: mutmut is not installed: $root/.venv/bin/pip install -e '.[mutation]'" >&2
  exit 2
}
workdir=${WORKDIR:-/tmp/syncup-mutation}
mkdir -p "$workdir/tmp"
# pytest's temporary folders per run: two runs sharing /tmp/pytest-of-$USER remove each other's.
export TMPDIR="$workdir/tmp"
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
  # mutmut's own default is also 15; TIMEOUT above says why it is not lower.
  echo "timeout_multiplier = ${TIMEOUT:-15}"
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
if [ -n "$recheck" ]; then
  [ -s survivors.txt ] || { echo "mutation.sh: no survivors in $workdir to recheck" >&2; exit 2; }
  rsync -a --delete "$root/tests/" mutants/tests/
  cd mutants
  while read -r name _; do
    name=${name%:}
    # shellcheck disable=SC2086
    # A mutant that hangs (a stop() that never returns) is a kill, not a stalled recheck.
    status=0
    MUTANT_UNDER_TEST=$name timeout "${RECHECK_TIMEOUT:-900}" "$python" -m pytest -q -x \
      -p no:cacheprovider -p no:randomly -k "$filter" $tests > /dev/null 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then
      echo "    $name: survived"
    elif [ "$status" -eq 124 ]; then
      echo "    $name: killed (hung: stopped after ${RECHECK_TIMEOUT:-900} s)"
    else
      echo "    $name: killed"
    fi
  done < ../survivors.txt
  echo "recheck took $(( $(date +%s) - start )) s"
  exit 0
fi
# shellcheck disable=SC2086
set -f  # the globs are for mutmut, not the shell
"$python" -m mutmut run --max-children "${JOBS:-1}" $mutants || true
set +f
"$python" -m mutmut results --all true > results.txt || true
echo "mutation run took $(( $(date +%s) - start )) s"
# Only the modules asked for (the cache may hold others from earlier runs), and with -m only the
# matching mutants; "not checked" ones (filtered out, or the run was cut short) are not scored.
"$python" - "$mutants" "$@" > survivors.txt <<'PY'
import fnmatch, re, sys
from collections import Counter
globs = sys.argv[1].split()
wanted = {m.removesuffix(".py").replace("/", ".") for m in sys.argv[2:]}
score: dict[str, Counter] = {}
for line in open("results.txt"):
    m = re.match(r"\s*(\S+?)\.x[_ǁ](\S*)__mutmut_\d+: (\w[\w ]*)", line)
    if not m:
        continue
    module, name, status = m.group(1), line.split(":")[0].strip(), m.group(3)
    if module not in wanted or (globs and not any(fnmatch.fnmatchcase(name, g) for g in globs)):
        continue
    score.setdefault(module, Counter())[status] += 1
    if status in ("survived", "no tests", "suspicious", "timeout"):
        print(f"    {name}: {status}")
for module, counts in sorted(score.items()):
    checked = {k: v for k, v in counts.items() if k != "not checked"}
    killed = counts["killed"] + counts["timeout"]
    print(
        f"{module:50} {killed}/{sum(checked.values())} killed  "
        + ", ".join(f"{k} {v}" for k, v in counts.items()),
        file=sys.stderr,
    )
PY
cat survivors.txt
[ -s survivors.txt ] || echo "no surviving mutants"
