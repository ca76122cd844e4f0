// GEMM for Linear layers. Two paths:
// - small M (decode, M <= kSmallM): stream W row by row at memory bandwidth, each W row dotted with all
//   rows of x while it sits in L1; 16-bit weights are widened in registers, so bf16 halves the bytes.
// - larger M: BLIS-style tiled GEMM. W is repacked once (cached by the binding) into f32 panels of 16
//   columns, x is packed per call into panels of 6 rows, and a 6x16 AVX2/FMA micro-kernel keeps the
//   whole C tile in 12 registers. K is blocked by KC so a 16-column B micro-panel stays in L1 while
//   every 6-row A panel of the task streams past it.
// The epilogue (bias, exact-erf GELU, residual) runs on each tile while it is still in cache.

#include "gemm.h"

#include <algorithm>
#include <vector>

#include "cpu.h"
#include "simd.h"
#include "thread_pool.h"

namespace bs {

static constexpr int64_t MR = 6, NR = 16, KC = 256;
static constexpr int64_t MC = 96;     // rows per task (16 A panels: 96 x KC floats = 96 KiB, in L2)
static constexpr int64_t NC = 64;     // columns per task (4 B panels)
static constexpr int64_t GEMV_ROWS = 32;  // W rows per small-M task

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

BS_AVX2 static void epilogueAvx2(float* dst, const float* bias, const float* res, int64_t n, bool gelu) {
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

/** out[m0..m0+R_M, n0..n0+R_N) = x rows . W rows, raw sums (epilogue later). */
template <int D, int R_M, int R_N>
BS_AVX2 static void gemvBlock(const MatmulArgs& a, int64_t m0, int64_t n0) {
  const int64_t K = a.K;
  __m256 acc[R_M][R_N];
  for (int i = 0; i < R_M; i++)
    for (int j = 0; j < R_N; j++) acc[i][j] = _mm256_setzero_ps();
  // Weight rows further on follow these in memory: prefetch R_N rows, at least 4 rows ahead, at the rate
  // this block consumes its own, so DRAM streams continuously instead of restarting for every short
  // group of rows (the distance covers DRAM latency even for 2-row blocks).
  constexpr int64_t esize = D == kF32 ? 4 : 2;
  constexpr int64_t ahead = R_N > 4 ? R_N : 4;
  const char* next = static_cast<const char*>(a.w) + (n0 + ahead) * K * esize;
  int64_t prefetched = 0, consumed = 0;
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    consumed += R_N * 8 * esize;
    for (; prefetched < consumed; prefetched += 64) _mm_prefetch(next + prefetched, _MM_HINT_T0);
    // Hold the smaller operand set in registers and stream the other: R_M*R_N + min(R_M, R_N) + 1 <= 16.
    if constexpr (R_M <= R_N) {
      __m256 xv[R_M];
      for (int i = 0; i < R_M; i++) xv[i] = _mm256_loadu_ps(a.x + (m0 + i) * K + k);
      for (int j = 0; j < R_N; j++) {
        const __m256 wv = load8<D>(a.w, (n0 + j) * K + k);
        for (int i = 0; i < R_M; i++) acc[i][j] = _mm256_fmadd_ps(xv[i], wv, acc[i][j]);
      }
    } else {
      __m256 wv[R_N];
      for (int j = 0; j < R_N; j++) wv[j] = load8<D>(a.w, (n0 + j) * K + k);
      for (int i = 0; i < R_M; i++) {
        const __m256 xv = _mm256_loadu_ps(a.x + (m0 + i) * K + k);
        for (int j = 0; j < R_N; j++) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
      }
    }
  }
  for (int i = 0; i < R_M; i++) {
    for (int j = 0; j < R_N; j++) {
      float s = hsum(acc[i][j]);
      for (int64_t kk = k; kk < K; kk++) s += a.x[(m0 + i) * K + kk] * loadScalar(a.w, D, (n0 + j) * K + kk);
      a.out[(m0 + i) * a.N + n0 + j] = s;
    }
  }
}

template <int D, int R_M, int R_N>
BS_AVX2 static void gemvRows(const MatmulArgs& a, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + R_N <= n1; n += R_N) gemvBlock<D, R_M, R_N>(a, m0, n);
  for (; n < n1; n++) gemvBlock<D, R_M, 1>(a, m0, n);
}

template <int D>
BS_AVX2 static void gemvTask(const MatmulArgs& a, int64_t n0, int64_t n1) {
  // Sweep the task's W rows in groups small enough to stay in L1 while every x row passes over them.
  // Register blocks (rows of x, rows of W): 6x2 keeps 8 loads per 12 FMAs; 1x8 for a single row hides
  // FMA latency with 8 independent sums.
  constexpr int64_t GROUP = 8;
  for (int64_t g = n0; g < n1; g += GROUP) {
    const int64_t g1 = std::min(n1, g + GROUP);
    for (int64_t m = 0; m < a.M;) {
      const int64_t left = a.M - m;
      if (left >= 6) { gemvRows<D, 6, 2>(a, m, g, g1); m += 6; }
      else if (left == 5) { gemvRows<D, 5, 2>(a, m, g, g1); m += 5; }
      else if (left == 4) { gemvRows<D, 4, 2>(a, m, g, g1); m += 4; }
      else if (left == 3) { gemvRows<D, 3, 4>(a, m, g, g1); m += 3; }
      else if (left == 2) { gemvRows<D, 2, 4>(a, m, g, g1); m += 2; }
      else { gemvRows<D, 1, 8>(a, m, g, g1); m += 1; }
    }
  }
  if (a.bias || a.gelu || a.residual)
    for (int64_t m = 0; m < a.M; m++)
      epilogueAvx2(a.out + m * a.N + n0, a.bias ? a.bias + n0 : nullptr, a.residual ? a.residual + m * a.N + n0 : nullptr, n1 - n0, a.gelu);
}

static void gemvAvx2(const MatmulArgs& a) {
  const int64_t tasks = (a.N + GEMV_ROWS - 1) / GEMV_ROWS;
  pool().parallelFor(tasks, [&](int64_t task, int) {
    const int64_t n0 = task * GEMV_ROWS, n1 = std::min(a.N, n0 + GEMV_ROWS);
    switch (a.wDtype) {
      case kF16: gemvTask<kF16>(a, n0, n1); break;
      case kBF16: gemvTask<kBF16>(a, n0, n1); break;
      default: gemvTask<kF32>(a, n0, n1); break;
    }
  });
}

// ---- tiled GEMM ----

/** C[6,16] (+)= A panel [kc][6] x B panel [kc][16]; ldc is C's row stride. */
BS_AVX2 static void kernel6x16(int64_t kc, const float* A, const float* B, float* C, int64_t ldc, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(B), b1 = _mm256_load_ps(B + 8);
    __m256 a;
    a = _mm256_broadcast_ss(A + 0); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
    a = _mm256_broadcast_ss(A + 1); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
    a = _mm256_broadcast_ss(A + 2); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
    a = _mm256_broadcast_ss(A + 3); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
    a = _mm256_broadcast_ss(A + 4); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
    a = _mm256_broadcast_ss(A + 5); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    A += MR;
    B += NR;
  }
  __m256* rows[6][2] = {{&c00, &c01}, {&c10, &c11}, {&c20, &c21}, {&c30, &c31}, {&c40, &c41}, {&c50, &c51}};
  for (int r = 0; r < 6; r++) {
    float* c = C + r * ldc;
    if (accumulate) {
      *rows[r][0] = _mm256_add_ps(*rows[r][0], _mm256_loadu_ps(c));
      *rows[r][1] = _mm256_add_ps(*rows[r][1], _mm256_loadu_ps(c + 8));
    }
    _mm256_storeu_ps(c, *rows[r][0]);
    _mm256_storeu_ps(c + 8, *rows[r][1]);
  }
}

/** Packs x rows into [ceil(M/6)][K][6] panels (zero rows past M). */
BS_AVX2 static void packA(float* dst, const float* x, int64_t M, int64_t K) {
  const int64_t panels = (M + MR - 1) / MR;
  pool().parallelFor(panels, [&](int64_t p, int) {
    float* d = dst + p * K * MR;
    for (int64_t r = 0; r < MR; r++) {
      const int64_t m = p * MR + r;
      if (m >= M) {
        for (int64_t k = 0; k < K; k++) d[k * MR + r] = 0.0f;
      } else {
        const float* src = x + m * K;
        for (int64_t k = 0; k < K; k++) d[k * MR + r] = src[k];
      }
    }
  });
}

thread_local std::vector<float> tlsPackedA;  // grows to the largest M*K seen, then reused

static float* packedABuffer(int64_t floats) {
  if (static_cast<int64_t>(tlsPackedA.size()) < floats) tlsPackedA.resize(floats);
  return tlsPackedA.data();
}

BS_AVX2 static void gemmTask(const MatmulArgs& a, const float* Ap, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t K = a.K, N = a.N;
  alignas(32) float edge[MR * NR];
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    const bool accumulate = k0 > 0, last = k0 + kc >= K;
    for (int64_t n = n0; n < n1; n += NR) {
      const float* Bp = a.packed + (n / NR) * K * NR + k0 * NR;
      const int64_t cols = std::min(NR, N - n);
      for (int64_t m = m0; m < m1; m += MR) {
        const float* Apanel = Ap + (m / MR) * K * MR + k0 * MR;
        const int64_t rows = std::min(MR, a.M - m);
        float* C = a.out + m * N + n;
        if (rows == MR && cols == NR) {
          kernel6x16(kc, Apanel, Bp, C, N, accumulate);
        } else {  // partial tile: compute into a full scratch tile, copy the valid part
          if (accumulate)
            for (int64_t r = 0; r < rows; r++) std::copy(C + r * N, C + r * N + cols, edge + r * NR);
          kernel6x16(kc, Apanel, Bp, edge, NR, accumulate);
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
  float* Ap = packedABuffer((a.M + MR - 1) / MR * MR * a.K);
  packA(Ap, a.x, a.M, a.K);
  const int64_t mTasks = (a.M + MC - 1) / MC, nTasks = (a.N + NC - 1) / NC;
  pool().parallelFor(mTasks * nTasks, [&](int64_t t, int) {
    // n-major task order: consecutive tasks share B panels across the m tiles.
    const int64_t mt = t % mTasks, nt = t / mTasks;
    gemmTask(a, Ap, mt * MC, std::min(a.M, (mt + 1) * MC), nt * NC, std::min(a.N, (nt + 1) * NC));
  });
}

#endif  // __x86_64__

void matmul(const MatmulArgs& a) {
  if (a.M == 0 || a.N == 0) return;
#if defined(__x86_64__)
  if (useAvx2()) {
    if (a.M <= kSmallM || !a.packed) gemvAvx2(a);
    else gemmAvx2(a);
    return;
  }
#endif
  matmulScalar(a);
}

}  // namespace bs
