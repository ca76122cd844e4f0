// LayerNorm, add, gather, rotary, KV-cache writes and attention. Each op splits its rows over the pool;
// the AVX2 variants are used when the CPU has them, the scalar loops are the portable path.

#include "ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

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
BS_AVX2 static void attendAvx2(const AttentionArgs& a, int64_t t, int64_t h) {
  const int64_t hd = a.headDim, width = a.heads * hd, hd8 = hd & ~int64_t{7};
  const int32_t seq = a.rowSeq[t], ctx = a.rowCtxLen[t];
  const int32_t* slots = a.seqSlots + a.seqSlotOffsets[seq];
  const float* q = a.qkv + (t * a.heads + h) * 3 * hd;
  alignas(32) float qs[kMaxHeadDim];  // q pre-multiplied by the scale
  alignas(32) float acc[kMaxHeadDim];
  alignas(32) float p[kBlock];
  for (int64_t i = 0; i < hd; i++) { qs[i] = q[i] * a.scale; acc[i] = 0; }
  float runningMax = -std::numeric_limits<float>::infinity(), runningSum = 0;
  for (int64_t j0 = 0; j0 < ctx; j0 += kBlock) {
    const int64_t n = std::min<int64_t>(kBlock, ctx - j0);
    for (int64_t j = 0; j < n; j++) {
      const float* k = a.kCache + static_cast<int64_t>(slots[j0 + j]) * width + h * hd;
      __m256 d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
      int64_t i = 0;
      for (; i + 16 <= hd8; i += 16) {
        d0 = _mm256_fmadd_ps(_mm256_load_ps(qs + i), _mm256_loadu_ps(k + i), d0);
        d1 = _mm256_fmadd_ps(_mm256_load_ps(qs + i + 8), _mm256_loadu_ps(k + i + 8), d1);
      }
      for (; i < hd8; i += 8) d0 = _mm256_fmadd_ps(_mm256_load_ps(qs + i), _mm256_loadu_ps(k + i), d0);
      float dot = hsum(_mm256_add_ps(d0, d1));
      for (; i < hd; i++) dot += qs[i] * k[i];
      p[j] = dot;
    }
    for (int64_t j = n; j < (n + 7) / 8 * 8; j++) p[j] = -std::numeric_limits<float>::infinity();
    __m256 mx = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
    for (int64_t j = 0; j < n; j += 8) mx = _mm256_max_ps(mx, _mm256_load_ps(p + j));
    const float newMax = std::max(runningMax, hmax(mx));
    const float correction = std::exp(runningMax - newMax);  // 0 on the first block
    const __m256 nm = _mm256_set1_ps(newMax);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; j += 8) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_load_ps(p + j), nm));  // padded lanes: exp(-inf) = 0
      _mm256_store_ps(p + j, e);
      sum = _mm256_add_ps(sum, e);
    }
    runningSum = runningSum * correction + hsum(sum);
    const __m256 cv = _mm256_set1_ps(correction);
    int64_t i = 0;
    for (; i < hd8; i += 8) _mm256_store_ps(acc + i, _mm256_mul_ps(_mm256_load_ps(acc + i), cv));
    for (; i < hd; i++) acc[i] *= correction;
    for (int64_t j = 0; j < n; j++) {
      const float* v = a.vCache + static_cast<int64_t>(slots[j0 + j]) * width + h * hd;
      const __m256 pj = _mm256_set1_ps(p[j]);
      for (i = 0; i < hd8; i += 8) _mm256_store_ps(acc + i, _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + i), _mm256_load_ps(acc + i)));
      for (; i < hd; i++) acc[i] += p[j] * v[i];
    }
    runningMax = newMax;
  }
  float* o = a.out + t * width + h * hd;
  const float inv = 1.0f / runningSum;
  for (int64_t i = 0; i < hd; i++) o[i] = acc[i] * inv;
}
#endif

void attention(const AttentionArgs& a) {
  const int64_t tasks = a.T * a.heads;
  parallelRanges(tasks, 4, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
#if defined(__x86_64__)
      if (useAvx2()) { attendAvx2(a, i / a.heads, i % a.heads); continue; }
#endif
      attendScalar(a, i / a.heads, i % a.heads);
    }
  });
}

}  // namespace bs
