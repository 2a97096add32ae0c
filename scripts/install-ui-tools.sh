#!/usr/bin/env bash
# Install the pinned tools of the browser tests into TARGET_DIR/ui-tools.
#
# Today that is axe-core (npm): tests/e2e inject its axe.min.js into each page and require zero
# accessibility violations. `npm ci` installs exactly scripts/ui-tools/package-lock.json (version
# and integrity hash pinned). To move to a newer release: edit the version in package.json, run
# `npm install --package-lock-only` in scripts/ui-tools/ and commit both files.
# Idempotent: does nothing when the installed lockfile is the committed one.
#
#   bash scripts/install-ui-tools.sh .tools    # then: .tools/ui-tools/node_modules/axe-core/axe.min.js
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/ui-tools"
target="${1:?usage: install-ui-tools.sh TARGET_DIR}"
dest="${target}/ui-tools"
axe="${dest}/node_modules/axe-core/axe.min.js"

if [[ -f "$axe" ]] && cmp -s "${here}/package-lock.json" "${dest}/package-lock.json"; then
    touch "${dest}/package-lock.json"  # newer than the committed lockfile: make sees it done
    exit 0
fi

command -v npm >/dev/null || { echo "install-ui-tools.sh: needs npm (apt-get install npm)" >&2; exit 1; }

mkdir -p "$target"
# Build beside the destination and move it in whole, so an interrupted install leaves nothing
# that the check above would take for a finished one.
work="$(mktemp -d "${target}/.ui-tools.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "${here}/package.json" "${here}/package-lock.json" "$work/"
echo "install-ui-tools.sh: npm ci in ${dest}" >&2
(cd "$work" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -rf "$dest"
mv "$work" "$dest"
test -f "$axe"
