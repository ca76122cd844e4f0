// What the running CPU can do, decided once at load time. The build is baseline x86-64 (or arm64);
// the AVX2/FMA/F16C kernels are only called when this says so.
#pragma once

namespace bs {

inline bool detectAvx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

/** True when the AVX2 kernels are in use. Tests may force the portable path. */
bool useAvx2();
void setUseAvx2(bool on);  // on is ignored (stays false) when the CPU lacks AVX2/FMA/F16C

}  // namespace bs
