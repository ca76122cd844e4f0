// Host-side sampling passes over one float32 logits row, for engine/sampler/sampler.ts (the interface is
// kernels/sampling.ts). They are exact ports of the JavaScript reference (kernels/reference/sampling.ts),
// in the same double-precision arithmetic and the same order, so a seeded request draws the same token
// with or without the addon (the sampling op cases of kernels/cases check it).
#pragma once

#include <cstdint>

namespace bs {

/**
 * The constants the JavaScript side computed: the exp(-d) table of kernels/fast-exp.ts (copied,
 * so both sides read identical entries), its scale, step and limit, and the sampler's exponent buckets.
 */
void samplingSetup(const double* table, int64_t tableSize, double scale, double ln2Step, double limit, int bucketsPerNat, int numBuckets);
bool samplingReady();
/** numBuckets given to samplingSetup: the length of a mass array; counts arrays have two more entries. */
int samplingBuckets();

/** First index of the row's largest value (NaN ignored); -1 when no value exceeds -Infinity. */
int64_t rowArgmax(const float* row, int64_t V);
/** Fills counts[0 .. numBuckets + 1] with the sampler's exponent-bin histogram (binOf in kernels/reference/sampling.ts). */
void binCounts(const float* row, int64_t V, double max, double scale, double floor, int32_t* counts);
/** Index of the k-th (0-based) entry in exponent bin `bin`; -1 when the bin has fewer entries. */
int64_t findInBin(const float* row, int64_t V, double max, double scale, double floor, int bin, int64_t k);
/**
 * w[i] = exp(-(max - x_i) / T) for x_i >= floor (else 0); when mass is non-null, also the mass per exponent
 * bucket. Returns the sum of w, summed as expSum sums.
 */
double expWeights(const float* row, int64_t V, double max, double invT, double floor, double* w, double* mass);
/** Indices of entries with w > 0 in exponent bucket `bucket`, written to out; returns their count. */
int64_t collectBucket(const float* row, int64_t V, const double* w, double max, double invT, int bucket, int32_t* out);
/**
 * The inverse-CDF draw over w in token order, u in [0, total): entries with w == 0 are skipped, and when
 * nucleus is set so are buckets past `edge` and entries of the edge bucket below `cutoff`.
 */
int64_t drawWeighted(const float* row, int64_t V, const double* w, double max, double invT, bool nucleus, int edge, double cutoff, double u);
/**
 * Indices of the k largest entries with value >= floor (NaN never), best first; ties go to the lower
 * index (topKIndices in kernels/reference/top-k.ts). Writes min(k, eligible) indices to out; returns that count.
 */
int64_t topK(const float* row, int64_t V, int64_t k, double floor, int32_t* out);
/** Sum of exp(-(max - x_i)): entry i into sum i % 4, then (s0 + s1) + (s2 + s3), as logprobsOf does. */
double expSum(const float* row, int64_t V, double max);

}  // namespace bs
