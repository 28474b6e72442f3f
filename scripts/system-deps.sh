#!/usr/bin/env bash
# The one place that knows which programs the tests need from the system, used by `npm test`
# (scripts/test.sh) and by .ci/run (before `npm ci`, which builds better-sqlite3 with python3).
#
# The tests start their own redis-server and Chromium (the Debian packages only install the
# binaries; nothing is left running) and run the pod guard under python3.
#
#   nothing missing            exit 0, silent
#   root with apt-get          installs the missing Debian packages (one line says which), exit 0
#   otherwise                  prints what is missing and the exact command for this system
#                              (sudo apt-get on Debian/Ubuntu, brew on macOS), exit 3
#   the install itself failed  prints apt-get's last lines and the command, exit 4
#
# CHROMIUM_PATH names a Chromium elsewhere than /usr/bin/chromium (as the tests read it).
set -uo pipefail

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"

# Fills `missing` with the Debian package name of each program that is not there.
check() {
  missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ -x "$chromium" ] || missing+=(chromium)
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
}

# The install command for this system, for a user who is not root (or has no apt-get).
advice() {
  if [ "$(uname -s 2>/dev/null)" = Darwin ]; then
    local brew=()
    for p in "${missing[@]}"; do
      case "$p" in
        redis-server) brew+=(redis) ;;
        python3) brew+=(python) ;;
      esac
    done
    local cmd=""
    [ ${#brew[@]} -gt 0 ] && cmd="brew install ${brew[*]}"
    if [[ " ${missing[*]} " == *" chromium "* ]]; then
      cmd="${cmd:+$cmd && }brew install --cask chromium && export CHROMIUM_PATH=/Applications/Chromium.app/Contents/MacOS/Chromium"
    fi
    echo "$cmd"
  elif command -v apt-get >/dev/null 2>&1; then
    echo "sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  else
    echo "install ${missing[*]} (Debian package names) with this system's package manager${CHROMIUM_PATH:+; CHROMIUM_PATH=$CHROMIUM_PATH}"
  fi
}

check
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(uname -s 2>/dev/null)" != Darwin ]; then
  echo "npm test: installing the missing Debian packages: ${missing[*]} (apt-get, as root)"
  log="$(mktemp "${TMPDIR:-/tmp}/system-deps.XXXXXX")"
  if DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log" 2>&1 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$log" 2>&1; then
    rm -f "$log"
    check
    [ ${#missing[@]} -eq 0 ] && exit 0
    echo "npm test: apt-get installed the packages but these are still missing: ${missing[*]}" >&2
    [ "${missing[*]}" = chromium ] && echo "fix: set CHROMIUM_PATH to the Chromium binary (looked for $chromium)" >&2
    exit 4
  fi
  echo "npm test: apt-get could not install ${missing[*]}; its last lines:" >&2
  tail -n 5 "$log" | sed 's/^/  /' >&2
  rm -f "$log"
  echo "fix: apt-get update && apt-get install -y ${missing[*]}   (check the network and the apt sources)" >&2
  exit 4
fi

echo "npm test: missing ${missing[*]}: the tests start a real redis-server and Chromium and run the pod guard under python3" >&2
echo "fix: $(advice)" >&2
exit 3
