// GEMM for Linear layers. Two paths:
// - small M (decode, M <= kSmallM): stream W row by row at memory bandwidth (one sequential stream per
//   task), each W row dotted with all rows of x, which stay in L1; 16-bit weights are widened in
//   registers, so bf16 halves the bytes.
// - larger M: BLIS-style tiled GEMM. W is repacked once (cached by the binding) into f32 panels of 16
//   columns; x is read in place, 6 rows at a time (3-5 for a short tail), and an Rx16 AVX2/FMA
//   micro-kernel keeps the whole C tile in registers (12 for R = 6). K is blocked (see kBlock) and each
//   16-column B micro-panel block is read while every row group of x in the task passes over it.
// The epilogue (bias, exact-erf GELU, residual) runs on each tile while it is still in cache.

#include "gemm.h"

#include <algorithm>
#include <vector>

#include "cpu.h"
#include "simd.h"
#include "thread_pool.h"

namespace bs {

static constexpr int64_t MR = 6, NR = 16;
static constexpr int64_t MC = 96;     // rows per task (96 x 768 floats of x = 288 KiB, in L2)
static constexpr int64_t NC = 64;     // columns per task (4 B panels)
static constexpr int64_t GEMV_ROWS = 32;  // W rows per task of the portable path; the minimum for AVX2
// Above this many bytes of W the small-M path reads W one row at a time (see gemvTask).
static constexpr int64_t kGroupMaxWeightBytes = int64_t{16} << 20;

int64_t packedSize(int64_t N, int64_t K) { return (N + NR - 1) / NR * NR * K; }

void packWeights(float* dst, const void* w, int dtype, int64_t N, int64_t K) {
  const int64_t panels = (N + NR - 1) / NR;
  pool().parallelFor(panels, [&](int64_t p, int) {
    float* d = dst + p * K * NR;
    for (int64_t j = 0; j < NR; j++) {
      const int64_t n = p * NR + j;
      if (n >= N) {
        for (int64_t k = 0; k < K; k++) d[k * NR + j] = 0.0f;
      } else {
        for (int64_t k = 0; k < K; k++) d[k * NR + j] = loadScalar(w, dtype, n * K + k);
      }
    }
  });
}

// ---- scalar epilogue and portable paths ----

static void epilogueScalar(float* dst, const float* bias, const float* res, int64_t n, bool gelu) {
  for (int64_t i = 0; i < n; i++) {
    float v = dst[i] + (bias ? bias[i] : 0.0f);
    if (gelu) v = geluScalar(v);
    dst[i] = v + (res ? res[i] : 0.0f);
  }
}

thread_local std::vector<float> tlsWideRow;

/**
 * Portable GEMM (any CPU without AVX2, e.g. arm64): each W row is widened to f32 once and dotted with
 * every x row using 8 independent partial sums, which compilers turn into SIMD at baseline ISA (SSE2,
 * NEON) without -ffast-math.
 */
static void matmulScalar(const MatmulArgs& a) {
  const int64_t tasks = (a.N + GEMV_ROWS - 1) / GEMV_ROWS;
  pool().parallelFor(tasks, [&](int64_t task, int) {
    const int64_t n0 = task * GEMV_ROWS, n1 = std::min(a.N, n0 + GEMV_ROWS);
    if (static_cast<int64_t>(tlsWideRow.size()) < a.K) tlsWideRow.resize(a.K);
    float* w = tlsWideRow.data();
    for (int64_t n = n0; n < n1; n++) {
      if (a.wDtype == kF32) w = const_cast<float*>(static_cast<const float*>(a.w) + n * a.K);
      else for (int64_t k = 0; k < a.K; k++) w[k] = loadScalar(a.w, a.wDtype, n * a.K + k);
      for (int64_t m = 0; m < a.M; m++) {
        const float* x = a.x + m * a.K;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t k = 0;
        for (; k + 8 <= a.K; k += 8)
          for (int u = 0; u < 8; u++) acc[u] += x[k + u] * w[k + u];
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; k < a.K; k++) s += x[k] * w[k];
        a.out[m * a.N + n] = s;
      }
      w = tlsWideRow.data();
    }
    for (int64_t m = 0; m < a.M; m++)
      epilogueScalar(a.out + m * a.N + n0, a.bias ? a.bias + n0 : nullptr, a.residual ? a.residual + m * a.N + n0 : nullptr, n1 - n0, a.gelu);
  });
}

#if defined(__x86_64__)

BS_AVX2 void epilogueAvx2(float* dst, const float* bias, const float* res, int64_t n, bool gelu) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(dst + i);
    if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
    if (gelu) v = gelu8(v);
    if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + i));
    _mm256_storeu_ps(dst + i, v);
  }
  if (i < n) {  // tail through a padded lane buffer so GELU uses the same formula as the body
    float t[8] = {0}, b[8] = {0}, r[8] = {0};
    for (int64_t j = i; j < n; j++) {
      t[j - i] = dst[j];
      if (bias) b[j - i] = bias[j];
      if (res) r[j - i] = res[j];
    }
    __m256 v = _mm256_add_ps(_mm256_loadu_ps(t), _mm256_loadu_ps(b));
    if (gelu) v = gelu8(v);
    v = _mm256_add_ps(v, _mm256_loadu_ps(r));
    _mm256_storeu_ps(t, v);
    for (int64_t j = i; j < n; j++) dst[j] = t[j - i];
  }
}

// ---- small M: weight streaming ----

/**
 * out[m0..m0+R_M, n] = x rows . W row n for n in [n0, n1), raw sums (epilogue later). W rows are taken
 * one at a time, front to back, so the task's weights are one sequential stream (what DRAM and the
 * hardware prefetcher serve best); the x rows stay in L1. U accumulators per x row along K hide the FMA
 * latency when there are few x rows.
 */
template <int D, int R_M, int U>
BS_AVX2 static void gemvRows(const MatmulArgs& a, int64_t m0, int64_t n0, int64_t n1) {
  const int64_t K = a.K;
  constexpr int64_t esize = D == kF32 ? 4 : 2;
  // With several x rows each W byte costs several FMAs, so the loads fall behind DRAM unless W is fetched
  // well ahead (M = 8, N = 50304: 64 -> 88 GFLOP/s). A single x row leaves the core idle enough for the
  // hardware prefetcher alone, and software prefetch only got in its way (M = 1: 32 -> 38 GB/s).
  constexpr int64_t kPrefetchBytes = R_M > 1 ? 2048 : 0;
  const int64_t kMain = K / (8 * U) * (8 * U), kVec = K / 8 * 8;
  for (int64_t n = n0; n < n1; n++) {
    const char* wRow = static_cast<const char*>(a.w) + n * K * esize;
    __m256 acc[R_M][U];
    for (int i = 0; i < R_M; i++)
      for (int u = 0; u < U; u++) acc[i][u] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k < kMain; k += 8 * U) {
      if constexpr (kPrefetchBytes > 0) {
        _mm_prefetch(wRow + k * esize + kPrefetchBytes, _MM_HINT_T0);
        if constexpr (U * 8 * esize > 64) _mm_prefetch(wRow + k * esize + kPrefetchBytes + 64, _MM_HINT_T0);
      }
      for (int u = 0; u < U; u++) {
        const __m256 wv = load8<D>(a.w, n * K + k + 8 * u);
        for (int i = 0; i < R_M; i++) acc[i][u] = _mm256_fmadd_ps(_mm256_loadu_ps(a.x + (m0 + i) * K + k + 8 * u), wv, acc[i][u]);
      }
    }
    for (; k < kVec; k += 8) {
      const __m256 wv = load8<D>(a.w, n * K + k);
      for (int i = 0; i < R_M; i++) acc[i][0] = _mm256_fmadd_ps(_mm256_loadu_ps(a.x + (m0 + i) * K + k), wv, acc[i][0]);
    }
    for (int i = 0; i < R_M; i++) {
      __m256 t = acc[i][0];
      for (int u = 1; u < U; u++) t = _mm256_add_ps(t, acc[i][u]);
      float sum = hsum(t);
      for (int64_t kk = kVec; kk < K; kk++) sum += a.x[(m0 + i) * K + kk] * loadScalar(a.w, D, n * K + kk);
      a.out[(m0 + i) * a.N + n] = sum;
    }
  }
}

/**
 * out[m0..m0+RM, n..n+NW) for 2 <= M: NW W rows at a time against RM x rows, NW * RM accumulators in
 * registers. Each loaded W vector feeds RM FMAs and each x vector NW, so a k step costs NW + RM loads for
 * NW * RM FMAs (3 x 4: 7 loads per 12 FMAs) where one W row against 8 x rows costs 9 loads per 8 and the
 * loads, not the FMAs, set the pace.
 */
template <int D, int NW, int RM, bool PF>
BS_AVX2 static void gemvGroup(const MatmulArgs& a, int64_t m0, int64_t n) {
  const int64_t K = a.K, kVec = K / 8 * 8;
  __m256 acc[RM][NW];
  for (int i = 0; i < RM; i++)
    for (int w = 0; w < NW; w++) acc[i][w] = _mm256_setzero_ps();
  constexpr int64_t esize = D == kF32 ? 4 : 2;
  const char* next = static_cast<const char*>(a.w) + (n + NW) * K * esize;
  for (int64_t k = 0; k < kVec; k += 8) {
    // The last x-row pass over these W rows pulls the next NW rows into L2 (one line per row per 64
    // bytes), so the next group's first pass reads L2, not L3 or DRAM.
    if (PF && (k * esize) % 64 == 0)
      for (int w = 0; w < NW; w++) _mm_prefetch(next + (w * K + k) * esize, _MM_HINT_T1);
    __m256 wv[NW];
    for (int w = 0; w < NW; w++) wv[w] = load8<D>(a.w, (n + w) * K + k);
    for (int i = 0; i < RM; i++) {
      const __m256 xv = _mm256_loadu_ps(a.x + (m0 + i) * K + k);
      for (int w = 0; w < NW; w++) acc[i][w] = _mm256_fmadd_ps(xv, wv[w], acc[i][w]);
    }
  }
  for (int i = 0; i < RM; i++)
    for (int w = 0; w < NW; w++) {
      float sum = hsum(acc[i][w]);
      for (int64_t kk = kVec; kk < K; kk++) sum += a.x[(m0 + i) * K + kk] * loadScalar(a.w, D, (n + w) * K + kk);
      a.out[(m0 + i) * a.N + n + w] = sum;
    }
}

/** Rows [m0, m0 + rows) (rows <= 4) against W rows n .. n + NW; prefetchNext: see gemvGroup. */
template <int D, int NW>
BS_AVX2 static void gemvGroupRows(const MatmulArgs& a, int64_t m0, int64_t rows, int64_t n, bool prefetchNext) {
  const bool pf = prefetchNext && m0 + rows >= a.M;
  switch (rows) {
    case 1: pf ? gemvGroup<D, NW, 1, true>(a, m0, n) : gemvGroup<D, NW, 1, false>(a, m0, n); break;
    case 2: pf ? gemvGroup<D, NW, 2, true>(a, m0, n) : gemvGroup<D, NW, 2, false>(a, m0, n); break;
    case 3: pf ? gemvGroup<D, NW, 3, true>(a, m0, n) : gemvGroup<D, NW, 3, false>(a, m0, n); break;
    default: pf ? gemvGroup<D, NW, 4, true>(a, m0, n) : gemvGroup<D, NW, 4, false>(a, m0, n); break;
  }
}

/**
 * x rows in the next gemvGroup pass when `remaining` are left: 4 at most, and 5-7 split evenly (5 = 3 + 2,
 * not 4 + 1: a one-row pass has only NW accumulators, too few to hide the FMA latency).
 */
static inline int64_t groupPassRows(int64_t remaining) {
  if (remaining >= 8 || remaining <= 4) return std::min<int64_t>(4, remaining);
  return (remaining + 1) / 2;
}

template <int D>
BS_AVX2 static void gemvTask(const MatmulArgs& a, int64_t n0, int64_t n1) {
  constexpr int64_t esize = D == kF32 ? 4 : 2;
  if (a.M == 1) {
    gemvRows<D, 1, 8>(a, 0, n0, n1);
  } else if (a.N * a.K * esize > kGroupMaxWeightBytes) {
    // W streams from DRAM: one row at a time against all x rows keeps the read a single front-to-back
    // stream; interleaving three rows (below) measured 40 % slower there (M = 8, N = 50304).
    for (int64_t m = 0; m < a.M; m += 8) {
      switch (std::min<int64_t>(8, a.M - m)) {
        case 1: gemvRows<D, 1, 8>(a, m, n0, n1); break;
        case 2: gemvRows<D, 2, 4>(a, m, n0, n1); break;
        case 3: gemvRows<D, 3, 3>(a, m, n0, n1); break;
        case 4: gemvRows<D, 4, 2>(a, m, n0, n1); break;
        case 5: gemvRows<D, 5, 2>(a, m, n0, n1); break;
        case 6: gemvRows<D, 6, 2>(a, m, n0, n1); break;
        case 7: gemvRows<D, 7, 1>(a, m, n0, n1); break;
        default: gemvRows<D, 8, 1>(a, m, n0, n1); break;
      }
    }
  } else {
    // W fits in cache: three W rows at a time (9 KiB of f32 at K = 768: they stay in L1 while every
    // group of up to four x rows passes over them).
    int64_t n = n0;
    for (; n + 3 <= n1; n += 3)
      for (int64_t m = 0, rows; m < a.M; m += rows) gemvGroupRows<D, 3>(a, m, rows = groupPassRows(a.M - m), n, n + 6 <= n1);
    for (; n < n1; n++)
      for (int64_t m = 0, rows; m < a.M; m += rows) gemvGroupRows<D, 1>(a, m, rows = groupPassRows(a.M - m), n, false);
  }
  if (a.bias || a.gelu || a.residual)
    for (int64_t m = 0; m < a.M; m++)
      epilogueAvx2(a.out + m * a.N + n0, a.bias ? a.bias + n0 : nullptr, a.residual ? a.residual + m * a.N + n0 : nullptr, n1 - n0, a.gelu);
}

static void gemvAvx2(const MatmulArgs& a) {
  // About 8 tasks per thread: enough to rebalance when a thread loses its core, and long contiguous
  // stretches of W per task, so each thread's stream runs on instead of jumping every few KiB.
  const int64_t rows = std::max(GEMV_ROWS, (a.N + 8 * pool().threads() - 1) / (8 * pool().threads()));
  const int64_t tasks = (a.N + rows - 1) / rows;
  pool().parallelFor(tasks, [&](int64_t task, int) {
    const int64_t n0 = task * rows, n1 = std::min(a.N, n0 + rows);
    switch (a.wDtype) {
      case kF16: gemvTask<kF16>(a, n0, n1); break;
      case kBF16: gemvTask<kBF16>(a, n0, n1); break;
      default: gemvTask<kF32>(a, n0, n1); break;
    }
  });
}

// ---- tiled GEMM ----

/**
 * C[R,16] (+)= A rows [R][kc] x B panel [kc][16]; ldc is C's row stride. A is read in place, row by row
 * (R sequential streams broadcast one float at a time, which L1 serves at full speed), so no packed copy
 * of x is made: packing A cost 3-8 % of a 64-row GEMM at K = 768. R = 6 keeps 12 accumulators; the
 * 3-5 row forms finish a task's rows without computing padding rows (see panelRows).
 */
template <int R>
BS_AVX2 static void kernelRx16(int64_t kc, const float* const* Ar, const float* B, float* C, int64_t ldc, bool accumulate, const float* Bnext) {
  __m256 c0[R], c1[R];
  const float* a[R];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    c0[r] = _mm256_setzero_ps();
    c1[r] = _mm256_setzero_ps();
    a[r] = Ar[r];
  }
  for (int64_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
    if (Bnext) _mm_prefetch(reinterpret_cast<const char*>(Bnext + k * NR), _MM_HINT_T1);  // one line per k
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      const __m256 av = _mm256_broadcast_ss(a[r] + k);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
    B += NR;
  }
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) {
    float* c = C + r * ldc;
    if (accumulate) {
      c0[r] = _mm256_add_ps(c0[r], _mm256_loadu_ps(c));
      c1[r] = _mm256_add_ps(c1[r], _mm256_loadu_ps(c + 8));
    }
    _mm256_storeu_ps(c, c0[r]);
    _mm256_storeu_ps(c + 8, c1[r]);
  }
}

/**
 * Rows of the next panel when `remaining` rows are left: 6 while that leaves no short tail; 7-9 rows
 * split into two panels of 3-5 (8 = 4 + 4 rather than 6 + 2 with four padding rows: 32 rows cost 6
 * six-row passes before, now 4 six-row and 2 four-row ones); 5 or fewer in one panel.
 */
static inline int64_t panelRows(int64_t remaining) {
  if (remaining >= 10 || remaining == 6) return MR;
  if (remaining >= 7) return (remaining + 1) / 2;
  return remaining;
}

BS_AVX2 static void kernelRows(int64_t rows, int64_t kc, const float* const* Ar, const float* B, float* C, int64_t ldc, bool accumulate, const float* Bnext) {
  switch (rows) {
    case 6: kernelRx16<6>(kc, Ar, B, C, ldc, accumulate, Bnext); break;
    case 5: kernelRx16<5>(kc, Ar, B, C, ldc, accumulate, Bnext); break;
    case 4: kernelRx16<4>(kc, Ar, B, C, ldc, accumulate, Bnext); break;
    case 3: kernelRx16<3>(kc, Ar, B, C, ldc, accumulate, Bnext); break;
    case 2: kernelRx16<2>(kc, Ar, B, C, ldc, accumulate, Bnext); break;
    default: kernelRx16<1>(kc, Ar, B, C, ldc, accumulate, Bnext); break;
  }
}

/**
 * The K block of the tiled GEMM. When the packed W fits in L3 (it is re-read from there), 768: the C tile
 * is stored once per 768 k instead of loaded and stored at every block: at K = 768, N = 3072, M = 64
 * 212 -> 221 GFLOP/s and M = 256 200 -> 217 against 256 in alternating runs (384 and 512 were no better). When W streams from DRAM (the LM head), 256: a 16 KiB
 * B block and the task's x block then share L1; 768 measured 5-15 % slower there (M = 8 and 64, N = 50304).
 */
static inline int64_t kBlock(const MatmulArgs& a) {
  return packedSize(a.N, a.K) * 4 <= kGroupMaxWeightBytes ? 768 : 256;
}

/** Columns [n0, n1) of rows [m0, m1); nextN0 is where this thread's next task most likely starts (or -1). */
BS_AVX2 static void gemmTask(const MatmulArgs& a, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t nextN0) {
  const int64_t K = a.K, N = a.N, KC = kBlock(a);
  alignas(32) float edge[MR * NR];
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    const bool accumulate = k0 > 0, last = k0 + kc >= K;
    for (int64_t n = n0; n < n1; n += NR) {
      const float* Bp = a.packed + (n / NR) * K * NR + k0 * NR;
      const int64_t cols = std::min(NR, N - n);
      for (int64_t m = m0, rows; m < m1; m += rows) {
        rows = panelRows(m1 - m);
        const float* Ar[MR];
        for (int64_t r = 0; r < rows; r++) Ar[r] = a.x + (m + r) * K + k0;
        float* C = a.out + m * N + n;
        // The first panel of each B micro-panel pulls the next B micro-panel into L2 (it comes from L3
        // or DRAM otherwise, stalling the first kernel call of the next column panel).
        const float* Bnext = nullptr;
        if (m == m0) {
          if (n + NR < n1) Bnext = Bp + K * NR;                                             // next column panel
          else if (k0 + kc < K) Bnext = a.packed + (n0 / NR) * K * NR + (k0 + kc) * NR;     // next K block
          else if (nextN0 >= 0) Bnext = a.packed + (nextN0 / NR) * K * NR;                   // this thread's next task's
        }
        if (cols == NR) {
          kernelRows(rows, kc, Ar, Bp, C, N, accumulate, Bnext);
        } else {  // partial tile: compute into a full-width scratch tile, copy the valid columns
          if (accumulate)
            for (int64_t r = 0; r < rows; r++) std::copy(C + r * N, C + r * N + cols, edge + r * NR);
          kernelRows(rows, kc, Ar, Bp, edge, NR, accumulate, Bnext);
          for (int64_t r = 0; r < rows; r++) std::copy(edge + r * NR, edge + r * NR + cols, C + r * N);
        }
        if (last && (a.bias || a.gelu || a.residual)) {
          for (int64_t r = 0; r < rows; r++)
            epilogueAvx2(C + r * N, a.bias ? a.bias + n : nullptr, a.residual ? a.residual + (m + r) * N + n : nullptr, cols, a.gelu);
        }
      }
    }
  }
}

static void gemmAvx2(const MatmulArgs& a) {
  const int64_t mTasks = (a.M + MC - 1) / MC, nTasks = (a.N + NC - 1) / NC;
  pool().parallelFor(mTasks * nTasks, [&](int64_t t, int) {
    // n-major task order: consecutive tasks share B panels across the m tiles.
    const int64_t mt = t % mTasks, nt = t / mTasks;
    const int64_t nextNt = likelyNextColumnTask(t, mTasks, nTasks);
    gemmTask(a, mt * MC, std::min(a.M, (mt + 1) * MC), nt * NC, std::min(a.N, (nt + 1) * NC), nextNt < 0 ? -1 : nextNt * NC);
  });
}

#endif  // __x86_64__

int64_t likelyNextColumnTask(int64_t t, int64_t mTasks, int64_t nTasks) {
  const int64_t next = t + pool().threads();
  return next < mTasks * nTasks && next % mTasks == t % mTasks ? next / mTasks : -1;
}

void matmul(const MatmulArgs& a) {
  if (a.M == 0 || a.N == 0) return;
#if defined(__x86_64__)
  if (useAvx2()) {
    if (!a.packed || !usesTiledGemm(a.M, a.K, a.N, a.wDtype)) gemvAvx2(a);
    else gemmAvx2(a);
    return;
  }
#endif
  matmulScalar(a);
}

}  // namespace bs
