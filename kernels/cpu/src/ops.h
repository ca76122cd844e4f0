// The non-GEMM ops of the Backend interface (see kernels/backend.ts for their exact contracts).
#pragma once

#include <cstdint>

namespace bs {

void layerNorm(float* out, const float* x, const float* gamma, const float* beta, int64_t rows, int64_t width, float eps);
void add(float* out, const float* a, const float* b, int64_t n);
/** out row (outRowOffset + i) = src row rows[i] (src in any dtype), rows of `width` elements. */
void gatherRows(float* out, const void* src, int dtype, const int32_t* rows, int64_t count, int64_t outRowOffset, int64_t width);
void rotary(float* qkv, const int32_t* positions, int64_t T, int64_t heads, int64_t headDim, int64_t rotDims, double base);
/** Caches in f32 or bf16 (kvDtype; bf16 rounds to nearest even: half the bytes for decode to stream). */
void kvWrite(void* kCache, void* vCache, int kvDtype, const float* qkv, const int32_t* slots, int64_t T, int64_t heads, int64_t headDim);

struct AttentionArgs {
  float* out;  // [T, H*hd]
  const float* qkv;  // [T, H, 3, hd]
  const void* kCache;
  const void* vCache;  // [numSlots, H*hd] in kvDtype
  int kvDtype;         // kF32 or kBF16 (widened to f32 in registers; all sums in f32)
  const int32_t* rowSeq;
  const int32_t* rowCtxLen;
  const int32_t* seqSlotOffsets;
  const int32_t* seqSlots;
  int64_t T, heads, headDim;
  float scale;
  bool bf16Compute;  // the backend computes in bf16: prefill chunks may take attention_prefill.cc's kernel
};
void attention(const AttentionArgs& a);

/** Peak FP32 FLOP/s of FMA on all pool threads (independent FMA chains, no memory traffic). */
double measurePeakFlops(double seconds);
/** Peak bf16 dot FLOP/s (vdpbf16ps: 2 per bf16 pair) on all pool threads; 0 without AVX512_BF16. */
double measurePeakBf16Flops(double seconds);
/** STREAM-triad bandwidth a[i] = b[i] + s c[i] on all pool threads, bytes counted as 3 x 4 per element. */
double measureTriadBytesPerSecond(int64_t elements, int repeats);

}  // namespace bs
