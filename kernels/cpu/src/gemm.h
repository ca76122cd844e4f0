// out[M,N] = act(x[M,K] W[N,K]^T + bias) + residual, with W in f32, f16 or bf16.
#pragma once

#include <cstdint>

#include "simd.h"  // DType

namespace bs {

struct MatmulArgs {
  float* out;
  const float* x;
  const void* w;  // [N, K] in wDtype
  int wDtype;
  int64_t M, K, N;
  const float* bias;      // [N] or null
  const float* residual;  // [M, N] or null; must not alias out (the binding copies it first)
  bool gelu;
  /** Weights repacked for the tiled GEMM (packWeights), or null: then only the small-M path may run. */
  const float* packed;
};

/** Rows of x at or below which the weight-streaming (GEMV-like) path runs instead of the tiled GEMM. */
constexpr int64_t kSmallM = 8;

/**
 * Whether a call takes the tiled GEMM (and so needs packed weights). Above kSmallM always; at 5..8 rows
 * also for f32 weights too large for cache: their packed panels are the same bytes as W, read as one
 * sequential stream, with fewer loads per FMA than the weight-streaming path's (M = 8, N = 50304).
 */
inline bool usesTiledGemm(int64_t M, int64_t K, int64_t N, int wDtype) {
  if (M > kSmallM) return true;
  return M >= 5 && wDtype == kF32 && N * K * 4 > (int64_t{16} << 20);
}

/** Floats needed by packWeights for an [N, K] weight. */
int64_t packedSize(int64_t N, int64_t K);
/** Repacks W [N, K] (any dtype) into f32 panels of 16 output columns, [ceil(N/16)][K][16], zero-padded. */
void packWeights(float* dst, const void* w, int dtype, int64_t N, int64_t K);

void matmul(const MatmulArgs& a);

}  // namespace bs
