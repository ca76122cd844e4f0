// Machine peaks for the kernel benchmark, measured in the same process and on the same pool as the
// kernels (one task per pool thread, independent chains, no memory traffic): FP32 FMA throughput, bf16
// dot throughput (vdpbf16ps, where the CPU has AVX512_BF16), and STREAM triad bandwidth.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "cpu.h"
#include "memory.h"
#include "ops.h"
#include "simd.h"
#include "thread_pool.h"

namespace bs {

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static std::atomic<float> sink{0};  // keeps the loops' results observable

#if defined(__x86_64__)
/** 12 independent chains cover the FMA latency x throughput product of current x86 cores. */
BS_AVX2 static int64_t fmaChainsAvx2(int64_t iters) {
  __m256 c[12];
  for (int j = 0; j < 12; j++) c[j] = _mm256_set1_ps(static_cast<float>(j) * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-6f);
  for (int64_t i = 0; i < iters; i++) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) c[j] = _mm256_fmadd_ps(c[j], m, add);
  }
  __m256 s = c[0];
  for (int j = 1; j < 12; j++) s = _mm256_add_ps(s, c[j]);
  sink.store(hsum(s), std::memory_order_relaxed);
  return iters * 12 * 8 * 2;
}
#endif

static int64_t fmaChainsScalar(int64_t iters) {
  float c[16];
  for (int j = 0; j < 16; j++) c[j] = static_cast<float>(j) * 1e-3f;
  for (int64_t i = 0; i < iters; i++)
    for (int j = 0; j < 16; j++) c[j] = c[j] * 0.999999f + 1e-6f;
  float s = 0;
  for (float v : c) s += v;
  sink.store(s, std::memory_order_relaxed);
  return iters * 16 * 2;
}

static int64_t fmaChains(int64_t iters) {
#if defined(__x86_64__)
  if (useAvx2()) return fmaChainsAvx2(iters);
#endif
  return fmaChainsScalar(iters);
}

/** FLOP/s of `chains` (returns FLOPs done in `iters` iterations): calibrate on one thread, then run every
 * thread for about `seconds`; best of three. Shared by the FP32 FMA and the bf16 dot probes. */
template <typename Chains>
static double measurePeak(Chains chains, double seconds) {
  int64_t iters = 1 << 16;
  double t0 = now();
  chains(iters);
  const double single = std::max(1e-6, now() - t0);
  iters = std::max<int64_t>(iters, static_cast<int64_t>(iters * (seconds / 3) / single));
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    std::atomic<int64_t> flops{0};
    t0 = now();
    pool().parallelFor(pool().threads(), [&](int64_t, int) { flops.fetch_add(chains(iters)); });
    best = std::max(best, static_cast<double>(flops.load()) / (now() - t0));
  }
  return best;
}

double measurePeakFlops(double seconds) { return measurePeak(fmaChains, seconds); }

#if defined(__x86_64__)
/** 12 independent vdpbf16ps chains on zmm: each adds 16 lanes x 2 products (4 FLOPs a lane). */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static int64_t dotChainsBf16(int64_t iters) {
  __m512 c[12];
  for (int j = 0; j < 12; j++) c[j] = _mm512_set1_ps(static_cast<float>(j) * 1e-3f);
  // bf16 pairs of 1e-3 and -1e-3: the sums stay bounded however long the loop runs.
  const __m512i a = _mm512_set1_epi32(static_cast<int32_t>(0x3a83u | (0xba83u << 16)));
  const __m512i b = _mm512_set1_epi32(static_cast<int32_t>(0x3a83u | (0x3a83u << 16)));
  for (int64_t i = 0; i < iters; i++) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; j++) c[j] = _mm512_dpbf16_ps(c[j], reinterpret_cast<const __m512bh&>(a), reinterpret_cast<const __m512bh&>(b));
  }
  __m512 s = c[0];
  for (int j = 1; j < 12; j++) s = _mm512_add_ps(s, c[j]);
  sink.store(_mm512_reduce_add_ps(s), std::memory_order_relaxed);
  return iters * 12 * 16 * 4;
}
#endif

double measurePeakBf16Flops(double seconds) {
#if defined(__x86_64__)
  if (isa() < kIsaAvx512Bf16) return 0.0;
  return measurePeak(dotChainsBf16, seconds);
#else
  (void)seconds;
  return 0.0;
#endif
}

double measureTriadBytesPerSecond(int64_t elements, int repeats) {
  const int threads = pool().threads();
  // Same allocator as tensors (huge pages where the kernel grants them), so the probe and the kernels
  // stream memory under the same TLB conditions.
  auto alloc = [&] { return std::unique_ptr<float, decltype(&std::free)>(static_cast<float*>(alignedZeroed(elements * 4)), &std::free); };
  auto pa = alloc(), pb = alloc(), pc = alloc();
  if (!pa || !pb || !pc) return 0.0;
  float* a = pa.get();
  float* b = pb.get();
  float* c = pc.get();
  const int64_t chunk = (elements + threads - 1) / threads;
  auto slice = [&](int t, auto&& body) {
    const int64_t i0 = t * chunk, i1 = std::min(elements, i0 + chunk);
    body(i0, i1);
  };
  // First touch by the thread that will stream each slice.
  pool().parallelFor(threads, [&](int64_t t, int) {
    slice(static_cast<int>(t), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) { a[i] = 0; b[i] = 1.0f; c[i] = 2.0f; }
    });
  });
  double best = 0;
  for (int rep = 0; rep < repeats; rep++) {
    const double t0 = now();
    pool().parallelFor(threads, [&](int64_t t, int) {
      slice(static_cast<int>(t), [&](int64_t i0, int64_t i1) {
        float* __restrict ra = a;
        const float* __restrict rb = b;
        const float* __restrict rc = c;
        for (int64_t i = i0; i < i1; i++) ra[i] = rb[i] + 3.0f * rc[i];
      });
    });
    best = std::max(best, 3.0 * 4.0 * static_cast<double>(elements) / (now() - t0));
  }
  sink.store(a[elements / 2], std::memory_order_relaxed);
  return best;
}

}  // namespace bs
