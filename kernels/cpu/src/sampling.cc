#include "sampling.h"

#include "cpu.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Bit-identical results with the JavaScript sampler need IEEE double arithmetic exactly as written: no
// fused multiply-adds (they would round once where JavaScript rounds twice).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__x86_64__)
// AVX2 without FMA (and fp-contract off above): every lane rounds exactly as the scalar code does. BMI
// adds tzcnt for walking lane masks.
#define BS_AVX2_EXACT __attribute__((target("avx2")))
#define BS_AVX2_EXACT_BMI __attribute__((target("avx2,bmi")))
#endif

namespace bs {

static std::vector<double> gTable;  // written once, before gReady is set
static const double* gTab = nullptr;  // gTable.data()
static std::atomic<bool> gReady{false};
static double gScale = 0, gLn2Step = 0, gLimit = 0;
static int gBucketsPerNat = 0, gNumBuckets = 0;

void samplingSetup(const double* table, int64_t tableSize, double scale, double ln2Step, double limit, int bucketsPerNat, int numBuckets) {
  // Once per process: every engine (and worker thread) passes the same constants, and a second
  // assignment could reallocate the table under a thread that is reading it.
  static std::mutex mu;
  std::lock_guard<std::mutex> lk(mu);
  if (gReady.load()) return;
  gTable.assign(table, table + tableSize);
  gTab = gTable.data();
  gScale = scale;
  gLn2Step = ln2Step;
  gLimit = limit;
  gBucketsPerNat = bucketsPerNat;
  gNumBuckets = numBuckets;
  gReady.store(true, std::memory_order_release);
}

bool samplingReady() { return gReady.load(std::memory_order_acquire); }
int samplingBuckets() { return gNumBuckets; }

[[gnu::cold, gnu::noinline]] static int32_t toInt32Slow(double t) {
  if (!std::isfinite(t)) return 0;
  double m = std::fmod(std::trunc(t), 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return static_cast<int32_t>(static_cast<uint32_t>(m));
}

/** JavaScript's `t | 0` (ToInt32): truncation, NaN and infinities to 0, wrap-around past 32 bits. */
static inline int32_t toInt32(double t) {
  if (t > -2147483649.0 && t < 2147483648.0) [[likely]] return static_cast<int32_t>(t);
  return toInt32Slow(t);
}

/** expNeg of kernels/fast-exp.ts. */
static inline double expNeg(double d) {
  const double t = d * gScale;
  if (!(t < gLimit)) return t == t ? 0.0 : NAN;
  const int j = static_cast<int>(t);  // 0 <= t < limit here (d >= 0: callers pass max - x), as t | 0
  const double r = (j - t) * gLn2Step;
  return gTab[j] * (1 + r * (1 + r * (0.5 + r * (1.0 / 6))));
}

/**
 * Adds weight e (of exponent d) to its bucket's mass, as the JavaScript reference does for every entry it
 * weighs; only e != 0 is passed here (adding 0 is a no-op there), and a NaN e lands in bucket 0 there as here.
 */
static inline void addMass(double* mass, double d, double e) {
  const int32_t b = toInt32(d * gBucketsPerNat);
  if (b >= 0 && b < gNumBuckets) mass[b] += e;
}

/** binOf of kernels/reference/sampling.ts: exponent bin, numBuckets for the overflow, numBuckets + 1 for never-counted. */
static inline int binOf(float x, double max, double scale, double floor) {
  if (!(x >= floor)) return gNumBuckets + 1;
  const double t = (max - x) * scale;
  return t < gNumBuckets ? toInt32(t) : gNumBuckets;
}

int64_t rowArgmax(const float* row, int64_t V) {
  // Four running maxima (a single one makes each comparison wait on the last), then the first index
  // holding the maximum. NaN fails every > and is never chosen.
  float m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  const int64_t n = V & ~int64_t{3};
  for (int64_t i = 0; i < n; i += 4)
    for (int l = 0; l < 4; l++)
      if (row[i + l] > m[l]) m[l] = row[i + l];
  float best = -INFINITY;
  for (int l = 0; l < 4; l++)
    if (m[l] > best) best = m[l];
  for (int64_t i = n; i < V; i++)
    if (row[i] > best) best = row[i];
  if (!(best > -INFINITY)) return -1;
  for (int64_t i = 0; i < V; i++)
    if (row[i] == best) return i;
  return -1;
}

#if defined(__x86_64__)
/**
 * binOf on four lanes into b[0..4): the overflow bin through min (which also maps a NaN t there), then
 * the never-counted bin for lanes below the floor.
 */
BS_AVX2_EXACT static inline void binOf4(const float* x4, __m256d vmax, __m256d vscale, __m256d vfloor, __m256d vtop, int32_t* b) {
  const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(x4));
  const __m256d t = _mm256_min_pd(_mm256_mul_pd(_mm256_sub_pd(vmax, x), vscale), vtop);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(b), _mm256_cvttpd_epi32(t));
  const int keep = _mm256_movemask_pd(_mm256_cmp_pd(x, vfloor, _CMP_GE_OQ));
  if (keep != 0xf)
    for (int l = 0; l < 4; l++)
      if (!(keep >> l & 1)) b[l] = gNumBuckets + 1;
}

BS_AVX2_EXACT static void binCountsAvx2(const float* row, int64_t n, double max, double scale, double floor, int32_t* lanes, int lane) {
  const __m256d vmax = _mm256_set1_pd(max), vscale = _mm256_set1_pd(scale), vfloor = _mm256_set1_pd(floor);
  const __m256d vtop = _mm256_set1_pd(gNumBuckets);
  for (int64_t i = 0; i < n; i += 4) {
    int32_t b[4];
    binOf4(row + i, vmax, vscale, vfloor, vtop, b);
    lanes[b[0]]++;
    lanes[lane + b[1]]++;
    lanes[2 * lane + b[2]]++;
    lanes[3 * lane + b[3]]++;
  }
}
#endif

void binCounts(const float* row, int64_t V, double max, double scale, double floor, int32_t* counts) {
  // Four histograms filled in turn and summed: a single one makes each increment wait on the last.
  const int lane = gNumBuckets + 2;
  thread_local std::vector<int32_t> lanes;  // reused: this runs once per sampled row
  lanes.assign(4 * lane, 0);
  const int64_t n = V & ~int64_t{3};
#if defined(__x86_64__)
  if (useAvx2()) binCountsAvx2(row, n, max, scale, floor, lanes.data(), lane);
  else
#endif
  for (int64_t i = 0; i < n; i += 4)
    for (int l = 0; l < 4; l++) lanes[l * lane + binOf(row[i + l], max, scale, floor)]++;
  for (int64_t i = n; i < V; i++) lanes[binOf(row[i], max, scale, floor)]++;
  for (int b = 0; b < lane; b++) counts[b] = lanes[b] + lanes[lane + b] + lanes[2 * lane + b] + lanes[3 * lane + b];
}

int64_t findInBin(const float* row, int64_t V, double max, double scale, double floor, int bin, int64_t k) {
  for (int64_t i = 0; i < V; i++)
    if (binOf(row[i], max, scale, floor) == bin && k-- == 0) return i;
  return -1;
}

#if defined(__x86_64__)
/** expNeg on four lanes. */
BS_AVX2_EXACT static inline __m256d expNeg4(__m256d d) {
  const __m256d t = _mm256_mul_pd(d, _mm256_set1_pd(gScale));
  const __m256d valid = _mm256_cmp_pd(t, _mm256_set1_pd(gLimit), _CMP_LT_OQ);
  const __m128i j = _mm256_cvttpd_epi32(_mm256_and_pd(t, valid));  // invalid lanes read entry 0
  const __m256d r = _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtepi32_pd(j), t), _mm256_set1_pd(gLn2Step));
  __m256d p = _mm256_add_pd(_mm256_set1_pd(0.5), _mm256_mul_pd(r, _mm256_set1_pd(1.0 / 6)));
  p = _mm256_add_pd(_mm256_set1_pd(1), _mm256_mul_pd(r, p));
  p = _mm256_add_pd(_mm256_set1_pd(1), _mm256_mul_pd(r, p));
  const __m256d all = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
  const __m256d e = _mm256_mul_pd(_mm256_mask_i32gather_pd(_mm256_setzero_pd(), gTab, j, all, 8), p);
  // past the limit: 0; NaN: NaN
  const __m256d nan = _mm256_and_pd(_mm256_cmp_pd(t, t, _CMP_UNORD_Q), _mm256_set1_pd(NAN));
  return _mm256_blendv_pd(nan, e, valid);
}

BS_AVX2_EXACT static void expWeightsAvx2(const float* row, int64_t n, double max, double invT, double floor, double* w, double* lanes, double* mass) {
  __m256d acc = _mm256_loadu_pd(lanes);
  const __m256d vmax = _mm256_set1_pd(max), vinvT = _mm256_set1_pd(invT), vfloor = _mm256_set1_pd(floor);
  for (int64_t i = 0; i < n; i += 4) {
    const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(row + i));
    const __m256d keep = _mm256_cmp_pd(x, vfloor, _CMP_GE_OQ);
    const __m256d d = _mm256_mul_pd(_mm256_sub_pd(vmax, x), vinvT);
    const __m256d e = _mm256_and_pd(expNeg4(_mm256_and_pd(d, keep)), keep);
    _mm256_storeu_pd(w + i, e);
    acc = _mm256_add_pd(acc, e);
    if (mass) {
      alignas(32) double ev[4], dv[4];
      _mm256_store_pd(ev, e);
      _mm256_store_pd(dv, d);
      for (int l = 0; l < 4; l++)
        if (ev[l] != 0) addMass(mass, dv[l], ev[l]);
    }
  }
  _mm256_storeu_pd(lanes, acc);
}

BS_AVX2_EXACT static void expSumAvx2(const float* row, int64_t n, double max, double* lanes) {
  __m256d acc = _mm256_loadu_pd(lanes);
  const __m256d vmax = _mm256_set1_pd(max);
  for (int64_t i = 0; i < n; i += 4) acc = _mm256_add_pd(acc, expNeg4(_mm256_sub_pd(vmax, _mm256_cvtps_pd(_mm_loadu_ps(row + i)))));
  _mm256_storeu_pd(lanes, acc);
}
#endif

double expWeights(const float* row, int64_t V, double max, double invT, double floor, double* w, double* mass) {
  // Four sums, entry i into sum i % 4, added as (s0 + s1) + (s2 + s3): the order the JavaScript reference uses, and
  // the lanes of one AVX2 vector.
  double s[4] = {0, 0, 0, 0};
  int64_t i = 0;
#if defined(__x86_64__)
  if (useAvx2()) {
    i = V & ~int64_t{3};
    expWeightsAvx2(row, i, max, invT, floor, w, s, mass);
  }
#endif
  for (; i < V; i++) {
    const float x = row[i];
    if (!(x >= floor)) {
      w[i] = 0;
      continue;
    }
    const double d = (max - x) * invT;
    const double e = expNeg(d);
    w[i] = e;
    s[i & 3] += e;
    if (mass && e != 0) addMass(mass, d, e);
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

/** Bucket of an entry as the JavaScript reference computes it. */
static inline int32_t bucketOf(float x, double max, double invT) { return toInt32((max - x) * invT * gBucketsPerNat); }

#if defined(__x86_64__)
/**
 * Lanes of row[i .. i + 4) that may hold entries of buckets [lo, hi) with w != 0, as a 4-bit mask: a
 * superset (a NaN t passes, as its bucket is 0), which callers then check exactly with bucketOf.
 */
BS_AVX2_EXACT static inline int candidates4(const float* row, const double* w, int64_t i, __m256d vmax, __m256d vinvT, __m256d vbpn, __m256d lo, __m256d hi) {
  const __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(row + i));
  const __m256d t = _mm256_mul_pd(_mm256_mul_pd(_mm256_sub_pd(vmax, x), vinvT), vbpn);
  const __m256d nonzero = _mm256_cmp_pd(_mm256_loadu_pd(w + i), _mm256_setzero_pd(), _CMP_NEQ_UQ);
  const __m256d outside = _mm256_or_pd(_mm256_cmp_pd(t, lo, _CMP_LT_OQ), _mm256_cmp_pd(t, hi, _CMP_GE_OQ));
  return _mm256_movemask_pd(_mm256_andnot_pd(outside, nonzero));
}

BS_AVX2_EXACT_BMI static int64_t collectBucketAvx2(const float* row, int64_t n, const double* w, double max, double invT, int bucket, int32_t* out) {
  const __m256d vmax = _mm256_set1_pd(max), vinvT = _mm256_set1_pd(invT), vbpn = _mm256_set1_pd(gBucketsPerNat);
  const __m256d lo = _mm256_set1_pd(bucket), hi = _mm256_set1_pd(bucket + 1.0);
  int64_t count = 0;
  for (int64_t i = 0; i < n; i += 4)
    for (int m = candidates4(row, w, i, vmax, vinvT, vbpn, lo, hi); m; m &= m - 1) {
      const int64_t k = i + __builtin_ctz(m);
      if (bucketOf(row[k], max, invT) == bucket) out[count++] = static_cast<int32_t>(k);
    }
  return count;
}
#endif

int64_t collectBucket(const float* row, int64_t V, const double* w, double max, double invT, int bucket, int32_t* out) {
  int64_t count = 0, i = 0;
#if defined(__x86_64__)
  if (useAvx2()) {
    i = V & ~int64_t{3};
    count = collectBucketAvx2(row, i, w, max, invT, bucket, out);
  }
#endif
  for (; i < V; i++)
    if (w[i] != 0 && bucketOf(row[i], max, invT) == bucket) out[count++] = static_cast<int32_t>(i);
  return count;
}

namespace {
/** The inverse-CDF walk of drawWeighted, resumable across its vector and scalar parts. */
struct Walk {
  double u;
  int64_t last = 0;
  /** Takes entry i (already known to be in); true when the draw lands on it. */
  bool take(int64_t i, double e) {
    last = i;
    u -= e;
    return u < 0;
  }
};
}  // namespace

static inline bool outsideNucleus(float x, double max, double invT, int edge, double cutoff) {
  const int32_t b = bucketOf(x, max, invT);
  return b > edge || (b == edge && x < cutoff);
}

#if defined(__x86_64__)
/** The nucleus part of drawWeighted over [0, n): lanes past the edge bucket are skipped four at a time. */
BS_AVX2_EXACT_BMI static int64_t drawNucleusAvx2(const float* row, int64_t n, const double* w, double max, double invT, int edge, double cutoff, Walk& walk) {
  const __m256d vmax = _mm256_set1_pd(max), vinvT = _mm256_set1_pd(invT), vbpn = _mm256_set1_pd(gBucketsPerNat);
  const __m256d lo = _mm256_set1_pd(-INFINITY), hi = _mm256_set1_pd(edge + 1.0);
  for (int64_t i = 0; i < n; i += 4)
    for (int m = candidates4(row, w, i, vmax, vinvT, vbpn, lo, hi); m; m &= m - 1) {
      const int64_t k = i + __builtin_ctz(m);
      if (!outsideNucleus(row[k], max, invT, edge, cutoff) && walk.take(k, w[k])) return k;
    }
  return -1;
}
#endif

int64_t drawWeighted(const float* row, int64_t V, const double* w, double max, double invT, bool nucleus, int edge, double cutoff, double u) {
  Walk walk{u};
  int64_t i = 0;
#if defined(__x86_64__)
  if (nucleus && useAvx2()) {
    i = V & ~int64_t{3};
    const int64_t hit = drawNucleusAvx2(row, i, w, max, invT, edge, cutoff, walk);
    if (hit >= 0) return hit;
  }
#endif
  for (; i < V; i++) {
    const double e = w[i];
    if (e == 0) continue;
    if (nucleus && outsideNucleus(row[i], max, invT, edge, cutoff)) continue;
    if (walk.take(i, e)) return i;
  }
  return walk.last;  // rounding left u a hair above zero
}

namespace {
/** A min-heap of k indices under "ranks above" (larger value, then lower index): heap[0] ranks lowest. */
struct TopHeap {
  const float* row;
  int32_t* h;
  int64_t n = 0;
  bool above(int32_t a, int32_t b) const { return row[a] > row[b] || (row[a] == row[b] && a < b); }
  void push(int32_t i) {
    int64_t c = n++;
    h[c] = i;
    while (c > 0) {
      const int64_t p = (c - 1) / 2;
      if (!above(h[p], h[c])) break;
      std::swap(h[p], h[c]);
      c = p;
    }
  }
  void replaceTop(int32_t i) {
    h[0] = i;
    for (int64_t c = 0;;) {
      const int64_t l = 2 * c + 1, r = l + 1;
      if (l >= n) break;
      const int64_t m = r < n && above(h[l], h[r]) ? r : l;  // the child that ranks lowest
      if (!above(h[c], h[m])) break;
      std::swap(h[c], h[m]);
      c = m;
    }
  }
};
}  // namespace

#if defined(__x86_64__)
/** topK's scan from i while eight entries remain: a block without an entry above the lowest is skipped. */
BS_AVX2_EXACT_BMI static int64_t topKScanAvx2(const float* row, int64_t V, int64_t i, TopHeap& heap, float& minValue) {
  for (; i + 8 <= V; i += 8) {
    int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + i), _mm256_set1_ps(minValue), _CMP_GT_OQ));
    for (; m; m &= m - 1) {
      const int64_t j = i + __builtin_ctz(m);
      if (row[j] > minValue) {  // minValue may have risen since the comparison
        heap.replaceTop(static_cast<int32_t>(j));
        minValue = row[heap.h[0]];
      }
    }
  }
  return i;
}
#endif

int64_t topK(const float* row, int64_t V, int64_t k, double floor, int32_t* out) {
  if (k <= 0) return 0;
  TopHeap heap{row, out};
  int64_t i = 0;
  for (; i < V && heap.n < k; i++)
    if (row[i] >= floor) heap.push(static_cast<int32_t>(i));
  if (heap.n == k) {
    // Only entries above the heap's lowest can enter (a tie loses: its index is higher); that lowest is
    // >= floor, so the comparison also applies the floor, and NaN never passes it.
    float minValue = row[out[0]];
#if defined(__x86_64__)
    if (useAvx2()) i = topKScanAvx2(row, V, i, heap, minValue);
#endif
    for (; i < V; i++)
      if (row[i] > minValue) {
        heap.replaceTop(static_cast<int32_t>(i));
        minValue = row[out[0]];
      }
  }
  std::sort(out, out + heap.n, [&](int32_t a, int32_t b) { return heap.above(a, b); });
  return heap.n;
}

double expSum(const float* row, int64_t V, double max) {
  double s[4] = {0, 0, 0, 0};  // as in expWeights
  int64_t i = 0;
#if defined(__x86_64__)
  if (useAvx2()) {
    i = V & ~int64_t{3};
    expSumAvx2(row, i, max, s);
  }
#endif
  for (; i < V; i++) s[i & 3] += expNeg(max - row[i]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

}  // namespace bs
