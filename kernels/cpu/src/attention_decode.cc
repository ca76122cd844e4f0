// Single-query decode attention on the AVX-512 path (CPUs with AVX512_BF16: Zen 4, Sapphire Rapids).
// Decode streams each sequence's whole K/V cache from memory once per step, so it should run at the
// memory's speed. The AVX2 kernel in attention.cc reaches 25-30 GB/s on two Zen 4 cores from a bf16
// cache (a bare read loop: 30 GB/s on one core): it reduces every head's dot product horizontally, adds
// each V row into memory-resident sums 8 lanes at a time, and leaves the fetching to the hardware
// prefetcher. Here (33-45 GB/s on the same cache, kernels bench and interleaved A/B runs):
// - Scores: one zmm of 16 partial sums per head, then one transposing reduction for all heads of a
//   slot gives a zmm whose lane h is head h's score. Scores are kept [slot][head], so the online
//   softmax runs on 16 heads per instruction.
// - P.V from a bf16 cache: one 64-byte load is 32 values; a shift and a mask widen its even and its
//   odd elements to two f32 vectors without any shuffle. Accumulators keep that (even, odd) order per 32
//   elements and are put back in order once, at the end.
// All products and sums are FP32; a bf16 cache takes its scores by vdpbf16ps from q rounded to bf16,
// exactly as the AVX2 kernel does on this path.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention_decode.h"
#include "cpu.h"
#include "simd.h"

// GCC 12 reports its own intrinsics' _mm512_undefined_* placeholders as "maybe uninitialized" at -O3
// (a known false positive of that release); every vector here is written before it is read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace bs {

#if defined(__x86_64__)

static constexpr int64_t kSlotsPerBlock = 64;  // slots per online-softmax block ([64][16] scores: 4 KiB)
static constexpr int kHeadsPerPass = 16;       // one score per zmm lane

/** Two vectors of four 4-lane groups combined: group g of the result is (a's, b's) pairwise sums. */
BS_AVX512BF16 static inline __m512 pairSum(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}

/**
 * s[0..16) -> one vector whose lane h is the sum of the 16 lanes of s[h]. Four levels: pairs of heads
 * within 128-bit lanes (unpack), quads (shuffle), then across the 128-bit lanes (shuffle_f32x4) twice.
 */
BS_AVX512BF16 static inline __m512 reduceHeads(const __m512* s) {
  __m512 p[8], q[4];
  for (int i = 0; i < 8; i++) p[i] = pairSum(s[2 * i], s[2 * i + 1]);
  // p[i] per 128-bit group: [s2i (0+2), s2i+1 (0+2), s2i (1+3), s2i+1 (1+3)].
  for (int i = 0; i < 4; i++) {
    const __m512 a = p[2 * i], b = p[2 * i + 1];
    q[i] = _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // q[i] per 128-bit group g: heads 4i..4i+3, summed over group g's lanes.
  const __m512 r0 = _mm512_add_ps(_mm512_shuffle_f32x4(q[0], q[1], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(q[0], q[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 r1 = _mm512_add_ps(_mm512_shuffle_f32x4(q[2], q[3], _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(q[2], q[3], _MM_SHUFFLE(3, 1, 3, 1)));
  // r0 groups: heads 0-3 (groups 0+1), 0-3 (2+3), 4-7 (0+1), 4-7 (2+3); r1 likewise for heads 8-15.
  return _mm512_add_ps(_mm512_shuffle_f32x4(r0, r1, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(r0, r1, _MM_SHUFFLE(3, 1, 3, 1)));
}

// The hardware prefetcher alone keeps too few misses in flight while this loop computes (one Zen 4 core:
// 16-20 GB/s from DRAM, 25 GB/s with this), so every row is fetched kPrefetchRows rows ahead in read
// order (a block's K rows, then its V rows, then the next block's K rows) into L2. Prefetching into L1
// measured slower than none; 16 and 32 rows ahead measured alike.
static constexpr int64_t kPrefetchRows = 32;

/** One row's pass columns into L2. */
BS_AVX512BF16 static inline void prefetchRow(const char* cache, const int32_t* slots, int64_t j, int64_t rowBytes, int64_t off, int64_t bytes) {
  const char* row = cache + static_cast<int64_t>(slots[j]) * rowBytes + off;
  for (int64_t b = 0; b < bytes; b += 64) _mm_prefetch(row + b, _MM_HINT_T1);
}

/**
 * Heads [h0, h0 + nh) (nh <= 16) of decode row t. D is the cache dtype. Scratch: q (f32 or bf16),
 * acc [nh][hd] f32, scores [kSlotsPerBlock][16].
 */
template <int D, int HD>
BS_AVX512BF16 static void attendPass(const AttentionArgs& a, int64_t t, int64_t h0, int64_t nh, float* scratch) {
  constexpr int64_t esize = D == kF32 ? 4 : 2;
  constexpr int64_t chunk = D == kF32 ? 16 : 32;  // cache elements per 64-byte load
  const int64_t hd = HD > 0 ? HD : a.headDim, width = a.heads * hd, ctx = a.rowCtxLen[t];
  const int32_t* slots = a.seqSlots + a.seqSlotOffsets[a.rowSeq[t]];
  const char* kBase = static_cast<const char*>(a.kCache);
  const char* vBase = static_cast<const char*>(a.vCache);
  const int64_t rowBytes = width * esize, off = h0 * hd * esize, passBytes = nh * hd * esize;
  float* acc = scratch;                          // [nh][hd]
  float* scores = acc + kHeadsPerPass * hd;      // [kSlotsPerBlock][16]
  void* qv = scores + kSlotsPerBlock * kHeadsPerPass;  // [nh][hd] q * scale, f32 or bf16
  float* qf = static_cast<float*>(qv);
  uint16_t* qb = static_cast<uint16_t*>(qv);
  for (int64_t h = 0; h < nh; h++) {
    const float* q = a.qkv + (t * a.heads + h0 + h) * 3 * hd;
    for (int64_t i = 0; i < hd; i++) {
      if constexpr (D == kF32) qf[h * hd + i] = q[i] * a.scale;
      else qb[h * hd + i] = f32ToBf16(q[i] * a.scale);
      acc[h * hd + i] = 0.0f;
    }
  }
  constexpr int64_t pd = kPrefetchRows;
  __m512 runningMax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 runningSum = _mm512_setzero_ps();
  const __m512i oddMask = _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u));
  for (int64_t j0 = 0; j0 < ctx; j0 += kSlotsPerBlock) {
    const int64_t n = std::min<int64_t>(kSlotsPerBlock, ctx - j0);
    // Scores: one cached K row at a time, front to back.
    __m512 blockMax = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    for (int64_t j = 0; j < n; j++) {
      // Read order: this block's K rows, then its V rows.
      if (j + pd < n) prefetchRow(kBase, slots, j0 + j + pd, rowBytes, off, passBytes);
      else prefetchRow(vBase, slots, j0 + j + pd - n, rowBytes, off, passBytes);
      const char* k = kBase + static_cast<int64_t>(slots[j0 + j]) * rowBytes + off;
      __m512 s[kHeadsPerPass];
#pragma GCC unroll 16
      for (int h = 0; h < kHeadsPerPass; h++) {
        s[h] = _mm512_setzero_ps();
        if (h >= nh) continue;
        for (int64_t c = 0; c < hd; c += chunk) {
          if constexpr (D == kF32) {
            s[h] = _mm512_fmadd_ps(_mm512_loadu_ps(qf + h * hd + c), _mm512_loadu_ps(reinterpret_cast<const float*>(k) + h * hd + c), s[h]);
          } else {
            const __m512i qc = _mm512_loadu_si512(qb + h * hd + c);
            const __m512i kc = _mm512_loadu_si512(reinterpret_cast<const uint16_t*>(k) + h * hd + c);
            s[h] = _mm512_dpbf16_ps(s[h], reinterpret_cast<const __m512bh&>(qc), reinterpret_cast<const __m512bh&>(kc));
          }
        }
      }
      const __m512 sc = reduceHeads(s);
      _mm512_store_ps(scores + j * kHeadsPerPass, sc);
      blockMax = _mm512_max_ps(blockMax, sc);
    }
    // Online softmax, 16 heads per instruction (lanes past nh hold zeros and are never read back).
    const __m512 newMax = _mm512_max_ps(runningMax, blockMax);
    const __m512 correction = exp16(_mm512_sub_ps(runningMax, newMax));  // 0 on the first block
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j++) {
      const __m512 e = exp16(_mm512_sub_ps(_mm512_load_ps(scores + j * kHeadsPerPass), newMax));
      _mm512_store_ps(scores + j * kHeadsPerPass, e);
      sum = _mm512_add_ps(sum, e);
    }
    runningSum = _mm512_fmadd_ps(runningSum, correction, sum);
    runningMax = newMax;
    if (j0 > 0) {
      alignas(64) float corr[kHeadsPerPass];
      _mm512_store_ps(corr, correction);
      for (int64_t h = 0; h < nh; h++) {
        const __m512 cv = _mm512_set1_ps(corr[h]);
        for (int64_t i = 0; i < hd; i += 16) _mm512_storeu_ps(acc + h * hd + i, _mm512_mul_ps(_mm512_loadu_ps(acc + h * hd + i), cv));
      }
    }
    // P.V: one cached V row at a time, front to back; the accumulators (nh * hd floats) stay in L1.
    for (int64_t j = 0; j < n; j++) {
      // Read order: this block's V rows, then the next block's K rows.
      if (j + pd < n) prefetchRow(vBase, slots, j0 + j + pd, rowBytes, off, passBytes);
      else if (j0 + j + pd < ctx) prefetchRow(kBase, slots, j0 + j + pd, rowBytes, off, passBytes);
      const char* v = vBase + static_cast<int64_t>(slots[j0 + j]) * rowBytes + off;
      const float* pj = scores + j * kHeadsPerPass;
      for (int64_t h = 0; h < nh; h++) {
        const __m512 p = _mm512_set1_ps(pj[h]);
        float* ah = acc + h * hd;
        for (int64_t c = 0; c < hd; c += chunk) {
          if constexpr (D == kF32) {
            const __m512 vv = _mm512_loadu_ps(reinterpret_cast<const float*>(v) + h * hd + c);
            _mm512_storeu_ps(ah + c, _mm512_fmadd_ps(p, vv, _mm512_loadu_ps(ah + c)));
          } else {
            const __m512i vv = _mm512_loadu_si512(reinterpret_cast<const uint16_t*>(v) + h * hd + c);
            const __m512 even = _mm512_castsi512_ps(_mm512_slli_epi32(vv, 16));
            const __m512 odd = _mm512_castsi512_ps(_mm512_and_si512(vv, oddMask));
            _mm512_storeu_ps(ah + c, _mm512_fmadd_ps(p, even, _mm512_loadu_ps(ah + c)));
            _mm512_storeu_ps(ah + c + 16, _mm512_fmadd_ps(p, odd, _mm512_loadu_ps(ah + c + 16)));
          }
        }
      }
    }
  }
  alignas(64) float inv[kHeadsPerPass];
  _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), runningSum));
  // Back to element order: a bf16 pass holds (16 even, 16 odd) per 32 elements.
  const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  for (int64_t h = 0; h < nh; h++) {
    const __m512 iv = _mm512_set1_ps(inv[h]);
    const float* ah = acc + h * hd;
    float* o = a.out + t * width + (h0 + h) * hd;
    for (int64_t c = 0; c < hd; c += chunk) {
      if constexpr (D == kF32) {
        _mm512_storeu_ps(o + c, _mm512_mul_ps(_mm512_loadu_ps(ah + c), iv));
      } else {
        const __m512 even = _mm512_loadu_ps(ah + c), odd = _mm512_loadu_ps(ah + c + 16);
        _mm512_storeu_ps(o + c, _mm512_mul_ps(_mm512_permutex2var_ps(even, lo, odd), iv));
        _mm512_storeu_ps(o + c + 16, _mm512_mul_ps(_mm512_permutex2var_ps(even, hi, odd), iv));
      }
    }
  }
}

thread_local std::vector<float> tlsDecodeScratch;

bool decodeAttentionFits(const AttentionArgs& a) {
  if (isa() < kIsaAvx512Bf16 || a.headDim <= 0) return false;
  return a.kvDtype == kF32 ? a.headDim % 16 == 0 : a.kvDtype == kBF16 && a.headDim % 32 == 0;
}

void attendDecodeAvx512(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1) {
  // acc and q are [16][hd] at most, scores [kSlotsPerBlock][16], plus 64 bytes to align the scores.
  const size_t need = static_cast<size_t>(2 * kHeadsPerPass * a.headDim + kSlotsPerBlock * kHeadsPerPass + 16);
  if (tlsDecodeScratch.size() < need) tlsDecodeScratch.resize(need);
  float* base = tlsDecodeScratch.data();
  // The scores are read and written as aligned vectors; acc's size (16 * hd, hd % 16 == 0) keeps them so.
  float* scratch = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(base) + 63) & ~uintptr_t{63});
  for (int64_t h = h0; h < h1; h += kHeadsPerPass) {
    const int64_t nh = std::min<int64_t>(kHeadsPerPass, h1 - h);
    // Common head widths get a straight-line inner loop; others take hd at run time.
    const bool bf16 = a.kvDtype == kBF16;
    switch (a.headDim) {
      case 32: bf16 ? attendPass<kBF16, 32>(a, t, h, nh, scratch) : attendPass<kF32, 32>(a, t, h, nh, scratch); break;
      case 64: bf16 ? attendPass<kBF16, 64>(a, t, h, nh, scratch) : attendPass<kF32, 64>(a, t, h, nh, scratch); break;
      case 128: bf16 ? attendPass<kBF16, 128>(a, t, h, nh, scratch) : attendPass<kF32, 128>(a, t, h, nh, scratch); break;
      default: bf16 ? attendPass<kBF16, 0>(a, t, h, nh, scratch) : attendPass<kF32, 0>(a, t, h, nh, scratch); break;
    }
  }
}

#else
bool decodeAttentionFits(const AttentionArgs&) { return false; }
void attendDecodeAvx512(const AttentionArgs&, int64_t, int64_t, int64_t) {}
#endif

}  // namespace bs
