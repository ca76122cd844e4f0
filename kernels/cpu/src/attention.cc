// Attention over the slot-addressed KV cache (see AttentionPlan in kernels/backend.ts): causal prefill
// chunks, single-query decode over paged slots and the token decoder's local window are all "row t
// attends to the first rowCtxLen[t] slots of its sequence". Online softmax over blocks of kBlock slots:
// one pass over K and V, no context-length scratch.

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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
      const float* k = a.kCache + static_cast<int64_t>(slots[j0 + j]) * width + h * hd;
      float dot = 0;
      for (int64_t i = 0; i < hd; i++) dot += q[i] * k[i];
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
      const float* v = a.vCache + static_cast<int64_t>(slots[j0 + j]) * width + h * hd;
      for (int64_t i = 0; i < hd; i++) acc[i] += p[j] * v[i];
    }
    runningMax = newMax;
  }
  float* o = a.out + t * width + h * hd;
  for (int64_t i = 0; i < hd; i++) o[i] = acc[i] / runningSum;
}

#if defined(__x86_64__)
/** q . k over hd floats (q padded to a multiple of 8 with zeros is not assumed: the tail is scalar). */
BS_AVX2 static inline float dot(const float* q, const float* k, int64_t hd) {
  __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= hd; i += 16) {
    d0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), d0);
    d1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(k + i + 8), d1);
  }
  if (i + 8 <= hd) {
    d0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), d0);
    i += 8;
  }
  float s = hsum(_mm256_add_ps(d0, d1));
  for (; i < hd; i++) s += q[i] * k[i];
  return s;
}

/** acc[0, hd) += p * v[0, hd). */
BS_AVX2 static inline void axpy(float* acc, float p, const float* v, int64_t hd) {
  const __m256 pv = _mm256_set1_ps(p);
  int64_t i = 0;
  for (; i + 8 <= hd; i += 8) _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(acc + i)));
  for (; i < hd; i++) acc[i] += p * v[i];
}

/**
 * Heads [h0, h1) of query rows t0 .. t0+R-1, which belong to one sequence (a prefill chunk; R = 1 for
 * decode). All heads and rows walk the same slots, so each cached K/V row is read from memory once per
 * task, front to back (3 KiB for d = 768), and the rows of a chunk share it from L1 instead of each
 * streaming the whole context from L3.
 */
BS_AVX2 static void attendRowsAvx2(const AttentionArgs& a, int64_t t0, int64_t R, int64_t h0, int64_t h1, float* scratch) {
  const int64_t hd = a.headDim, hdPad = (hd + 7) / 8 * 8, width = a.heads * hd, nh = h1 - h0;
  const int64_t lanes = R * nh;  // one softmax state per (row, head): lane = r * nh + h
  const int32_t* slots = a.seqSlots + a.seqSlotOffsets[a.rowSeq[t0]];
  float* qs = scratch;                 // [lanes][hdPad] q pre-multiplied by the scale
  float* acc = qs + lanes * hdPad;     // [lanes][hdPad]
  float* p = acc + lanes * hdPad;      // [lanes][kBlock]
  float* runningMax = p + lanes * kBlock;
  float* runningSum = runningMax + lanes;
  int64_t maxCtx = 0;
  for (int64_t r = 0; r < R; r++) {
    maxCtx = std::max<int64_t>(maxCtx, a.rowCtxLen[t0 + r]);
    for (int64_t h = 0; h < nh; h++) {
      const int64_t l = r * nh + h;
      const float* q = a.qkv + ((t0 + r) * a.heads + h0 + h) * 3 * hd;
      for (int64_t i = 0; i < hdPad; i++) {
        qs[l * hdPad + i] = i < hd ? q[i] * a.scale : 0.0f;
        acc[l * hdPad + i] = 0.0f;
      }
      runningMax[l] = -std::numeric_limits<float>::infinity();
      runningSum[l] = 0.0f;
    }
  }
  for (int64_t j0 = 0; j0 < maxCtx; j0 += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, maxCtx - j0);
    // Rows that see part of this block (causal rows near the chunk start may see none of it).
    auto visible = [&](int64_t r) { return std::min<int64_t>(n, a.rowCtxLen[t0 + r] - j0); };
    // Scores, one cached K row at a time, front to back: a single sequential stream is what the
    // hardware prefetcher serves at full speed (interleaving rows, or software prefetch, measured slower).
    for (int64_t j = 0; j < n; j++) {
      const float* k = a.kCache + static_cast<int64_t>(slots[j0 + j]) * width + h0 * hd;
      for (int64_t r = 0; r < R; r++) {
        if (visible(r) <= j) continue;
        for (int64_t h = 0; h < nh; h++) {
          const int64_t l = r * nh + h;
          p[l * kBlock + j] = dot(qs + l * hdPad, k + h * hd, hd);
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
    // P.V, again one cached V row at a time, front to back; the accumulators stay in L1.
    for (int64_t j = 0; j < n; j++) {
      const float* v = a.vCache + static_cast<int64_t>(slots[j0 + j]) * width + h0 * hd;
      for (int64_t r = 0; r < R; r++) {
        if (visible(r) <= j) continue;
        for (int64_t h = 0; h < nh; h++) {
          const int64_t l = r * nh + h;
          axpy(acc + l * hdPad, p[l * kBlock + j], v + h * hd, hd);
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
  // Row blocks: up to kRowsPerTask consecutive rows of one sequence (a prefill chunk) share a task, so
  // they share each K/V row read. Tasks are (row block, group of heads): heads are split when there are
  // few blocks (a single sequence decoding), so every thread gets work.
  constexpr int64_t kRowsPerTask = 4;
  std::vector<int64_t>& blocks = tlsRowBlocks;  // start row of each block, plus T at the end
  blocks.clear();
  for (int64_t t = 0; t < a.T;) {
    blocks.push_back(t);
    const int64_t t1 = t;
    do t++; while (t < a.T && t - t1 < kRowsPerTask && a.rowSeq[t] == a.rowSeq[t1]);
  }
  blocks.push_back(a.T);
  const int64_t numBlocks = static_cast<int64_t>(blocks.size()) - 1;
  const int64_t want = 4 * pool().threads();
  const int64_t groupsPerBlock = std::min<int64_t>(a.heads, std::max<int64_t>(1, (want + numBlocks - 1) / numBlocks));
  const int64_t headsPerGroup = (a.heads + groupsPerBlock - 1) / groupsPerBlock;
  const int64_t groups = (a.heads + headsPerGroup - 1) / headsPerGroup;
  pool().parallelFor(numBlocks * groups, [&](int64_t task, int) {
    const int64_t b = task / groups, h0 = (task % groups) * headsPerGroup, h1 = std::min(a.heads, h0 + headsPerGroup);
    const int64_t t0 = blocks[b], rows = blocks[b + 1] - t0;
#if defined(__x86_64__)
    if (useAvx2()) {
      const int64_t hdPad = (a.headDim + 7) / 8 * 8;
      const size_t need = static_cast<size_t>(rows * (h1 - h0) * (2 * hdPad + kBlock + 2));
      if (tlsAttentionScratch.size() < need) tlsAttentionScratch.resize(need);
      attendRowsAvx2(a, t0, rows, h0, h1, tlsAttentionScratch.data());
      return;
    }
#endif
    for (int64_t t = t0; t < t0 + rows; t++)
      for (int64_t h = h0; h < h1; h++) attendScalar(a, t, h);
  });
}

}  // namespace bs
