#!/bin/sh
# Installs what the WebGPU backend (the `webgpu` npm package, Dawn) needs from the system inside the image.
#   none      nothing (CPU backends only)
#   vulkan    the Vulkan loader libvulkan.so.1; the GPU's driver (its Vulkan ICD) comes from the runtime
#   lavapipe  the loader plus Mesa's software Vulkan from bookworm-backports: bookworm's own Mesa 22.3 is
#             rejected by Dawn, Mesa 25 works (see .ci/setup.d/20-vulkan.sh). For tests, not for speed.
set -eu
mode="${1:-none}"
case "$mode" in
  none) exit 0 ;;
  vulkan) extra="" ;;
  lavapipe) extra="mesa-vulkan-drivers" ;;
  *) echo "install-webgpu.sh: unknown WEBGPU value '$mode' (none | vulkan | lavapipe)" >&2; exit 2 ;;
esac
export DEBIAN_FRONTEND=noninteractive
if [ -n "$extra" ]; then
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    > /etc/apt/sources.list.d/backports.sources
fi
apt-get update
apt-get install -y --no-install-recommends libvulkan1
if [ -n "$extra" ]; then apt-get install -y --no-install-recommends -t bookworm-backports $extra; fi
rm -rf /var/lib/apt/lists/*
