#!/usr/bin/env bash
# npm test: bring up what the tests need from the system, type-check, then run every test file
# with node:test. Node 20's test runner expands no globs and finds no .ts files by itself (it would
# print "tests 0" and exit 0), so the file list is explicit.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server, chromium, python3: installed here as root with apt-get, otherwise the exact
# command to run and exit 3 (see the script; .ci/run uses the same one).
bash scripts/system-deps.sh

echo "# type-check"
# TypeScript 7 (native) is `typescript-7`; the `typescript` package is 6.0.3, for typescript-eslint.
node node_modules/typescript-7/bin/tsc -p tsconfig.json --noEmit

# eslint (typed rules), prettier --check, import cycles in src/, unused exports: see scripts/lint.sh.
bash scripts/lint.sh

mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ ${#files[@]} -eq 0 ]; then
  echo "npm test: no test files found under test/" >&2
  exit 1
fi
# Files under test/packaging/ pack and install the package (better-sqlite3 compiles from source:
# minutes, not seconds); files under test/clients/ install the pinned real clients into
# .cache/clients on their first run (about 880 MB) and run coding agents, one at a time. node:test's --test-timeout limits each whole file, so they run after the
# others with a limit of their own; the others keep the short one that catches a hang early.
main=()
long=()
for f in "${files[@]}"; do
  case "$f" in
    test/packaging/* | test/clients/*) long+=("$f") ;;
    *) main+=("$f") ;;
  esac
done
# Both runs print node:test's summary; the last line adds them up for readers of closing lines.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
echo "# running ${#main[@]} test files"
status=0
node --import tsx --test --test-concurrency=2 --test-timeout=300000 "$@" "${main[@]}" | tee "$logs/main" || status=$?
if [ ${#long[@]} -gt 0 ]; then
  echo "# running ${#long[@]} slow test file(s): real clients, npm pack + npm install -g into a temporary prefix"
  node --import tsx --test --test-concurrency=1 --test-timeout=1500000 "$@" "${long[@]}" | tee "$logs/long" || status=$?
  fi
# (pipefail: a pipeline fails when node:test does, whatever tee says)
sum() { cat "$logs"/* | awk -v k="$1" '$0 ~ "^# " k " [0-9]+$" { n += $3 } END { print n + 0 }'; }
echo "tests: $(sum pass) passed, $(sum fail) failed, $(sum skipped) skipped"
exit $status
