// The bf16 compute GEMM (--compute-dtype bf16) for CPUs with AVX512_BF16 (Zen 4, Sapphire Rapids):
// vdpbf16ps multiplies 16 pairs of bf16 and adds them into 16 FP32 sums, twice the multiply-adds of an
// FP32 FMA per instruction, so compute-bound shapes can run up to twice as fast and bf16 weights are
// half the bytes of f32 ones.
// - W is converted once (cached by the binding) into panels of 16 output columns with k pairs
//   innermost: one 64-byte load is the B operand of one vdpbf16ps.
// - x is rounded to bf16 once per call (a few hundred KiB at most); each (row, k pair) is one 32-bit
//   broadcast, the A operand.
// - An R x NP micro-kernel keeps R rows x NP panels of FP32 sums in zmm registers over the whole K: a
//   k pair costs NP loads and R broadcasts for R * NP dot instructions. The same kernel serves decode
//   (R = 1..4 with NP = 4: enough independent sums to hide the instruction's latency) and batches
//   (R = 8, NP = 3: 24 sums), so there is no separate small-M path: at M <= 8 the panels are read once,
//   front to back per panel, which is the weight stream at memory bandwidth.
// Accumulation is FP32 throughout; only the inputs are rounded (see the bf16 tolerance table).

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "gemm.h"
#include "simd.h"
#include "thread_pool.h"

namespace bs {

static constexpr int64_t NR = 16;  // columns per panel (one zmm of FP32 sums)

static inline int64_t kPairs(int64_t K) { return (K + 1) / 2; }

int64_t packedBf16Size(int64_t N, int64_t K) { return (N + NR - 1) / NR * NR * kPairs(K) * 2; }

/** Weight element (n, k) as a bf16 word: 16-bit weights pass through (f16 via f32), f32 is rounded. */
static inline uint16_t weightBf16(const void* w, int dtype, int64_t i) {
  if (dtype == kBF16) return static_cast<const uint16_t*>(w)[i];
  return f32ToBf16(loadScalar(w, dtype, i));
}

void packWeightsBf16(uint16_t* dst, const void* w, int dtype, int64_t N, int64_t K) {
  const int64_t panels = (N + NR - 1) / NR, kp = kPairs(K);
  pool().parallelFor(panels, [&](int64_t p, int) {
    uint16_t* d = dst + p * kp * NR * 2;
    for (int64_t j = 0; j < NR; j++) {
      const int64_t n = p * NR + j;
      for (int64_t k = 0; k < 2 * kp; k++)
        d[(k / 2) * NR * 2 + j * 2 + (k & 1)] = n < N && k < K ? weightBf16(w, dtype, n * K + k) : 0;
    }
  });
}

#if defined(__x86_64__)

/** Rows of x as bf16, each padded to an even length with a zero (the last k pair's second half). */
BS_AVX512BF16 static void convertRows(uint16_t* dst, const float* x, int64_t rows, int64_t K) {
  const int64_t ld = 2 * kPairs(K);
  for (int64_t m = 0; m < rows; m++) f32RowToBf16(dst + m * ld, x + m * K, K, ld);
}

/**
 * C[R, cols] = A[R rows, 2 kp] . panels[NP] over all kp k pairs; panel p starts at B + p * kp * 32
 * words. cols <= NP * 16 columns are stored (the rest of the last panel is zero padding).
 */
template <int R, int NP>
BS_AVX512BF16 static void kernelBf16(int64_t kp, const uint16_t* A, int64_t lda, const uint16_t* B, float* C, int64_t ldc, int64_t cols,
                                     const char* next, int64_t nextLines) {
  __m512 c[R][NP];
  const int32_t* a[R];
  for (int r = 0; r < R; r++) {
    a[r] = reinterpret_cast<const int32_t*>(A + r * lda);
    for (int p = 0; p < NP; p++) c[r][p] = _mm512_setzero_ps();
  }
  const int64_t panelWords = kp * NR * 2;
  // nextLines cache lines from `next` go to L2 along the way, spread evenly over the k pairs (one per k
  // pair when four row calls share a group, up to NP when one call does).
  const int64_t perK = (nextLines + kp - 1) / kp;
  for (int64_t k = 0; k < kp; k++) {
    for (int64_t i = k * perK; i < std::min(nextLines, (k + 1) * perK); i++) _mm_prefetch(next + i * 64, _MM_HINT_T1);
    __m512i b[NP];
    for (int p = 0; p < NP; p++) b[p] = _mm512_load_si512(B + p * panelWords + k * NR * 2);
    for (int r = 0; r < R; r++) {
      const __m512i av = _mm512_set1_epi32(a[r][k]);
      for (int p = 0; p < NP; p++)
        c[r][p] = _mm512_dpbf16_ps(c[r][p], reinterpret_cast<const __m512bh&>(av), reinterpret_cast<const __m512bh&>(b[p]));
    }
  }
  for (int p = 0; p < NP; p++) {
    const int64_t left = cols - p * NR;
    const __mmask16 mask = left >= NR ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << std::max<int64_t>(0, left)) - 1);
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(C + r * ldc + p * NR, mask, c[r][p]);
  }
}

using KernelFn = void (*)(int64_t, const uint16_t*, int64_t, const uint16_t*, float*, int64_t, int64_t, const char*, int64_t);

template <int R>
static constexpr KernelFn kernelFor(int np) {
  return np == 1 ? kernelBf16<R, 1> : np == 2 ? kernelBf16<R, 2> : np == 3 ? kernelBf16<R, 3> : kernelBf16<R, 4>;
}

static KernelFn kernelFor(int64_t rows, int64_t np) {
  switch (rows) {
    case 1: return kernelFor<1>(static_cast<int>(np));
    case 2: return kernelFor<2>(static_cast<int>(np));
    case 3: return kernelFor<3>(static_cast<int>(np));
    case 4: return kernelFor<4>(static_cast<int>(np));
    case 5: return kernelFor<5>(static_cast<int>(np));
    case 6: return kernelFor<6>(static_cast<int>(np));
    case 7: return kernelFor<7>(static_cast<int>(np));
    default: return kernelFor<8>(static_cast<int>(np));
  }
}

/** Panels per kernel call for `rows` x rows: 24 sums at 5-8 rows, 4 panels (4-16 sums) below. */
static inline int64_t panelsPerCall(int64_t rows) { return rows >= 5 ? 3 : 4; }

/** Rows of the next kernel call when `remaining` are left: 8, with 9-15 split evenly (no 1-row tail). */
static inline int64_t callRows(int64_t remaining) {
  if (remaining >= 16 || remaining <= 8) return std::min<int64_t>(8, remaining);
  return (remaining + 1) / 2;
}

thread_local std::vector<uint16_t> tlsXBf16;

BS_AVX512BF16 static void matmulBf16Avx512(const MatmulArgs& a) {
  const int64_t kp = kPairs(a.K), lda = 2 * kp, panels = (a.N + NR - 1) / NR;
  std::vector<uint16_t>& xb = tlsXBf16;
  if (static_cast<int64_t>(xb.size()) < a.M * lda) xb.resize(a.M * lda);
  convertRows(xb.data(), a.x, a.M, a.K);
  // Tasks are (row block, panel range). Rows: blocks of 128 so a block's bf16 x (192 KiB at K = 768)
  // stays in L2 while the panels pass. Panels: about 8 tasks per thread in all (rebalancing when a
  // thread loses its core), in multiples of 12 panels (whole 3- and 4-panel calls).
  constexpr int64_t MC = 128;
  const int64_t mTasks = (a.M + MC - 1) / MC;
  const int64_t want = std::max<int64_t>(1, 8 * pool().threads() / mTasks);
  const int64_t perTask = std::max<int64_t>(12, (panels + want - 1) / want + 11) / 12 * 12;
  const int64_t nTasks = (panels + perTask - 1) / perTask;
  pool().parallelFor(mTasks * nTasks, [&](int64_t t, int) {
    const int64_t mt = t % mTasks, nt = t / mTasks;  // n-major: neighbouring tasks share panels
    const int64_t m0 = mt * MC, m1 = std::min(a.M, m0 + MC), p0 = nt * perTask, p1 = std::min(panels, p0 + perTask);
    // Panel groups outermost: a group's panels (72 KiB at K = 768) stay in L2 while every row of the
    // block passes over them; rows outermost would re-read each panel once per row group.
    const int64_t npMax = panelsPerCall(std::min<int64_t>(8, m1 - m0));
    // The weights stream from DRAM once per step (too big for the caches), so the first row call over a
    // panel group would wait on memory: the next group is fetched into L2 while this one computes,
    // spread over its row calls. After the task's last group that is the first group of the task this
    // thread most likely takes next.
    const int64_t nextNt = likelyNextColumnTask(t, mTasks, nTasks);
    const int64_t rowCalls = (m1 - m0 + 7) / 8;  // callRows' calls per group
    for (int64_t p = p0; p < p1; p += npMax) {
      const int64_t np = std::min(npMax, p1 - p);
      const int64_t n0 = p * NR, cols = std::min(a.N - n0, np * NR);
      int64_t nextP = p + np;
      if (nextP >= p1) nextP = nextNt < 0 ? panels : nextNt * perTask;
      const int64_t nextLines = std::min(npMax, panels - nextP) * kp * NR * 2 * 2 / 64;
      const char* next = reinterpret_cast<const char*>(a.packedBf16 + nextP * kp * NR * 2);  // nextP <= panels
      const int64_t perCall = (nextLines + rowCalls - 1) / rowCalls;
      int64_t fetched = 0;
      for (int64_t m = m0, rows; m < m1; m += rows) {
        rows = callRows(m1 - m);
        float* C = a.out + m * a.N + n0;
        const int64_t lines = std::min(perCall, nextLines - fetched);
        kernelFor(rows, np)(kp, xb.data() + m * lda, lda, a.packedBf16 + p * kp * NR * 2, C, a.N, cols, next + fetched * 64, lines);
        fetched += lines;
        if (a.bias || a.gelu || a.residual)
          for (int64_t r = 0; r < rows; r++)
            epilogueAvx2(C + r * a.N, a.bias ? a.bias + n0 : nullptr, a.residual ? a.residual + (m + r) * a.N + n0 : nullptr, cols, a.gelu);
      }
    }
  });
}
#endif  // __x86_64__

void matmulBf16(const MatmulArgs& a) {
  if (a.M == 0 || a.N == 0) return;
#if defined(__x86_64__)
  if (isa() >= kIsaAvx512Bf16 && a.packedBf16) {
    matmulBf16Avx512(a);
    return;
  }
#endif
  matmul(a);  // unreachable through the binding (it checks isa()); kept so a misuse is still correct
}

}  // namespace bs
