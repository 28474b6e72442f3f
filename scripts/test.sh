#!/usr/bin/env bash
# npm test: type-check, check the services the tests need, then run every test file with node:test.
# Node 20's test runner expands no globs and finds no .ts files by itself (it would print
# "tests 0" and exit 0), so the file list is explicit.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "# type-check"
npx tsc -p tsconfig.json --noEmit

# Services: the tests start their own redis-server and Chromium; they only need the binaries.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=("redis-server (Debian package redis-server)")
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=("chromium (Debian package chromium)")
command -v python3 >/dev/null 2>&1 || missing+=("python3")
if [ ${#missing[@]} -gt 0 ]; then
  echo "npm test: missing: ${missing[*]}" >&2
  echo "fix: apt-get update && apt-get install -y redis-server chromium python3   (or run .ci/run as root, which installs them)" >&2
  exit 3
fi

mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ ${#files[@]} -eq 0 ]; then
  echo "npm test: no test files found under test/" >&2
  exit 1
fi
echo "# running ${#files[@]} test files"
exec node --import tsx --test --test-concurrency=2 --test-timeout=120000 "$@" "${files[@]}"
