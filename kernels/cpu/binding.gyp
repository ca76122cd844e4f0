# The native CPU backend. Built by kernels/cpu/build.mjs at `npm install` with npm's bundled node-gyp
# against the running Node's own headers (--nodedir): no network, no prebuilt binaries.
# Baseline ISA on purpose (no -march=native): AVX2/FMA/F16C code carries target attributes and is
# chosen at run time, so one build runs on any x86-64 and the same sources build on arm64.
{
  "targets": [
    {
      "target_name": "blockserve_cpu",
      "sources": ["src/addon.cc", "src/gemm.cc", "src/gemm_bf16.cc", "src/ops.cc", "src/attention.cc", "src/attention_decode.cc", "src/attention_prefill.cc", "src/machine.cc", "src/thread_pool.cc", "src/sampling.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-fno-math-errno"],
      "ldflags": ["-pthread"]
    }
  ]
}
