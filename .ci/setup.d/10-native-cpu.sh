# Toolchain for the native CPU backend (kernels/cpu), compiled from source by `npm install` with npm's
# bundled node-gyp against the Node headers that ship in the nodejs package (no header download).
missing=()
for tool in g++ make python3; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends g++ make python3 >/dev/null
fi
if [ ! -f "$(dirname "$(dirname "$(command -v node)")")/include/node/node_api.h" ]; then
  echo "ci: Node headers missing next to $(command -v node) (install the full nodejs package)" >&2
  exit 1
fi
