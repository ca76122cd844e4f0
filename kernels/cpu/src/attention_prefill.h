// Causal prefill attention in bf16 on the AVX-512 path (attention_prefill.cc); attention.cc dispatches to it.
#pragma once

#include <cstdint>

#include "ops.h"

namespace bs {

/** Query rows of one sequence a prefill task takes at most (they share every packed K/V block). */
constexpr int64_t kPrefillMaxRows = 32;
/** Fewer rows than this go to the row-at-a-time kernels: packing a block would cost more than it saves. */
constexpr int64_t kPrefillMinRows = 8;
/** Nor a context shorter than this (half a packed block of keys). */
constexpr int64_t kPrefillMinContext = 32;

/** True when the CPU path in use and the arguments suit attendPrefillBf16 (AVX512_BF16 CPU, bf16 compute,
 * head width at most 256). */
bool prefillAttentionFits(const AttentionArgs& a);
/** Heads [h0, h1) of rows [t0, t0 + rows) (rows <= kPrefillMaxRows), all of one sequence. */
void attendPrefillBf16(const AttentionArgs& a, int64_t t0, int64_t rows, int64_t h0, int64_t h1);

}  // namespace bs
