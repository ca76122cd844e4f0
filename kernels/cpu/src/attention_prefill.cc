// Causal prefill attention in bf16 (CPUs with AVX512_BF16, when the backend computes in bf16).
//
// A prefill chunk's attention is two matrix products per head, Q.K^T and P.V, over a context that is
// mostly in cache, so it is bound by arithmetic. The row-at-a-time kernel in attention.cc spends it on
// one horizontal sum per (row, key, head) and on 8-lane f32 FMAs for P.V (about 45 GFLOP/s per Zen 4
// core). Here both products run on vdpbf16ps with a register tile of FP32 sums, as the bf16 GEMM does
// (gemm_bf16.cc), and the task's query rows are the vector lanes (16 rows per vector, two vectors):
// - Scores are computed transposed, S^T[key][row]: the A operand is one key's dimension pair broadcast
//   straight from the cache row, the B operand the task's q packed once per head as [pair][16 rows].
// - So the online softmax is vertical: a row's max and sum over keys are lane-wise max and add across
//   key vectors, and its rescale is one vector per 16 rows; no horizontal sums, no scalar exp.
// - P.V is computed transposed too, O^T[dim][row]: A is a V dimension for a key pair broadcast from the
//   block's V packed in key pairs, B the probabilities of that key pair for 16 rows.
// All sums are FP32; q, K, P and V are rounded to bf16 (as bf16 compute does for every GEMM input, and
// as FlashAttention does for P), within the bf16 tolerance table.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "attention_prefill.h"
#include "cpu.h"
#include "simd.h"

// GCC 12 reports its own intrinsics' _mm512_undefined_* placeholders as uninitialized at -O3 (a known
// false positive of that release, as in attention_decode.cc); every vector here is written before it is read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace bs {

#if defined(__x86_64__)

static constexpr int64_t KB = 64;  // keys per block
static constexpr int64_t kLanes = 16;
static constexpr int64_t kRowPanels = kPrefillMaxRows / kLanes;  // 2: rows are lanes of two vectors
static constexpr int64_t kMaxHd = 256;
static constexpr int64_t kKeyTile = 12;  // keys per score tile: 12 x 2 sums in registers
static constexpr int64_t kDimTile = 8;   // dimensions per P.V tile: 8 x 2 sums in registers

/** Scratch of one task, in 64-byte aligned pieces. */
struct PrefillScratch {
  uint32_t* q;      // [kp][kRowPanels][16] q * scale as bf16 pairs, row r in panel r / 16, lane r % 16
  float* o;         // [hd][kRowPanels][16] running P.V sums (O^T)
  float* s;         // [KB][kRowPanels][16] scores, then probabilities (S^T, P^T)
  uint32_t* p;      // [KB / 2][kRowPanels][16] probabilities as bf16 key pairs
  uint16_t* kRows;  // [KB][2 kp] the block's K rows as bf16 when the cache is f32
  uint32_t* vPair;  // [KB / 2][dp * 16] V as bf16 key pairs: (V[2m][d], V[2m + 1][d])
  uint16_t* vRows;  // [2][dp * 16] two V rows as bf16, zero-padded
};

static size_t up64(size_t bytes) { return (bytes + 63) / 64 * 64; }

thread_local std::vector<uint8_t> tlsPrefillScratch;

static PrefillScratch prefillScratch(int64_t kp, int64_t hd, int64_t dp) {
  constexpr int64_t rowsPadded = kRowPanels * kLanes;
  const size_t sizes[] = {up64(kp * rowsPadded * 4), up64(hd * rowsPadded * 4), up64(KB * rowsPadded * 4), up64(KB / 2 * rowsPadded * 4),
                          up64(KB * 2 * kp * 2),     up64(KB / 2 * dp * 16 * 4), up64(2 * dp * 16 * 2)};
  size_t total = 64;
  for (size_t s : sizes) total += s;
  if (tlsPrefillScratch.size() < total) tlsPrefillScratch.resize(total);
  uint8_t* at = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(tlsPrefillScratch.data()) + 63) & ~uintptr_t{63});
  void* piece[7];
  for (int i = 0; i < 7; i++) {
    piece[i] = at;
    at += sizes[i];
  }
  return {static_cast<uint32_t*>(piece[0]), static_cast<float*>(piece[1]),    static_cast<float*>(piece[2]),   static_cast<uint32_t*>(piece[3]),
          static_cast<uint16_t*>(piece[4]), static_cast<uint32_t*>(piece[5]), static_cast<uint16_t*>(piece[6])};
}

/** hd elements of a cache row (f32 or bf16) as bf16, then zeros up to `padded`. */
BS_AVX512BF16 static void rowBf16(uint16_t* dst, const void* cache, int kvDtype, int64_t element, int64_t hd, int64_t padded) {
  if (kvDtype != kBF16) {
    f32RowToBf16(dst, static_cast<const float*>(cache) + element, hd, padded);
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(cache) + element;
  int64_t i = 0;
  for (; i + 32 <= hd; i += 32) _mm512_storeu_si512(dst + i, _mm512_loadu_si512(src + i));
  for (; i < hd; i++) dst[i] = src[i];
  for (; i < padded; i++) dst[i] = 0;
}

/** S^T[j][panel] = K row j . q for keys [0, NK), both row panels: NK x 2 sums in registers over kp pairs. */
template <int NK>
BS_AVX512BF16 static void scoreTile(const uint32_t* const* kRow, const uint32_t* q, int64_t kp, float* s) {
  __m512 c[NK][kRowPanels];
  for (int j = 0; j < NK; j++)
    for (int p = 0; p < kRowPanels; p++) c[j][p] = _mm512_setzero_ps();
  for (int64_t i = 0; i < kp; i++) {
    __m512i b[kRowPanels];
    for (int p = 0; p < kRowPanels; p++) b[p] = _mm512_load_si512(q + (i * kRowPanels + p) * kLanes);
    for (int j = 0; j < NK; j++) {
      const __m512i a = _mm512_set1_epi32(static_cast<int32_t>(kRow[j][i]));
      for (int p = 0; p < kRowPanels; p++)
        c[j][p] = _mm512_dpbf16_ps(c[j][p], reinterpret_cast<const __m512bh&>(a), reinterpret_cast<const __m512bh&>(b[p]));
    }
  }
  for (int j = 0; j < NK; j++)
    for (int p = 0; p < kRowPanels; p++) _mm512_store_ps(s + (j * kRowPanels + p) * kLanes, c[j][p]);
}

/** O^T[d][panel] = O^T * corr + sum over key pairs of V pair . P pair, dims [d0, d0 + ND). */
template <int ND>
BS_AVX512BF16 static void valueTile(const uint32_t* vPair, int64_t ldv, const uint32_t* p, const __m512* corr, int64_t pairs, int64_t d0, float* o) {
  __m512 c[ND][kRowPanels];
  for (int d = 0; d < ND; d++)
    for (int q = 0; q < kRowPanels; q++) c[d][q] = _mm512_mul_ps(_mm512_load_ps(o + ((d0 + d) * kRowPanels + q) * kLanes), corr[q]);
  for (int64_t m = 0; m < pairs; m++) {
    __m512i b[kRowPanels];
    for (int q = 0; q < kRowPanels; q++) b[q] = _mm512_load_si512(p + (m * kRowPanels + q) * kLanes);
    const uint32_t* v = vPair + m * ldv + d0;
    for (int d = 0; d < ND; d++) {
      const __m512i a = _mm512_set1_epi32(static_cast<int32_t>(v[d]));
      for (int q = 0; q < kRowPanels; q++)
        c[d][q] = _mm512_dpbf16_ps(c[d][q], reinterpret_cast<const __m512bh&>(a), reinterpret_cast<const __m512bh&>(b[q]));
    }
  }
  for (int d = 0; d < ND; d++)
    for (int q = 0; q < kRowPanels; q++) _mm512_store_ps(o + ((d0 + d) * kRowPanels + q) * kLanes, c[d][q]);
}

BS_AVX512BF16 static void scoreKeys(const uint32_t* const* kRow, int64_t n, const uint32_t* q, int64_t kp, float* s) {
  for (int64_t j = 0; j < n; j += kKeyTile) {
    const uint32_t* const* kr = kRow + j;
    float* sj = s + j * kRowPanels * kLanes;
    switch (std::min(kKeyTile, n - j)) {
      case 1: scoreTile<1>(kr, q, kp, sj); break;
      case 2: scoreTile<2>(kr, q, kp, sj); break;
      case 3: scoreTile<3>(kr, q, kp, sj); break;
      case 4: scoreTile<4>(kr, q, kp, sj); break;
      case 5: scoreTile<5>(kr, q, kp, sj); break;
      case 6: scoreTile<6>(kr, q, kp, sj); break;
      case 7: scoreTile<7>(kr, q, kp, sj); break;
      case 8: scoreTile<8>(kr, q, kp, sj); break;
      case 9: scoreTile<9>(kr, q, kp, sj); break;
      case 10: scoreTile<10>(kr, q, kp, sj); break;
      case 11: scoreTile<11>(kr, q, kp, sj); break;
      default: scoreTile<12>(kr, q, kp, sj); break;
    }
  }
}

BS_AVX512BF16 static void valueDims(const uint32_t* vPair, int64_t ldv, const uint32_t* p, const __m512* corr, int64_t pairs, int64_t hd, float* o) {
  for (int64_t d = 0; d < hd; d += kDimTile) {
    switch (std::min(kDimTile, hd - d)) {
      case 1: valueTile<1>(vPair, ldv, p, corr, pairs, d, o); break;
      case 2: valueTile<2>(vPair, ldv, p, corr, pairs, d, o); break;
      case 3: valueTile<3>(vPair, ldv, p, corr, pairs, d, o); break;
      case 4: valueTile<4>(vPair, ldv, p, corr, pairs, d, o); break;
      case 5: valueTile<5>(vPair, ldv, p, corr, pairs, d, o); break;
      case 6: valueTile<6>(vPair, ldv, p, corr, pairs, d, o); break;
      case 7: valueTile<7>(vPair, ldv, p, corr, pairs, d, o); break;
      default: valueTile<8>(vPair, ldv, p, corr, pairs, d, o); break;
    }
  }
}

bool prefillAttentionFits(const AttentionArgs& a) { return a.bf16Compute && isa() >= kIsaAvx512Bf16 && a.headDim > 0 && a.headDim <= kMaxHd; }

/** Two bf16 vectors' elements interleaved into dwords: (lo[i], hi[i]) in lane i. */
BS_AVX512BF16 static inline __m512i pairUp(__m256i lo, __m256i hi) {
  return _mm512_or_si512(_mm512_cvtepu16_epi32(lo), _mm512_slli_epi32(_mm512_cvtepu16_epi32(hi), 16));
}

BS_AVX512BF16 static inline __m256i toBf16(__m512 v) {
  const __m256bh b = _mm512_cvtneps_pbh(v);
  return reinterpret_cast<const __m256i&>(b);
}

BS_AVX512BF16 static void attendPrefill(const AttentionArgs& a, int64_t t0, int64_t rows, int64_t h0, int64_t h1) {
  constexpr int64_t lanes = kRowPanels * kLanes;
  const int64_t hd = a.headDim, width = a.heads * hd, kp = (hd + 1) / 2, dp = (hd + 15) / 16, ldv = dp * 16;
  const int32_t* slots = a.seqSlots + a.seqSlotOffsets[a.rowSeq[t0]];
  // Each lane's context length; lanes past `rows` see nothing, so every score there is masked.
  alignas(64) int32_t ctx[lanes];
  int64_t maxCtx = 0;
  for (int64_t r = 0; r < lanes; r++) {
    ctx[r] = r < rows ? a.rowCtxLen[t0 + r] : 0;
    maxCtx = std::max<int64_t>(maxCtx, ctx[r]);
  }
  __m512i ctxV[kRowPanels];
  for (int p = 0; p < kRowPanels; p++) ctxV[p] = _mm512_load_si512(ctx + p * kLanes);
  const PrefillScratch w = prefillScratch(kp, hd, dp);
  // K pairs are read in place from a bf16 cache (an even hd keeps each row's pairs whole dwords).
  const bool kInPlace = a.kvDtype == kBF16 && hd % 2 == 0;
  // V rows too, where hd is whole 16-element chunks (no padding to add).
  const bool vInPlace = a.kvDtype == kBF16 && hd % 16 == 0;
  const __m512 minusInf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512 lowest = _mm512_set1_ps(std::numeric_limits<float>::lowest());
  const uint32_t* kRow[KB];
  alignas(64) float tmp[kLanes];
  for (int64_t h = h0; h < h1; h++) {
    for (int64_t r = 0; r < lanes; r++) {
      const float* q = a.qkv + ((t0 + std::min(r, rows - 1)) * a.heads + h) * 3 * hd;
      for (int64_t i = 0; i < kp; i++) {
        const uint32_t lo = r < rows ? f32ToBf16(q[2 * i] * a.scale) : 0;
        const uint32_t hi = r < rows && 2 * i + 1 < hd ? f32ToBf16(q[2 * i + 1] * a.scale) : 0;
        w.q[(i * kRowPanels + r / kLanes) * kLanes + r % kLanes] = lo | hi << 16;
      }
    }
    std::memset(w.o, 0, hd * lanes * 4);
    __m512 m[kRowPanels], l[kRowPanels];
    for (int p = 0; p < kRowPanels; p++) {
      m[p] = minusInf;
      l[p] = _mm512_setzero_ps();
    }
    for (int64_t j0 = 0; j0 < maxCtx; j0 += KB) {
      const int64_t n = std::min(KB, maxCtx - j0), pairs = (n + 1) / 2;
      for (int64_t j = 0; j < n; j++) {
        const int64_t element = static_cast<int64_t>(slots[j0 + j]) * width + h * hd;
        if (kInPlace) {
          kRow[j] = reinterpret_cast<const uint32_t*>(static_cast<const uint16_t*>(a.kCache) + element);
        } else {
          rowBf16(w.kRows + j * 2 * kp, a.kCache, a.kvDtype, element, hd, 2 * kp);
          kRow[j] = reinterpret_cast<const uint32_t*>(w.kRows + j * 2 * kp);
        }
      }
      scoreKeys(kRow, n, w.q, kp, w.s);
      // Online softmax, lane-wise: key j is visible to the rows whose context exceeds j0 + j.
      __m512 mNew[kRowPanels], corr[kRowPanels], sum[kRowPanels];
      for (int p = 0; p < kRowPanels; p++) mNew[p] = m[p];
      for (int64_t j = 0; j < n; j++) {
        const __m512i key = _mm512_set1_epi32(static_cast<int32_t>(j0 + j));
        for (int p = 0; p < kRowPanels; p++) {
          float* sj = w.s + (j * kRowPanels + p) * kLanes;
          const __m512 v = _mm512_mask_blend_ps(_mm512_cmpgt_epi32_mask(ctxV[p], key), minusInf, _mm512_load_ps(sj));
          _mm512_store_ps(sj, v);
          mNew[p] = _mm512_max_ps(mNew[p], v);
        }
      }
      for (int p = 0; p < kRowPanels; p++) {
        mNew[p] = _mm512_max_ps(mNew[p], lowest);  // a lane that has seen no key yet: exp(-inf - lowest) = 0
        corr[p] = exp16(_mm512_sub_ps(m[p], mNew[p]));
        sum[p] = _mm512_setzero_ps();
      }
      for (int64_t j = 0; j < n; j++) {
        for (int p = 0; p < kRowPanels; p++) {
          float* sj = w.s + (j * kRowPanels + p) * kLanes;
          const __m512 e = exp16(_mm512_sub_ps(_mm512_load_ps(sj), mNew[p]));  // masked: exp(-inf) = 0
          _mm512_store_ps(sj, e);
          sum[p] = _mm512_add_ps(sum[p], e);
        }
      }
      for (int p = 0; p < kRowPanels; p++) {
        l[p] = _mm512_fmadd_ps(l[p], corr[p], sum[p]);
        m[p] = mNew[p];
      }
      // Probabilities and V, both as bf16 key pairs (a missing odd key is zeros: 0 * 0).
      for (int64_t mm = 0; mm < pairs; mm++) {
        const bool odd = 2 * mm + 1 < n;
        for (int p = 0; p < kRowPanels; p++) {
          const __m512 e0 = _mm512_load_ps(w.s + (2 * mm * kRowPanels + p) * kLanes);
          const __m512 e1 = odd ? _mm512_load_ps(w.s + ((2 * mm + 1) * kRowPanels + p) * kLanes) : _mm512_setzero_ps();
          _mm512_store_si512(w.p + (mm * kRowPanels + p) * kLanes, pairUp(toBf16(e0), toBf16(e1)));
        }
        const int64_t e0 = static_cast<int64_t>(slots[j0 + 2 * mm]) * width + h * hd;
        const int64_t e1 = odd ? static_cast<int64_t>(slots[j0 + 2 * mm + 1]) * width + h * hd : -1;
        const uint16_t *v0, *v1;
        if (vInPlace) {
          v0 = static_cast<const uint16_t*>(a.vCache) + e0;
          v1 = odd ? static_cast<const uint16_t*>(a.vCache) + e1 : w.vRows + ldv;
        } else {
          rowBf16(w.vRows, a.vCache, a.kvDtype, e0, hd, ldv);
          if (odd) rowBf16(w.vRows + ldv, a.vCache, a.kvDtype, e1, hd, ldv);
          v0 = w.vRows;
          v1 = w.vRows + ldv;
        }
        if (!odd) std::memset(w.vRows + ldv, 0, ldv * 2);
        for (int64_t c = 0; c < dp; c++) {
          const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v0 + c * 16));
          const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v1 + c * 16));
          _mm512_store_si512(w.vPair + mm * ldv + c * 16, pairUp(lo, hi));
        }
      }
      valueDims(w.vPair, ldv, w.p, corr, pairs, hd, w.o);
    }
    for (int p = 0; p < kRowPanels; p++) {
      const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.0f), l[p]);  // lanes past `rows` are never written
      const int64_t r0 = p * kLanes, nr = std::min<int64_t>(kLanes, rows - r0);
      for (int64_t d = 0; nr > 0 && d < hd; d++) {
        _mm512_store_ps(tmp, _mm512_mul_ps(_mm512_load_ps(w.o + (d * kRowPanels + p) * kLanes), inv));
        for (int64_t r = 0; r < nr; r++) a.out[(t0 + r0 + r) * width + h * hd + d] = tmp[r];
      }
    }
  }
}

void attendPrefillBf16(const AttentionArgs& a, int64_t t0, int64_t rows, int64_t h0, int64_t h1) { attendPrefill(a, t0, rows, h0, h1); }

#else
bool prefillAttentionFits(const AttentionArgs&) { return false; }
void attendPrefillBf16(const AttentionArgs&, int64_t, int64_t, int64_t, int64_t) {}
#endif

}  // namespace bs
