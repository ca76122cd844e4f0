# syntax=docker/dockerfile:1
# blockserve container image. Build:   docker build -t blockserve .
# Variants (build args, see deploy/README.md):
#   --build-arg WEBGPU=vulkan     adds the Vulkan loader for the WebGPU backend on a GPU the runtime
#                                 hands in (docker run --gpus all / podman --device nvidia.com/gpu=all)
#   --build-arg WEBGPU=lavapipe   also adds Mesa's software Vulkan (lavapipe), to try WebGPU on a CPU
#   --target server-with-model --build-arg MODEL_DIR=path/in/context --build-arg MODEL_NAME=name
#                                 bakes a model folder into /models/<name>
# Base images are build args so a mirror or a locally made base can stand in for Docker Hub.
ARG BUILD_IMAGE=node:20-bookworm
ARG RUNTIME_IMAGE=node:20-bookworm-slim

# ---- build: install dependencies and compile the native (C++) kernels addon --------------------------
FROM ${BUILD_IMAGE} AS build
# node-gyp needs a compiler, make and Python; node:20-bookworm has them, installing keeps slimmer bases working.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
# The recipe: everything from here to the end of this stage is what test/deploy/recipe.test.ts replays in a
# fresh clone. `npm ci` installs the locked dependencies and its install step builds the native CPU addon
# with npm's node-gyp against this Node's headers (kernels/cpu/build.mjs), then compiles the TypeScript to
# dist/ (scripts/build.mjs: tsc, a dev dependency); the dev dependencies are pruned after: the server runs
# `node dist/...` and needs no TypeScript loader.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund
# Keep only what runs: of each node-gyp build folder the .node files (not object files); of the webgpu
# package the Dawn binary for this platform (it ships five, ~110 MB of them for other systems); no tests,
# no testing/ folders (fakes, test entries) and no dev benchmarks that drive those fakes (neither their
# sources nor their compiled copies): nothing in the image can serve a scripted engine.
RUN find . -path ./node_modules -prune -o -name binding.gyp -print | while read -r gyp; do \
      out="$(dirname "$gyp")/build"; \
      if [ -d "$out" ]; then find "$out" -type f ! -name '*.node' -delete && find "$out" -type d -empty -delete; fi; \
    done \
 && if [ -d node_modules/webgpu/dist ]; then \
      find node_modules/webgpu/dist -mindepth 1 -maxdepth 1 -type d ! -name "$(node -p 'process.platform + "-" + process.arch')" -exec rm -rf {} +; \
    fi \
 && find . -path ./node_modules -prune -o \( -name '*.test.ts' -o -name '*.test.js' \) -type f -print0 | xargs -0 rm -f \
 && find . -path ./node_modules -prune -o -type d -name testing -print0 | xargs -0 rm -rf \
 && rm -rf dist/test server/bench dist/server/bench loadtest/bench dist/loadtest/bench engine/bench/loop.ts dist/engine/bench/loop.js

# ---- server: the runtime image --------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS server
# none | vulkan | lavapipe: what WebGPU needs from the system (the GPU driver itself comes from the runtime).
ARG WEBGPU=none
COPY deploy/install-webgpu.sh /tmp/install-webgpu.sh
RUN sh /tmp/install-webgpu.sh "$WEBGPU" && rm /tmp/install-webgpu.sh
# The NVIDIA container toolkit mounts the driver's Vulkan ICD only when "graphics" is among these.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics
WORKDIR /app
# Owned by root and only readable by the server's user: the code cannot be changed at run time.
COPY --from=build /app /app
# Models are mounted here (docker run -v ./models:/models:ro) unless baked in (target server-with-model).
RUN mkdir -p /models
ENV NODE_ENV=production \
    BLOCKSERVE_HOST=0.0.0.0 \
    BLOCKSERVE_PORT=8000
# uid 1000 of the node base images; Kubernetes' runAsNonRoot needs the numeric id.
USER 1000:1000
EXPOSE 8000
# The server drains on SIGTERM (stops taking requests, finishes in-flight ones within --grace-s, exits 0).
# `docker stop` waits only 10 s by default: use `docker stop -t` / `--stop-timeout` above the grace.
STOPSIGNAL SIGTERM
# Liveness with node itself (no curl in the slim image); /health stays 200 while weights load.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["node", "deploy/healthcheck.mjs"]
CMD ["node", "bin/blockserve.js", "serve"]

# ---- server-with-model: the same image with a model folder baked in ------------------------------------
FROM server AS server-with-model
# A folder inside the build context holding config.json, tokenizer.json and *.safetensors; MODEL_NAME is
# the folder's name in the image, which is also the model name clients send and see.
ARG MODEL_DIR=deploy/no-model
ARG MODEL_NAME=model
# Owned by the server's user: weights saved with owner-only permissions (0600) stay readable, and no extra
# chmod layer duplicates gigabytes.
COPY --chown=1000:1000 ${MODEL_DIR}/ /models/${MODEL_NAME}/
ENV BLOCKSERVE_MODEL=/models/${MODEL_NAME}

# The default target (plain `docker build .`) is the server without a baked model.
FROM server
