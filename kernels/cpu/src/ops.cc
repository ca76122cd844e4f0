// LayerNorm, add, gather, rotary and KV-cache writes (attention is in attention.cc). Each op splits its rows over the pool;
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

void kvWrite(void* kCache, void* vCache, int kvDtype, const float* qkv, const int32_t* slots, int64_t T, int64_t heads, int64_t headDim) {
  const int64_t width = heads * headDim;
  parallelRanges(T, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      for (int64_t h = 0; h < heads; h++) {
        const float* src = qkv + (t * heads + h) * 3 * headDim;
        const int64_t dst = static_cast<int64_t>(slots[t]) * width + h * headDim;
        if (kvDtype == kBF16) {
          uint16_t* k = static_cast<uint16_t*>(kCache) + dst;
          uint16_t* v = static_cast<uint16_t*>(vCache) + dst;
          for (int64_t i = 0; i < headDim; i++) {
            k[i] = f32ToBf16(src[headDim + i]);
            v[i] = f32ToBf16(src[2 * headDim + i]);
          }
        } else {
          std::memcpy(static_cast<float*>(kCache) + dst, src + headDim, headDim * sizeof(float));
          std::memcpy(static_cast<float*>(vCache) + dst, src + 2 * headDim, headDim * sizeof(float));
        }
      }
    }
  });
}

}  // namespace bs
