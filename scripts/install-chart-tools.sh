#!/usr/bin/env bash
# Install the pinned tools that document the Helm chart into TARGET_DIR/chart-tools.
#
# Today that is Bitnami's readme-generator-for-helm (npm), which writes the parameter tables of
# helm/voxmill/README.md from the `## @param` comments in values.yaml (scripts/chart_schema.py
# runs it). Pinned by scripts/chart-tools/package-lock.json; after moving to a newer release, run
# `make chart-schema` and commit what changed (install-npm-tools.sh says how).
#
#   bash scripts/install-chart-tools.sh .tools    # then: .tools/chart-tools/node_modules/.bin/readme-generator
set -euo pipefail
target="${1:?usage: install-chart-tools.sh TARGET_DIR}"
bash "$(dirname "${BASH_SOURCE[0]}")/install-npm-tools.sh" chart-tools "$target" node_modules/.bin/readme-generator
"${target}/chart-tools/node_modules/.bin/readme-generator" --version >&2
