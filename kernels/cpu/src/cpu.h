// What the running CPU can do, decided once at load time. The build is baseline x86-64 (or arm64);
// the AVX2/FMA/F16C and AVX512-BF16 kernels carry per-function target attributes and are only called
// when this says so (never -march=native: one build runs on any x86-64).
#pragma once

namespace bs {

/** Kernel paths, each a superset of the one before: tests force a lower one to cover it. */
enum Isa : int {
  kIsaPortable = 0,    // plain C++ loops (any CPU, arm64 included)
  kIsaAvx2 = 1,        // AVX2 + FMA + F16C (the FP32 kernels)
  kIsaAvx512Bf16 = 2,  // + AVX512F/BW/VL and AVX512_BF16 (vdpbf16ps: the bf16 compute kernels)
};

inline Isa detectIsa() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))) return kIsaPortable;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bf16"))
    return kIsaAvx512Bf16;
  return kIsaAvx2;
#else
  return kIsaPortable;
#endif
}

inline bool detectAvx2() { return detectIsa() >= kIsaAvx2; }

/** The path in use (the best the CPU has unless a test or option capped it). */
Isa isa();
/** Caps the path at `cap`; a path the CPU lacks is never chosen. Returns the path now in use. */
Isa setIsa(Isa cap);
inline bool useAvx2() { return isa() >= kIsaAvx2; }

}  // namespace bs
