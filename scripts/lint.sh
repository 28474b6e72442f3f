#!/usr/bin/env bash
# npm run lint, and the lint step of npm test (after the type-check): every check runs, each prints
# its own findings, and the step fails if any of them failed.
#   eslint        typed rules (eslint.config.js says which and why), on TypeScript 6.0.3's JS API
#   prettier      the layout check (.prettierrc.json, 110 columns); `npm run format` rewrites
#   cycles        no import cycle among the modules of src/ (scripts/check-cycles.mjs)
#   knip          no unused file, export, exported type or dependency (knip.json)
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "# lint: $name"
  if "$@"; then
    echo "# lint: $name ok ($((SECONDS - start)) s)"
  else
    echo "# lint: $name FAILED ($((SECONDS - start)) s): $*" >&2
    failed+=("$name")
  fi
}

step eslint npx eslint --max-warnings 0 .
step prettier npx prettier --check --log-level warn .
step cycles node scripts/check-cycles.mjs src
step knip npx knip --no-progress

if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: ${#failed[@]} check(s) failed: ${failed[*]}" >&2
  for name in "${failed[@]}"; do
    case "$name" in
      eslint) echo "  eslint: fix the lines listed above; \`npx eslint --fix <file>\` fixes some (type-check after it)" >&2 ;;
      prettier) echo "  prettier: \`npm run format\` rewrites the files listed above" >&2 ;;
      cycles) echo "  cycles: move what both modules need into a third one that imports neither" >&2 ;;
      knip) echo "  knip: delete what is unused, or drop the \`export\` of what is only used in its own file" >&2 ;;
    esac
  done
  exit 1
fi
echo "lint: eslint, prettier, cycles and knip passed"
