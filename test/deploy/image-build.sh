#!/usr/bin/env bash
# Builds the real Dockerfile with buildah and runs the image, on a machine that cannot pull from Docker Hub
# (only the Debian and npm registries are reachable). The node:20 base images are replaced by a stand-in
# made here: a minimal Debian bookworm (mmdebstrap, from Debian's mirror) plus this machine's Node 20 and
# npm, passed through the Dockerfile's BUILD_IMAGE / RUNTIME_IMAGE build args. Everything after FROM is the
# Dockerfile as written. Then the image's CMD runs (buildah run, chroot isolation: this machine's
# container runtime cannot set cgroups or rlimits) and /health, /ready, /metrics and the image's
# HEALTHCHECK command are checked.
#
#   sudo apt-get install -y buildah mmdebstrap     (as root)
#   test/deploy/image-build.sh                     (from the repository root; several minutes)
#
# Needs root, buildah and mmdebstrap (.ci/setup.d/50-deploy.sh) and a few hundred MB of downloads; run by
# test/deploy/image.test.ts. KEEP_IMAGE=1 keeps the image (localhost/blockserve:local-test) afterwards.
# WEBGPU=lavapipe builds the WebGPU variant (--build-arg WEBGPU=lavapipe) and also serves a completion with
# --backend webgpu on Mesa's software Vulkan inside the image.
set -euo pipefail
cd "$(dirname "$0")/../.."
webgpu="${WEBGPU:-none}"
for tool in buildah mmdebstrap node; do
  command -v "$tool" >/dev/null || { echo "image-build.sh: $tool is not installed" >&2; exit 2; }
done
# One build at a time on this machine: several checkouts (or people running npm test) share buildah's
# image store and the stand-in base image.
exec 9>/tmp/blockserve-image-build.lock
flock 9
work="$(mktemp -d /tmp/blockserve-image-XXXXXX)"
ctr=""
made_containers=()   # removed on exit, with the images below (unless KEEP_IMAGE)
made_images=()
cleanup() {
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  local c i
  for c in "${made_containers[@]}"; do buildah rm "$c" >/dev/null 2>&1 || true; done
  if [ -z "${KEEP_IMAGE:-}" ]; then for i in "${made_images[@]}"; do buildah rmi "$i" >/dev/null 2>&1 || true; done; fi
  rm -rf "$work"
  [ -n "${bake:-}" ] && rm -rf "$bake"
  return 0
}
trap cleanup EXIT

base=localhost/blockserve-node-base:20-bookworm
if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
  echo "== base image stand-in: Debian bookworm minbase + this machine's node $(node --version)"
  node_bin="$(command -v node)"
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"   # .../lib/node_modules/npm
  prefix="$(dirname "$(dirname "$node_bin")")"                           # /usr or /usr/local
  mmdebstrap --variant=minbase --include=ca-certificates bookworm "$work/rootfs.tar" http://deb.debian.org/debian
  mkdir -p "$work/node/usr/local/bin" "$work/node/usr/local/lib/node_modules" "$work/node/usr/local/include"
  cp "$node_bin" "$work/node/usr/local/bin/node"
  cp -a "$npm_dir" "$work/node/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$work/node/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$work/node/usr/local/bin/npx"
  # Node's headers where node-gyp looks for them (the official images ship them under /usr/local/include).
  cp -a "$prefix/include/node" "$work/node/usr/local/include/node"
  # npm's global config in the stand-in: Node's headers, and the system CA file (see the trust note below).
  printf 'nodedir=/usr/local\ncafile=/etc/ssl/certs/ca-certificates.crt\n' > "$work/node/npmrc"
  # uid 1000, as the official node images have it (user "node").
  ctr="$(buildah from scratch)"
  made_containers+=("$ctr")
  mnt="$(buildah mount "$ctr")"
  tar -xf "$work/rootfs.tar" -C "$mnt"
  # Trust what this machine trusts: behind a TLS-inspecting proxy npm's registry traffic is signed by a
  # local CA that Debian's bundle lacks (the host's npm uses this same file as its cafile; npm reads it
  # through the cafile line above, as Node itself does not use the system store).
  mkdir -p "$mnt/usr/local/share/ca-certificates"
  cp /etc/ssl/certs/ca-certificates.crt "$mnt/usr/local/share/ca-certificates/host-trust.crt"
  cp /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt"
  cp -a "$work/node/usr/local/." "$mnt/usr/local/"
  install -m 644 "$work/node/npmrc" "$mnt/usr/local/etc/npmrc" 2>/dev/null || { mkdir -p "$mnt/usr/local/etc"; install -m 644 "$work/node/npmrc" "$mnt/usr/local/etc/npmrc"; }
  chroot "$mnt" /usr/sbin/groupadd --gid 1000 node
  chroot "$mnt" /usr/sbin/useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node "$ctr"
  buildah commit --quiet "$ctr" "$base" >/dev/null
fi

echo "== buildah bud (the Dockerfile as written, base images from build args)"
start=$(date +%s)
before="$(buildah containers --quiet --notruncate | sort)"
buildah bud --isolation chroot --layers=false --format docker \
  --build-arg BUILD_IMAGE="$base" --build-arg RUNTIME_IMAGE="$base" --build-arg WEBGPU="$webgpu" \
  -t localhost/blockserve:local-test .
image_id="$(buildah images --quiet --no-trunc localhost/blockserve:local-test)"
made_images+=("$image_id")
# buildah 1.28 leaves the working container of a final stage that is only `FROM <stage>` behind: remove
# the containers this build created (and only those).
for c in $(comm -13 <(echo "$before") <(buildah containers --quiet --notruncate | sort)); do buildah rm "$c" >/dev/null; done
echo "== built in $(( $(date +%s) - start )) s; image size $(buildah images --format '{{.Size}}' localhost/blockserve:local-test)"
# --format docker keeps HEALTHCHECK (the OCI image format has no field for it).
buildah inspect --type image --format '{{.Docker.Config.Healthcheck.Test}}' localhost/blockserve:local-test | grep -q healthcheck.mjs \
  || { echo "the image lost its HEALTHCHECK" >&2; exit 1; }

echo "== no testing code in the image"
ctr="$(buildah from localhost/blockserve:local-test)"
made_containers+=("$ctr")
leftover="$(buildah run --isolation chroot "$ctr" -- find /app -path /app/node_modules -prune -o \( -name testing -o -name '*.test.*' -o -name 'fake-engine*' \) -print)"
[ -z "$leftover" ] || { echo "testing code left in the image:" >&2; echo "$leftover" >&2; exit 1; }
echo "none"

echo "== run the image's CMD as its USER"
ctr="$(buildah from localhost/blockserve:local-test)"
made_containers+=("$ctr")
cmd="$(buildah inspect --format '{{.OCIv1.Config.Cmd}}' "$ctr")"
user="$(buildah inspect --format '{{.OCIv1.Config.User}}' "$ctr")"
echo "CMD $cmd USER $user"
[ "$user" = "1000:1000" ] || { echo "image user is '$user', expected 1000:1000" >&2; exit 1; }
[ "$cmd" = "[node bin/blockserve.js serve]" ] || { echo "unexpected CMD $cmd" >&2; exit 1; }

# Starts the image's CMD with extra --env options; chroot isolation shares this machine's network, so the
# server's port is reachable on 127.0.0.1. Waits for /ready.
start_server() {
  port=18000
  while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
  buildah run --isolation chroot --env BLOCKSERVE_PORT="$port" "$@" "$ctr" -- node bin/blockserve.js serve > "$work/server.log" 2>&1 &
  server_pid=$!
  local ok="" t0; t0=$(date +%s)
  for _ in $(seq 1 360); do
    if node -e "fetch('http://127.0.0.1:$port/ready').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"; then ok=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.5
  done
  [ -n "$ok" ] || { echo "server did not become ready; log:" >&2; tail -50 "$work/server.log" >&2; exit 1; }
  echo "ready on port $port after $(( $(date +%s) - t0 )) s"
}
# SIGTERM to the server process (uid 1000 inside the chroot, a descendant of our buildah run), as the
# runtime would send it; the server must drain and exit 0.
stop_server() {
  descendants() { local c; for c in $(ps -o pid= --ppid "$1"); do echo "$c"; descendants "$c"; done; }
  local srv="" p
  for p in $(descendants "$server_pid"); do [ "$(ps -o comm= -p "$p")" = node ] && srv="$p"; done
  [ -n "$srv" ] || { echo "server process not found" >&2; exit 1; }
  kill -TERM "$srv"
  for _ in $(seq 1 80); do kill -0 "$srv" 2>/dev/null || break; sleep 0.5; done
  wait "$server_pid" && echo "server exited 0 after SIGTERM" || { echo "server exit status $?" >&2; tail -20 "$work/server.log" >&2; exit 1; }
  server_pid=""
}
request_completion() {
  node -e "fetch('http://127.0.0.1:$port/v1/completions',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({prompt:'Hello',max_tokens:8})}).then(async r=>{const b=await r.json(); console.log('completion', r.status, b.usage ? JSON.stringify(b.usage) : JSON.stringify(b).slice(0,300)); process.exit(r.status===200?0:1)})"
}

start_server
node -e "fetch('http://127.0.0.1:$port/health').then(r=>{console.log('/health', r.status); process.exit(r.status===200?0:1)})"
buildah run --isolation chroot --env BLOCKSERVE_PORT="$port" "$ctr" -- node deploy/healthcheck.mjs && echo "HEALTHCHECK command: exit 0"
node -e "fetch('http://127.0.0.1:$port/metrics').then(r=>r.text()).then(t=>{const ok=/^blockserve:num_requests_waiting\{/m.test(t); console.log('/metrics has blockserve:num_requests_waiting:', ok); process.exit(ok?0:1)})"
request_completion
stop_server

if [ "$webgpu" = none ]; then
  echo "== target server-with-model: MODEL_DIR baked in, served without any setting"
  # A tiny checkpoint from the test fixtures plus a tokenizer that fits it, in a folder of the build
  # context (test/ itself is .dockerignored); removed on exit.
  bake="$(pwd)/.image-test-model"
  mkdir -p "$bake/vanilla_tiny"
  cp test/fixtures/vanilla_tiny/config.json test/fixtures/vanilla_tiny/generation_config.json \
     test/fixtures/vanilla_tiny/model.safetensors "$bake/vanilla_tiny/"
  cp test/fixtures/byte-tokenizer/tokenizer.json "$bake/vanilla_tiny/"
  before="$(buildah containers --quiet --notruncate | sort)"
  buildah bud --isolation chroot --layers=false --format docker --quiet \
    --build-arg BUILD_IMAGE="$base" --build-arg RUNTIME_IMAGE="$base" \
    --target server-with-model --build-arg MODEL_DIR=.image-test-model/vanilla_tiny --build-arg MODEL_NAME=vanilla_tiny \
    -t localhost/blockserve:local-test-model . > /dev/null
  made_images=("$(buildah images --quiet --no-trunc localhost/blockserve:local-test-model)" "${made_images[@]}")
  for c in $(comm -13 <(echo "$before") <(buildah containers --quiet --notruncate | sort)); do buildah rm "$c" >/dev/null; done
  plain_ctr="$ctr"
  ctr="$(buildah from localhost/blockserve:local-test-model)"
  made_containers=("$ctr" "${made_containers[@]}")
  start_server
  node -e "fetch('http://127.0.0.1:$port/v1/models').then(r=>r.json()).then(b=>{const m=b.data[0]; console.log('baked model served:', m.id, 'demo:', m.demo); process.exit(m.id==='vanilla_tiny'&&m.demo===false?0:1)})"
  stop_server
  ctr="$plain_ctr"
  rm -rf "$bake"

  # Control: the plain image has no Vulkan loader, so --backend webgpu must fail with a clear reason
  # (which is what makes the WEBGPU build arg the thing that enables it).
  echo "== plain image, --backend webgpu: expect no adapter"
  if buildah run --isolation chroot --env BLOCKSERVE_PORT=0 --env BLOCKSERVE_BACKEND=webgpu "$ctr" -- node bin/blockserve.js serve > "$work/webgpu-none.log" 2>&1; then
    echo "the plain image served --backend webgpu; expected no adapter" >&2; exit 1
  fi
  grep -q 'no WebGPU adapter' "$work/webgpu-none.log" || { echo "unexpected failure:" >&2; tail -5 "$work/webgpu-none.log" >&2; exit 1; }
  echo "exited non-zero: $(grep -o 'no WebGPU adapter[^(]*' "$work/webgpu-none.log" | head -1)"
fi
if [ "$webgpu" = lavapipe ]; then
  echo "== the WebGPU variant on Mesa's software Vulkan: --backend webgpu"
  start_server --env BLOCKSERVE_BACKEND=webgpu
  request_completion
  stop_server
fi
echo "image-build.sh: OK"
