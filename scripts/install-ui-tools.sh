#!/usr/bin/env bash
# Install the pinned tools of the browser tests into TARGET_DIR/ui-tools.
#
# Today that is axe-core (npm): tests/e2e inject its axe.min.js into each page and require zero
# accessibility violations. Pinned by scripts/ui-tools/package-lock.json (install-npm-tools.sh
# says how to move to a newer release).
#
#   bash scripts/install-ui-tools.sh .tools    # then: .tools/ui-tools/node_modules/axe-core/axe.min.js
set -euo pipefail
target="${1:?usage: install-ui-tools.sh TARGET_DIR}"
bash "$(dirname "${BASH_SOURCE[0]}")/install-npm-tools.sh" ui-tools "$target" node_modules/axe-core/axe.min.js
