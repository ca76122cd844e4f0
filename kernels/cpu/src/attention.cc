// Attention over the slot-addressed KV cache (see AttentionPlan in kernels/backend.ts): causal prefill
// chunks, single-query decode over paged slots and the token decoder's local window are all "row t
// attends to the first rowCtxLen[t] slots of its sequence". Online softmax over blocks of kBlock slots:
// one pass over K and V, no context-length scratch.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention_decode.h"
#include "attention_prefill.h"
#include "cpu.h"
#include "ops.h"
#include "simd.h"
#include "thread_pool.h"

namespace bs {

static constexpr int64_t kMaxHeadDim = 1024;  // the binding rejects wider heads
static constexpr int64_t kBlock = 32;

static void attendScalar(const AttentionArgs& a, int64_t t, int64_t h) {
  const int64_t hd = a.headDim, width = a.heads * hd;
  const int32_t seq = a.rowSeq[t], ctx = a.rowCtxLen[t];
  const int32_t* slots = a.seqSlots + a.seqSlotOffsets[seq];
  const float* q = a.qkv + (t * a.heads + h) * 3 * hd;
  float acc[kMaxHeadDim] = {0};
  float p[kBlock];
  float runningMax = -std::numeric_limits<float>::infinity(), runningSum = 0;
  for (int64_t j0 = 0; j0 < ctx; j0 += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, ctx - j0);
    float blockMax = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; j++) {
      const int64_t k = static_cast<int64_t>(slots[j0 + j]) * width + h * hd;
      float dot = 0;
      for (int64_t i = 0; i < hd; i++) dot += q[i] * loadScalar(a.kCache, a.kvDtype, k + i);
      p[j] = dot * a.scale;
      blockMax = std::max(blockMax, p[j]);
    }
    const float newMax = std::max(runningMax, blockMax);
    const float correction = std::exp(runningMax - newMax);
    runningSum *= correction;
    for (int64_t i = 0; i < hd; i++) acc[i] *= correction;
    for (int64_t j = 0; j < n; j++) {
      p[j] = std::exp(p[j] - newMax);
      runningSum += p[j];
      const int64_t v = static_cast<int64_t>(slots[j0 + j]) * width + h * hd;
      for (int64_t i = 0; i < hd; i++) acc[i] += p[j] * loadScalar(a.vCache, a.kvDtype, v + i);
    }
    runningMax = newMax;
  }
  float* o = a.out + t * width + h * hd;
  for (int64_t i = 0; i < hd; i++) o[i] = acc[i] / runningSum;
}

#if defined(__x86_64__)
// Cache rows are in dtype D (f32, or bf16 for the bf16 KV cache: half the bytes to stream, widened to
// f32 in registers, every product and sum in f32). A cache row is (cache, element index).

/** q . k over hd elements (any hd: the tail past a multiple of 8 is scalar). */
template <int D>
BS_AVX2 static inline float dot(const float* q, const void* kc, int64_t k, int64_t hd) {
  __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= hd; i += 16) {
    d0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8<D>(kc, k + i), d0);
    d1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load8<D>(kc, k + i + 8), d1);
  }
  if (i + 8 <= hd) {
    d0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8<D>(kc, k + i), d0);
    i += 8;
  }
  float s = hsum(_mm256_add_ps(d0, d1));
  for (; i < hd; i++) s += q[i] * loadScalar(kc, D, k + i);
  return s;
}

/** acc[0, hd) += p * v[0, hd). */
template <int D>
BS_AVX2 static inline void axpy(float* acc, float p, const void* vc, int64_t v, int64_t hd) {
  const __m256 pv = _mm256_set1_ps(p);
  int64_t i = 0;
  for (; i + 8 <= hd; i += 8) _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(pv, load8<D>(vc, v + i), _mm256_loadu_ps(acc + i)));
  for (; i < hd; i++) acc[i] += p * loadScalar(vc, D, v + i);
}

/**
 * Scores of one cached bf16 K row against nh heads of q (bf16 too, pre-scaled): p[h * pStride] =
 * q[h] . k[h * hd ..] for h < nh, by vdpbf16ps (32 products per instruction, FP32 sums). Masked loads
 * cover any hd (zeros past the end contribute nothing).
 */
BS_AVX512BF16 static void dotHeadsBf16(const uint16_t* q, int64_t qStride, const uint16_t* k, int64_t nh, int64_t hd, float* p, int64_t pStride) {
  for (int64_t h = 0; h < nh; h++) {
    const uint16_t* qh = q + h * qStride;
    const uint16_t* kh = k + h * hd;
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= hd; i += 32) {
      const __m512i qv = _mm512_loadu_si512(qh + i), kv = _mm512_loadu_si512(kh + i);
      acc = _mm512_dpbf16_ps(acc, reinterpret_cast<const __m512bh&>(qv), reinterpret_cast<const __m512bh&>(kv));
    }
    if (i < hd) {
      const __mmask32 m = static_cast<__mmask32>((uint64_t{1} << (hd - i)) - 1);
      const __m512i qv = _mm512_maskz_loadu_epi16(m, qh + i), kv = _mm512_maskz_loadu_epi16(m, kh + i);
      acc = _mm512_dpbf16_ps(acc, reinterpret_cast<const __m512bh&>(qv), reinterpret_cast<const __m512bh&>(kv));
    }
    p[h * pStride] = _mm512_reduce_add_ps(acc);
  }
}

// Slots run contiguously inside a KV page, and the hardware prefetcher follows such a run by itself;
// where the next slot jumps elsewhere (a new page, or a scattered test layout) nothing can predict it, so
// the row that starts each run is fetched kJumpAhead slots early.
static constexpr int64_t kJumpAhead = 8;

template <int D, int Hint = _MM_HINT_T0>
BS_AVX2 static inline void prefetchRunStart(const void* cache, const int32_t* slots, int64_t j, int64_t ctx, int64_t width, int64_t off, int64_t elements) {
  if (j >= ctx || (j > 0 && slots[j] == slots[j - 1] + 1)) return;
  constexpr int64_t esize = D == kF32 ? 4 : 2;
  const char* c = static_cast<const char*>(cache) + (static_cast<int64_t>(slots[j]) * width + off) * esize;
  for (int64_t b = 0; b < elements * esize; b += 64) _mm_prefetch(c + b, static_cast<_mm_hint>(Hint));
}

/** Dot products of q with four key rows at once (one horizontal reduction for all four). */
template <int D>
BS_AVX2 static inline __m128 dot4(const float* q, const void* kc, int64_t k0, int64_t k1, int64_t k2, int64_t k3, int64_t hd) {
  __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps(), d2 = _mm256_setzero_ps(), d3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= hd; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    d0 = _mm256_fmadd_ps(qv, load8<D>(kc, k0 + i), d0);
    d1 = _mm256_fmadd_ps(qv, load8<D>(kc, k1 + i), d1);
    d2 = _mm256_fmadd_ps(qv, load8<D>(kc, k2 + i), d2);
    d3 = _mm256_fmadd_ps(qv, load8<D>(kc, k3 + i), d3);
  }
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(d0, d1), _mm256_hadd_ps(d2, d3));
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  if (i < hd) {
    alignas(16) float tail[4] = {0, 0, 0, 0};
    for (; i < hd; i++) {
      tail[0] += q[i] * loadScalar(kc, D, k0 + i); tail[1] += q[i] * loadScalar(kc, D, k1 + i);
      tail[2] += q[i] * loadScalar(kc, D, k2 + i); tail[3] += q[i] * loadScalar(kc, D, k3 + i);
    }
    r = _mm_add_ps(r, _mm_load_ps(tail));
  }
  return r;
}

/** acc[0, 8*NV) += sum_j p[j] * V[slots[j]][off, off + 8*NV): NV accumulators live in registers. */
template <int NV, int D>
BS_AVX2 static void accumulatePV(float* acc, const float* p, const void* vCache, const int32_t* slots, int64_t n, int64_t width, int64_t off) {
  __m256 r[NV];
  for (int v = 0; v < NV; v++) r[v] = _mm256_loadu_ps(acc + 8 * v);
  for (int64_t j = 0; j < n; j++) {
    const __m256 pj = _mm256_set1_ps(p[j]);
    const int64_t vr = static_cast<int64_t>(slots[j]) * width + off;
    for (int v = 0; v < NV; v++) r[v] = _mm256_fmadd_ps(pj, load8<D>(vCache, vr + 8 * v), r[v]);
  }
  for (int v = 0; v < NV; v++) _mm256_storeu_ps(acc + 8 * v, r[v]);
}

/**
 * Heads [h0, h1) of query rows t0 .. t0+R-1, which belong to one sequence (a prefill chunk; R = 1 for
 * decode). All heads and rows walk the same slots, so each cached K/V row is read from memory once per
 * task, front to back (3 KiB for d = 768), and the rows of a chunk share it from L1 instead of each
 * streaming the whole context from L3.
 */
template <int D>
BS_AVX2 static void attendRowsAvx2(const AttentionArgs& a, int64_t t0, int64_t R, int64_t h0, int64_t h1, float* scratch) {
  const int64_t hd = a.headDim, hdPad = (hd + 7) / 8 * 8, width = a.heads * hd, nh = h1 - h0;
  const int64_t lanes = R * nh;  // one softmax state per (row, head): lane = r * nh + h
  const int32_t* slots = a.seqSlots + a.seqSlotOffsets[a.rowSeq[t0]];
  float* qs = scratch;                 // [lanes][hdPad] q pre-multiplied by the scale
  float* acc = qs + lanes * hdPad;     // [lanes][hdPad]
  float* p = acc + lanes * hdPad;      // [lanes][kBlock]
  float* runningMax = p + lanes * kBlock;
  float* runningSum = runningMax + lanes;
  // A bf16 cache on an AVX512_BF16 CPU takes its scores by vdpbf16ps from q rounded to bf16 as well.
  const bool dp = D == kBF16 && isa() >= kIsaAvx512Bf16;
  uint16_t* qb = reinterpret_cast<uint16_t*>(runningSum + lanes);  // [lanes][hdPad] when dp
  const uint16_t* kb = static_cast<const uint16_t*>(a.kCache);
  int64_t maxCtx = 0;
  for (int64_t r = 0; r < R; r++) {
    maxCtx = std::max<int64_t>(maxCtx, a.rowCtxLen[t0 + r]);
    for (int64_t h = 0; h < nh; h++) {
      const int64_t l = r * nh + h;
      const float* q = a.qkv + ((t0 + r) * a.heads + h0 + h) * 3 * hd;
      for (int64_t i = 0; i < hdPad; i++) {
        qs[l * hdPad + i] = i < hd ? q[i] * a.scale : 0.0f;
        acc[l * hdPad + i] = 0.0f;
        if (dp) qb[l * hdPad + i] = f32ToBf16(qs[l * hdPad + i]);
      }
      runningMax[l] = -std::numeric_limits<float>::infinity();
      runningSum[l] = 0.0f;
    }
  }
  // A decode row whose slots come in runs (KV pages) streams them row by row; one whose slots are
  // scattered one by one (mean run under 4) takes the four-rows-at-once path with every row prefetched,
  // which keeps more misses in flight there (measured: 15.5 vs 21.5 GB/s on single-slot runs).
  int64_t runStarts = 0;
  for (int64_t j = 0; j < maxCtx; j++) runStarts += j == 0 || slots[j] != slots[j - 1] + 1;
  const bool rowSequential = R == 1 && runStarts * 4 <= maxCtx;
  for (int64_t j0 = 0; j0 < maxCtx; j0 += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, maxCtx - j0);
    // Rows that see part of this block (causal rows near the chunk start may see none of it).
    auto visible = [&](int64_t r) { return std::min<int64_t>(n, a.rowCtxLen[t0 + r] - j0); };
    // Scores. A decode row over paged slots streams K from DRAM: one cached row at a time, front to
    // back, is what the hardware prefetcher serves at full speed (interleaved rows or software prefetch
    // measured slower). A prefill chunk (R > 1) reads a context that is mostly in cache and is bound by
    // arithmetic instead: four rows per q load and one horizontal sum per four dots; so do scattered
    // slots, where four rows in flight beat one.
    if (rowSequential) {
      for (int64_t j = 0; j < n; j++) {
        prefetchRunStart<D>(a.kCache, slots, j0 + j + kJumpAhead, maxCtx, width, h0 * hd, nh * hd);
        const int64_t k = static_cast<int64_t>(slots[j0 + j]) * width + h0 * hd;
        if (dp) dotHeadsBf16(qb, hdPad, kb + k, nh, hd, p + j, kBlock);
        else for (int64_t h = 0; h < nh; h++) p[h * kBlock + j] = dot<D>(qs + h * hdPad, a.kCache, k + h * hd, hd);
      }
    } else if (dp) {
      for (int64_t j = 0; j < n; j++) {
        prefetchRunStart<D, _MM_HINT_T0>(a.kCache, slots, j0 + j + kJumpAhead, maxCtx, width, h0 * hd, nh * hd);
        prefetchRunStart<D, _MM_HINT_T1>(a.vCache, slots, j0 + j + kJumpAhead, maxCtx, width, h0 * hd, nh * hd);
        const int64_t k = static_cast<int64_t>(slots[j0 + j]) * width + h0 * hd;
        for (int64_t r = 0; r < R; r++)
          if (visible(r) > j) dotHeadsBf16(qb + r * nh * hdPad, hdPad, kb + k, nh, hd, p + r * nh * kBlock + j, kBlock);
      }
    } else {
      int64_t j = 0;
      for (; j + 4 <= n; j += 4) {
        for (int64_t d = j0 + j + kJumpAhead; d < j0 + j + kJumpAhead + 4; d++) {
          prefetchRunStart<D, _MM_HINT_T0>(a.kCache, slots, d, maxCtx, width, h0 * hd, nh * hd);
          prefetchRunStart<D, _MM_HINT_T1>(a.vCache, slots, d, maxCtx, width, h0 * hd, nh * hd);
        }
        const int64_t k0 = static_cast<int64_t>(slots[j0 + j]) * width;
        const int64_t k1 = static_cast<int64_t>(slots[j0 + j + 1]) * width;
        const int64_t k2 = static_cast<int64_t>(slots[j0 + j + 2]) * width;
        const int64_t k3 = static_cast<int64_t>(slots[j0 + j + 3]) * width;
        for (int64_t r = 0; r < R; r++) {
          if (visible(r) <= j) continue;
          for (int64_t h = 0; h < nh; h++) {
            const int64_t o = (h0 + h) * hd, l = r * nh + h;
            _mm_storeu_ps(p + l * kBlock + j, dot4<D>(qs + l * hdPad, a.kCache, k0 + o, k1 + o, k2 + o, k3 + o, hd));
          }
        }
      }
      for (; j < n; j++) {
        const int64_t k = static_cast<int64_t>(slots[j0 + j]) * width + h0 * hd;
        for (int64_t r = 0; r < R; r++) {
          if (visible(r) <= j) continue;
          for (int64_t h = 0; h < nh; h++) p[(r * nh + h) * kBlock + j] = dot<D>(qs + (r * nh + h) * hdPad, a.kCache, k + h * hd, hd);
        }
      }
    }
    for (int64_t r = 0; r < R; r++) {
      const int64_t nr = visible(r), nr8 = (nr + 7) / 8 * 8;
      if (nr <= 0) continue;
      for (int64_t h = 0; h < nh; h++) {
        const int64_t l = r * nh + h;
        float* pl = p + l * kBlock;
        for (int64_t jj = nr; jj < nr8; jj++) pl[jj] = -std::numeric_limits<float>::infinity();
        __m256 mx = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
        for (int64_t jj = 0; jj < nr8; jj += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(pl + jj));
        const float newMax = std::max(runningMax[l], hmax(mx));
        const float correction = std::exp(runningMax[l] - newMax);  // 0 on the first block
        const __m256 nm = _mm256_set1_ps(newMax);
        __m256 sum = _mm256_setzero_ps();
        for (int64_t jj = 0; jj < nr8; jj += 8) {
          const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(pl + jj), nm));  // masked: exp(-inf) = 0
          _mm256_storeu_ps(pl + jj, e);
          sum = _mm256_add_ps(sum, e);
        }
        runningSum[l] = runningSum[l] * correction + hsum(sum);
        runningMax[l] = newMax;
        const __m256 cv = _mm256_set1_ps(correction);
        for (int64_t i = 0; i < hdPad; i += 8) _mm256_storeu_ps(acc + l * hdPad + i, _mm256_mul_ps(_mm256_loadu_ps(acc + l * hdPad + i), cv));
      }
    }
    // P.V. Paged decode: again one cached V row at a time, front to back, the accumulators in L1.
    // Otherwise lane by lane with the accumulator in registers over the whole block (V from cache, or
    // prefetched into L2 during the score pass).
    if (rowSequential || hd % 8 != 0) {
      for (int64_t j = 0; j < n; j++) {
        prefetchRunStart<D>(a.vCache, slots, j0 + j + kJumpAhead, maxCtx, width, h0 * hd, nh * hd);
        const int64_t v = static_cast<int64_t>(slots[j0 + j]) * width + h0 * hd;
        for (int64_t r = 0; r < R; r++) {
          if (visible(r) <= j) continue;
          for (int64_t h = 0; h < nh; h++) axpy<D>(acc + (r * nh + h) * hdPad, p[(r * nh + h) * kBlock + j], a.vCache, v + h * hd, hd);
        }
      }
    } else {
      for (int64_t r = 0; r < R; r++) {
        const int64_t nr = visible(r);
        if (nr <= 0) continue;
        for (int64_t h = 0; h < nh; h++) {
          const int64_t l = r * nh + h;
          for (int64_t c = 0; c < hd; c += 64) {
            float* al = acc + l * hdPad + c;
            const float* pl = p + l * kBlock;
            const int64_t off = (h0 + h) * hd + c;
            switch (std::min<int64_t>(64, hd - c) / 8) {
              case 1: accumulatePV<1, D>(al, pl, a.vCache, slots + j0, nr, width, off); break;
              case 2: accumulatePV<2, D>(al, pl, a.vCache, slots + j0, nr, width, off); break;
              case 3: accumulatePV<3, D>(al, pl, a.vCache, slots + j0, nr, width, off); break;
              case 4: accumulatePV<4, D>(al, pl, a.vCache, slots + j0, nr, width, off); break;
              case 5: accumulatePV<5, D>(al, pl, a.vCache, slots + j0, nr, width, off); break;
              case 6: accumulatePV<6, D>(al, pl, a.vCache, slots + j0, nr, width, off); break;
              case 7: accumulatePV<7, D>(al, pl, a.vCache, slots + j0, nr, width, off); break;
              default: accumulatePV<8, D>(al, pl, a.vCache, slots + j0, nr, width, off); break;
            }
          }
        }
      }
    }
  }
  for (int64_t r = 0; r < R; r++) {
    for (int64_t h = 0; h < nh; h++) {
      const int64_t l = r * nh + h;
      float* o = a.out + (t0 + r) * width + (h0 + h) * hd;
      const float inv = 1.0f / runningSum[l];
      for (int64_t i = 0; i < hd; i++) o[i] = acc[l * hdPad + i] * inv;
    }
  }
}
#endif

thread_local std::vector<float> tlsAttentionScratch;

thread_local std::vector<int64_t> tlsRowBlocks;

void attention(const AttentionArgs& a) {
  // Row blocks: up to rowsPerTask consecutive rows of one sequence (a prefill chunk) share a task, so
  // they share each K/V row read (and, in the bf16 prefill kernel, each packed block). Tasks are (row
  // block, group of heads): heads are split when there are few blocks (a single sequence decoding), so
  // every thread gets work.
  const bool prefillKernel = prefillAttentionFits(a);
  const int64_t rowsPerTask = prefillKernel ? kPrefillMaxRows : 4;
  std::vector<int64_t>& blocks = tlsRowBlocks;  // start row of each block, plus T at the end
  blocks.clear();
  for (int64_t t = 0; t < a.T;) {
    blocks.push_back(t);
    const int64_t t1 = t;
    do t++; while (t < a.T && t - t1 < rowsPerTask && a.rowSeq[t] == a.rowSeq[t1]);
  }
  blocks.push_back(a.T);
  const int64_t numBlocks = static_cast<int64_t>(blocks.size()) - 1;
  const int64_t want = 4 * pool().threads();
  const int64_t groupsPerBlock = std::min<int64_t>(a.heads, std::max<int64_t>(1, (want + numBlocks - 1) / numBlocks));
  const int64_t headsPerGroup = (a.heads + groupsPerBlock - 1) / groupsPerBlock;
  const int64_t groups = (a.heads + headsPerGroup - 1) / headsPerGroup;
  const bool decodeKernel = decodeAttentionFits(a);
  pool().parallelFor(numBlocks * groups, [&](int64_t task, int) {
    const int64_t b = task / groups, h0 = (task % groups) * headsPerGroup, h1 = std::min(a.heads, h0 + headsPerGroup);
    const int64_t t0 = blocks[b], rows = blocks[b + 1] - t0;
    if (rows == 1 && decodeKernel) {
      attendDecodeAvx512(a, t0, h0, h1);
      return;
    }
    // A chunk's rows against a context of at least half a packed block (a short window, such as the
    // token decoder's, would mostly compute padding there).
    if (prefillKernel && rows >= kPrefillMinRows && a.rowCtxLen[t0 + rows - 1] >= kPrefillMinContext) {
      attendPrefillBf16(a, t0, rows, h0, h1);
      return;
    }
#if defined(__x86_64__)
    if (useAvx2()) {
      const int64_t hdPad = (a.headDim + 7) / 8 * 8;
      // q, acc, p, max, sum, and room for q as bf16 (half a float per element) on the vdpbf16ps path.
      const size_t need = static_cast<size_t>(rows * (h1 - h0) * (3 * hdPad + kBlock + 2));
      if (tlsAttentionScratch.size() < need) tlsAttentionScratch.resize(need);
      if (a.kvDtype == kBF16) attendRowsAvx2<kBF16>(a, t0, rows, h0, h1, tlsAttentionScratch.data());
      else attendRowsAvx2<kF32>(a, t0, rows, h0, h1, tlsAttentionScratch.data());
      return;
    }
#endif
    for (int64_t t = t0; t < t0 + rows; t++)
      for (int64_t h = h0; h < h1; h++) attendScalar(a, t, h);
  });
}

}  // namespace bs
