#!/usr/bin/env bash
# Install one set of pinned npm tools, scripts/NAME/, into TARGET_DIR/NAME.
#
# `npm ci` installs exactly scripts/NAME/package-lock.json: every package's version and integrity
# hash is pinned there, so CI runs the same code every time. To move to a newer release: edit the
# version in scripts/NAME/package.json, run `npm install --package-lock-only` there and commit both
# files. Idempotent: does nothing when the installed lockfile is the committed one and CHECK (a
# path inside the install) exists. Used by install-chart-tools.sh and install-ui-tools.sh.
#
#   bash scripts/install-npm-tools.sh NAME TARGET_DIR CHECK
set -euo pipefail

name="${1:?usage: install-npm-tools.sh NAME TARGET_DIR CHECK}"
target="${2:?usage: install-npm-tools.sh NAME TARGET_DIR CHECK}"
check="${3:?usage: install-npm-tools.sh NAME TARGET_DIR CHECK}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/${name}"
dest="${target}/${name}"

if [[ -e "${dest}/${check}" ]] && cmp -s "${here}/package-lock.json" "${dest}/package-lock.json"; then
    touch "${dest}/package-lock.json"  # newer than the committed lockfile: make sees it done
    exit 0
fi

command -v npm >/dev/null || { echo "install ${name}: needs npm (apt-get install npm)" >&2; exit 1; }

mkdir -p "$target"
# Build beside the destination and move it in whole, so an interrupted install leaves nothing
# that the check above would take for a finished one.
work="$(mktemp -d "${target}/.${name}.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp "${here}/package.json" "${here}/package-lock.json" "$work/"
echo "install ${name}: npm ci in ${dest}" >&2
(cd "$work" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
rm -rf "$dest"
mv "$work" "$dest"
test -e "${dest}/${check}"
