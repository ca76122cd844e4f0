# test/deploy/image.test.ts builds the container image with buildah; mmdebstrap makes the stand-in base
# image from Debian packages (Docker Hub is not reachable). Sourced by .ci/run as root under
# `set -euo pipefail`; idempotent and quiet. Without these tools the image test skips (the recipe test in
# test/deploy/recipe.test.ts still replays the Dockerfile's steps).
if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends buildah mmdebstrap >/dev/null
fi
