// LayerNorm, add, gather, rotary, KV-cache writes and attention. Each op splits its rows over the pool;
// the AVX2 variants are used when the CPU has them, the scalar loops are the portable path.

#include "ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu.h"
#include "simd.h"
#include "thread_pool.h"

namespace bs {

/** Splits [0, n) into tasks of about `grain` items: fn(begin, end). */
template <class F>
static void parallelRanges(int64_t n, int64_t grain, F&& fn) {
  const int64_t tasks = std::max<int64_t>(1, (n + grain - 1) / grain);
  pool().parallelFor(tasks, [&](int64_t t, int) { fn(t * grain, std::min(n, (t + 1) * grain)); });
}

// ---- layerNorm ----

static void layerNormRowScalar(float* out, const float* x, const float* g, const float* b, int64_t w, float eps) {
  double mean = 0;
  for (int64_t i = 0; i < w; i++) mean += x[i];
  mean /= static_cast<double>(w);
  double var = 0;
  for (int64_t i = 0; i < w; i++) var += (x[i] - mean) * (x[i] - mean);
  const float m = static_cast<float>(mean), inv = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(w) + eps));
  for (int64_t i = 0; i < w; i++) out[i] = (x[i] - m) * inv * g[i] + b[i];
}

#if defined(__x86_64__)
BS_AVX2 static void layerNormRowAvx2(float* out, const float* x, const float* g, const float* b, int64_t w, float eps) {
  // Two passes (mean, then centered variance) as the reference does; f32 lanes summed in double.
  __m256 s = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= w; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
  double sum = hsum(s);
  for (; i < w; i++) sum += x[i];
  const float m = static_cast<float>(sum / static_cast<double>(w));
  const __m256 mv = _mm256_set1_ps(m);
  __m256 v = _mm256_setzero_ps();
  for (i = 0; i + 8 <= w; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), mv);
    v = _mm256_fmadd_ps(d, d, v);
  }
  double var = hsum(v);
  for (; i < w; i++) var += (x[i] - m) * (x[i] - m);
  const float inv = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(w) + eps));
  const __m256 iv = _mm256_set1_ps(inv);
  for (i = 0; i + 8 <= w; i += 8) {
    const __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv), iv);
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(d, _mm256_loadu_ps(g + i), _mm256_loadu_ps(b + i)));
  }
  for (; i < w; i++) out[i] = (x[i] - m) * inv * g[i] + b[i];
}
#endif

void layerNorm(float* out, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t width, float eps) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, width));
  parallelRanges(rows, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
#if defined(__x86_64__)
      if (useAvx2()) { layerNormRowAvx2(out + r * width, x + r * width, gamma, beta, width, eps); continue; }
#endif
      layerNormRowScalar(out + r * width, x + r * width, gamma, beta, width, eps);
    }
  });
}

// ---- add, gather ----

void add(float* out, const float* a, const float* b, int64_t n) {
  parallelRanges(n, 1 << 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) out[i] = a[i] + b[i];  // vectorized by the compiler (SSE2 baseline)
  });
}

void gatherRows(float* out, const void* src, int dtype, const int32_t* rows, int64_t count, int64_t outRowOffset, int64_t width) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, width));
  parallelRanges(count, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      float* dst = out + (outRowOffset + i) * width;
      const int64_t base = static_cast<int64_t>(rows[i]) * width;
      if (dtype == kF32) {
        std::memcpy(dst, static_cast<const float*>(src) + base, width * sizeof(float));
      } else {
        for (int64_t j = 0; j < width; j++) dst[j] = loadScalar(src, dtype, base + j);
      }
    }
  });
}

// ---- rotary, kvWrite ----

static constexpr int64_t kMaxHeadDim = 1024;

void rotary(float* qkv, const int32_t* positions, int64_t T, int64_t heads, int64_t headDim, int64_t rotDims, double base) {
  const int64_t half = rotDims / 2;
  // Same arithmetic as the reference (and torch's f32 tables): inverse frequencies and angles rounded
  // to f32, cos/sin of the f32 angle, the rotation itself in double rounded once.
  float invFreq[kMaxHeadDim / 2];
  for (int64_t i = 0; i < half; i++) {
    const float e = static_cast<float>(static_cast<double>(2 * i) / static_cast<double>(rotDims));
    const float p = static_cast<float>(std::pow(base, static_cast<double>(e)));
    invFreq[i] = static_cast<float>(1.0 / static_cast<double>(p));
  }
  parallelRanges(T, std::max<int64_t>(1, 64 / std::max<int64_t>(1, heads)), [&](int64_t t0, int64_t t1) {
    double c[kMaxHeadDim / 2], s[kMaxHeadDim / 2];
    for (int64_t t = t0; t < t1; t++) {
      for (int64_t i = 0; i < half; i++) {
        const float angle = static_cast<float>(static_cast<double>(positions[t]) * static_cast<double>(invFreq[i]));
        c[i] = static_cast<double>(static_cast<float>(std::cos(static_cast<double>(angle))));
        s[i] = static_cast<double>(static_cast<float>(std::sin(static_cast<double>(angle))));
      }
      for (int64_t h = 0; h < heads; h++) {
        for (int part = 0; part < 2; part++) {  // q then k
          float* v = qkv + ((t * heads + h) * 3 + part) * headDim;
          for (int64_t i = 0; i < half; i++) {
            const double x1 = v[i], x2 = v[i + half];
            v[i] = static_cast<float>(x1 * c[i] - x2 * s[i]);
            v[i + half] = static_cast<float>(x2 * c[i] + x1 * s[i]);
          }
        }
      }
    }
  });
}

void kvWrite(float* kCache, float* vCache, const float* qkv, const int32_t* slots, int64_t T, int64_t heads, int64_t headDim) {
  const int64_t width = heads * headDim;
  parallelRanges(T, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      for (int64_t h = 0; h < heads; h++) {
        const float* src = qkv + (t * heads + h) * 3 * headDim;
        const int64_t dst = static_cast<int64_t>(slots[t]) * width + h * headDim;
        std::memcpy(kCache + dst, src + headDim, headDim * sizeof(float));
        std::memcpy(vCache + dst, src + 2 * headDim, headDim * sizeof(float));
      }
    }
  });
}

// ---- attention: one (row, head) per task, online softmax over blocks of slots ----

static constexpr int64_t kBlock = 64;

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
// Cache slots are scattered (paged), so the hardware prefetcher cannot guess where the next K/V row
// starts: fetch the rows a few slots ahead explicitly.
static constexpr int64_t kPrefetchSlots = 8;

BS_AVX2 static inline void prefetchRange(const float* p, int64_t floats) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t b = 0; b < floats * 4; b += 64) _mm_prefetch(c + b, _MM_HINT_T0);
}

/** Dot products of q with four key rows at once (one horizontal reduction for all four). */
BS_AVX2 static inline __m128 dot4(const float* q, const float* k0, const float* k1, const float* k2, const float* k3, int64_t hd) {
  __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps(), d2 = _mm256_setzero_ps(), d3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= hd; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    d0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), d0);
    d1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), d1);
    d2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), d2);
    d3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), d3);
  }
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(d0, d1), _mm256_hadd_ps(d2, d3));
  __m128 r = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  if (i < hd) {
    alignas(16) float tail[4] = {0, 0, 0, 0};
    for (; i < hd; i++) {
      tail[0] += q[i] * k0[i]; tail[1] += q[i] * k1[i]; tail[2] += q[i] * k2[i]; tail[3] += q[i] * k3[i];
    }
    r = _mm_add_ps(r, _mm_load_ps(tail));
  }
  return r;
}

/**
 * acc[0, 8*NV) += sum_j p[j] * V[slots[j]][off, off + 8*NV): NV accumulators live in registers for the
 * whole block. `ahead` more slots follow slots[n-1] in the sequence; their rows are prefetched.
 */
template <int NV>
BS_AVX2 static void accumulatePV(float* acc, const float* p, const float* vCache, const int32_t* slots, int64_t n, int64_t ahead,
                                 int64_t width, int64_t off, const float* prefetchBase, int64_t prefetchBytes) {
  __m256 r[NV];
  for (int v = 0; v < NV; v++) r[v] = _mm256_loadu_ps(acc + 8 * v);
  for (int64_t j = 0; j < n; j++) {
    if (prefetchBytes > 0 && j + kPrefetchSlots < n + ahead) {
      const char* f = reinterpret_cast<const char*>(prefetchBase + static_cast<int64_t>(slots[j + kPrefetchSlots]) * width);
      for (int64_t b = 0; b < prefetchBytes; b += 64) _mm_prefetch(f + b, _MM_HINT_T0);
    }
    const __m256 pj = _mm256_set1_ps(p[j]);
    const float* vr = vCache + static_cast<int64_t>(slots[j]) * width + off;
    for (int v = 0; v < NV; v++) r[v] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vr + 8 * v), r[v]);
  }
  for (int v = 0; v < NV; v++) _mm256_storeu_ps(acc + 8 * v, r[v]);
}

/**
 * Heads [h0, h1) of query row t. All heads of a row walk the same slots, so each cached K/V row is read
 * once, front to back (3 KiB for d = 768), instead of once per head at scattered addresses.
 */
BS_AVX2 static void attendRowAvx2(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1, float* scratch) {
  const int64_t hd = a.headDim, hdPad = (hd + 7) / 8 * 8, width = a.heads * hd, nh = h1 - h0, hd8 = hd & ~int64_t{7};
  const int32_t seq = a.rowSeq[t], ctx = a.rowCtxLen[t];
  const int32_t* slots = a.seqSlots + a.seqSlotOffsets[seq];
  float* qs = scratch;              // [nh][hdPad] q pre-multiplied by the scale
  float* acc = qs + nh * hdPad;     // [nh][hdPad]
  float* p = acc + nh * hdPad;      // [nh][kBlock]
  float* runningMax = p + nh * kBlock;
  float* runningSum = runningMax + nh;
  for (int64_t h = 0; h < nh; h++) {
    const float* q = a.qkv + (t * a.heads + h0 + h) * 3 * hd;
    for (int64_t i = 0; i < hdPad; i++) {
      qs[h * hdPad + i] = i < hd ? q[i] * a.scale : 0.0f;
      acc[h * hdPad + i] = 0.0f;
    }
    runningMax[h] = -std::numeric_limits<float>::infinity();
    runningSum[h] = 0.0f;
  }
  for (int64_t j0 = 0; j0 < ctx; j0 += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, ctx - j0), n8 = (n + 7) / 8 * 8;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
      for (int64_t d = j0 + j + kPrefetchSlots; d < std::min<int64_t>(ctx, j0 + j + kPrefetchSlots + 4); d++)
        prefetchRange(a.kCache + static_cast<int64_t>(slots[d]) * width + h0 * hd, nh * hd);
      const float* k0 = a.kCache + static_cast<int64_t>(slots[j0 + j]) * width;
      const float* k1 = a.kCache + static_cast<int64_t>(slots[j0 + j + 1]) * width;
      const float* k2 = a.kCache + static_cast<int64_t>(slots[j0 + j + 2]) * width;
      const float* k3 = a.kCache + static_cast<int64_t>(slots[j0 + j + 3]) * width;
      for (int64_t h = 0; h < nh; h++) {
        const int64_t o = (h0 + h) * hd;
        _mm_storeu_ps(p + h * kBlock + j, dot4(qs + h * hdPad, k0 + o, k1 + o, k2 + o, k3 + o, hd));
      }
    }
    for (; j < n; j++) {
      const float* k = a.kCache + static_cast<int64_t>(slots[j0 + j]) * width;
      for (int64_t h = 0; h < nh; h++) {
        const float* kh = k + (h0 + h) * hd;
        __m128 r = dot4(qs + h * hdPad, kh, kh, kh, kh, hd);
        p[h * kBlock + j] = _mm_cvtss_f32(r);
      }
    }
    for (int64_t h = 0; h < nh; h++) {
      float* ph = p + h * kBlock;
      for (int64_t jj = n; jj < n8; jj++) ph[jj] = -std::numeric_limits<float>::infinity();
      __m256 mx = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
      for (int64_t jj = 0; jj < n8; jj += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(ph + jj));
      const float newMax = std::max(runningMax[h], hmax(mx));
      const float correction = std::exp(runningMax[h] - newMax);  // 0 on the first block
      const __m256 nm = _mm256_set1_ps(newMax);
      __m256 sum = _mm256_setzero_ps();
      for (int64_t jj = 0; jj < n8; jj += 8) {
        const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(ph + jj), nm));  // padding: exp(-inf) = 0
        _mm256_storeu_ps(ph + jj, e);
        sum = _mm256_add_ps(sum, e);
      }
      runningSum[h] = runningSum[h] * correction + hsum(sum);
      runningMax[h] = newMax;
      const __m256 cv = _mm256_set1_ps(correction);
      for (int64_t i = 0; i < hdPad; i += 8) _mm256_storeu_ps(acc + h * hdPad + i, _mm256_mul_ps(_mm256_loadu_ps(acc + h * hdPad + i), cv));
    }
    if (hd % 8 == 0) {
      // Head by head over the block's V rows, the output accumulator in registers (64 floats at a time).
      for (int64_t h = 0; h < nh; h++) {
        for (int64_t c = 0; c < hd; c += 64) {
          const int64_t off = (h0 + h) * hd + c;
          float* ah = acc + h * hdPad + c;
          const float* ph = p + h * kBlock;
          const int32_t* sl = slots + j0;
          const int64_t pf = std::min<int64_t>(kPrefetchSlots, ctx - j0 - n);  // slots past the block still to come
          // The first head's pass fetches whole V rows (all heads of the task, contiguous), so DRAM sees
          // one 3 KiB run per slot and the later heads read the block from L2.
          const float* pfBase = a.vCache + h0 * hd;
          const int64_t pfBytes = h == 0 && c == 0 ? nh * hd * 4 : 0;
          switch (std::min<int64_t>(64, hd - c) / 8) {
            case 1: accumulatePV<1>(ah, ph, a.vCache, sl, n, pf, width, off, pfBase, pfBytes); break;
            case 2: accumulatePV<2>(ah, ph, a.vCache, sl, n, pf, width, off, pfBase, pfBytes); break;
            case 3: accumulatePV<3>(ah, ph, a.vCache, sl, n, pf, width, off, pfBase, pfBytes); break;
            case 4: accumulatePV<4>(ah, ph, a.vCache, sl, n, pf, width, off, pfBase, pfBytes); break;
            case 5: accumulatePV<5>(ah, ph, a.vCache, sl, n, pf, width, off, pfBase, pfBytes); break;
            case 6: accumulatePV<6>(ah, ph, a.vCache, sl, n, pf, width, off, pfBase, pfBytes); break;
            case 7: accumulatePV<7>(ah, ph, a.vCache, sl, n, pf, width, off, pfBase, pfBytes); break;
            default: accumulatePV<8>(ah, ph, a.vCache, sl, n, pf, width, off, pfBase, pfBytes); break;
          }
        }
      }
    } else {
      for (j = 0; j < n; j++) {
        if (j0 + j + kPrefetchSlots < ctx) prefetchRange(a.vCache + static_cast<int64_t>(slots[j0 + j + kPrefetchSlots]) * width + h0 * hd, nh * hd);
        const float* v = a.vCache + static_cast<int64_t>(slots[j0 + j]) * width;
        for (int64_t h = 0; h < nh; h++) {
          const float* vh = v + (h0 + h) * hd;
          float* ah = acc + h * hdPad;
          const float pj = p[h * kBlock + j];
          const __m256 pv = _mm256_set1_ps(pj);
          int64_t i = 0;
          for (; i < hd8; i += 8) _mm256_storeu_ps(ah + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(vh + i), _mm256_loadu_ps(ah + i)));
          for (; i < hd; i++) ah[i] += pj * vh[i];
        }
      }
    }
  }
  for (int64_t h = 0; h < nh; h++) {
    float* o = a.out + t * width + (h0 + h) * hd;
    const float inv = 1.0f / runningSum[h];
    for (int64_t i = 0; i < hd; i++) o[i] = acc[h * hdPad + i] * inv;
  }
}
#endif

thread_local std::vector<float> tlsAttentionScratch;

void attention(const AttentionArgs& a) {
  // One task per (row, group of heads): whole rows when there are enough of them (decode batches,
  // prefill chunks), split heads when there are few rows (a single sequence decoding).
  const int64_t want = 4 * pool().threads();
  const int64_t groupsPerRow = std::min<int64_t>(a.heads, std::max<int64_t>(1, (want + a.T - 1) / a.T));
  const int64_t headsPerGroup = (a.heads + groupsPerRow - 1) / groupsPerRow;
  const int64_t groups = (a.heads + headsPerGroup - 1) / headsPerGroup;
  pool().parallelFor(a.T * groups, [&](int64_t task, int) {
    const int64_t t = task / groups, h0 = (task % groups) * headsPerGroup, h1 = std::min(a.heads, h0 + headsPerGroup);
#if defined(__x86_64__)
    if (useAvx2()) {
      const int64_t hdPad = (a.headDim + 7) / 8 * 8;
      const size_t need = static_cast<size_t>((h1 - h0) * (2 * hdPad + kBlock + 2));
      if (tlsAttentionScratch.size() < need) tlsAttentionScratch.resize(need);
      attendRowAvx2(a, t, h0, h1, tlsAttentionScratch.data());
      return;
    }
#endif
    for (int64_t h = h0; h < h1; h++) attendScalar(a, t, h);
  });
}

}  // namespace bs
