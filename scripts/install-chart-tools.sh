#!/usr/bin/env bash
# Install the pinned tools that document the Helm chart into TARGET_DIR/chart-tools.
#
# Today that is Bitnami's readme-generator-for-helm (npm), which writes the parameter tables of
# helm/voxmill/README.md from the `## @param` comments in values.yaml (scripts/chart_schema.py
# runs it). `npm ci` installs exactly scripts/chart-tools/package-lock.json: every package's
# version and integrity hash is pinned there, so CI runs the same code every time. To move to a
# newer release: edit the version in package.json, run `npm install --package-lock-only` in
# scripts/chart-tools/, then `make chart-schema` and commit what changed.
# Idempotent: does nothing when the installed lockfile is the committed one.
#
#   bash scripts/install-chart-tools.sh .tools    # then: .tools/chart-tools/node_modules/.bin/readme-generator
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/chart-tools"
target="${1:?usage: install-chart-tools.sh TARGET_DIR}"
dest="${target}/chart-tools"
bin="${dest}/node_modules/.bin/readme-generator"

if [[ -x "$bin" ]] && cmp -s "${here}/package-lock.json" "${dest}/package-lock.json"; then
    touch "${dest}/package-lock.json"  # newer than the committed lockfile: make sees it done
    exit 0
fi

command -v npm >/dev/null || { echo "install-chart-tools.sh: needs npm (apt-get install npm)" >&2; exit 1; }

mkdir -p "$target"
# Build beside the destination and move it in whole, so an interrupted install leaves nothing
# that the check above would take for a finished one.
work="$(mktemp -d "${target}/.chart-tools.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "${here}/package.json" "${here}/package-lock.json" "$work/"
echo "install-chart-tools.sh: npm ci in ${dest}" >&2
(cd "$work" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -rf "$dest"
mv "$work" "$dest"
"$bin" --version >&2
