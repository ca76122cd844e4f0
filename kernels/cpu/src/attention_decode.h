// Single-query decode attention on the AVX-512 path (attention_decode.cc); attention.cc dispatches to it.
#pragma once

#include <cstdint>

#include "ops.h"

namespace bs {

/** True when the CPU path in use and the shape suit attendDecodeAvx512 (AVX512_BF16 CPU; hd a multiple
 * of 16 for an f32 cache, of 32 for a bf16 one). */
bool decodeAttentionFits(const AttentionArgs& a);
/** Heads [h0, h1) of row t, a decode row (one query row of its sequence, attending to rowCtxLen[t] slots). */
void attendDecodeAvx512(const AttentionArgs& a, int64_t t, int64_t h0, int64_t h1);

}  // namespace bs
