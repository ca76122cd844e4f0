# Tools for test/deploy/. Sourced by .ci/run as root under `set -euo pipefail`; idempotent and quiet.
# Without them the image and Prometheus tests skip (the recipe, schema and contract tests still run).
# - buildah + mmdebstrap: image.test.ts builds the Dockerfile with buildah; mmdebstrap makes the stand-in
#   base image from Debian packages (Docker Hub is not reachable).
# - Prometheus + promtool (Debian's build): prometheus.test.ts. Extracted from the package rather than
#   installed, so no Prometheus service is set up or started on the machine.
deploy_apt_updated=""
deploy_apt_update() { [ -n "$deploy_apt_updated" ] || { apt-get update -qq; deploy_apt_updated=1; }; }
if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then
  deploy_apt_update
  apt-get install -y -qq --no-install-recommends buildah mmdebstrap >/dev/null
fi
if [ ! -x /opt/blockserve-deploy/prometheus/usr/bin/prometheus ]; then
  deploy_deb_dir="$(mktemp -d)"
  (cd "$deploy_deb_dir" && apt-get download -qq prometheus 2>/dev/null) \
    || { deploy_apt_update; (cd "$deploy_deb_dir" && apt-get download -qq prometheus); }
  mkdir -p /opt/blockserve-deploy/prometheus
  dpkg-deb -x "$deploy_deb_dir"/prometheus_*.deb /opt/blockserve-deploy/prometheus
  rm -rf "$deploy_deb_dir"
fi
