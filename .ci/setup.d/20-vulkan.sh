# WebGPU tests (kernels/webgpu) need a Vulkan adapter. On a machine without a GPU that is Mesa's
# lavapipe; bookworm's Mesa 22.3 is rejected by Dawn, the bookworm-backports Mesa (25.x) works.
# Sourced by .ci/run as root under `set -euo pipefail`; idempotent: skips when already installed.
if ! dpkg-query -W -f='${Status}' mesa-vulkan-drivers 2>/dev/null | grep -q 'install ok installed' \
  || ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)" ge 25; then
  if [ ! -f /etc/apt/sources.list.d/backports.sources ]; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      > /etc/apt/sources.list.d/backports.sources
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libvulkan1 >/dev/null
  apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers >/dev/null
fi
