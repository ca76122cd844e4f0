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
  /** Weights as bf16 vdpbf16ps panels (packWeightsBf16), for matmulBf16. */
  const uint16_t* packedBf16;
};

/** Rows of x at or below which the weight-streaming (GEMV-like) path runs instead of the tiled GEMM. */
constexpr int64_t kSmallM = 8;

/**
 * Whether a call takes the tiled GEMM (and so needs packed weights). Above kSmallM always; at 5..8 rows
 * also
 * - for f32 weights too large for cache: their packed panels are the same bytes as W, read as one
 *   sequential stream, with fewer loads per FMA than the weight-streaming path's (M = 8, N = 50304);
 * - for 16-bit weights whose f32 panels fit in cache: the panels are widened once, where the streaming
 *   path widens every W vector for every pass (M = 8, K = 768, bf16, interleaved runs on a busy Zen 4:
 *   N = 768 78 -> 103 GFLOP/s, N = 3072 ~75 -> ~96). Larger 16-bit weights keep streaming: their f32
 *   panels would be twice the bytes.
 */
inline bool usesTiledGemm(int64_t M, int64_t K, int64_t N, int wDtype) {
  if (M > kSmallM) return true;
  const bool panelsFitCache = N * K * 4 <= (int64_t{16} << 20);
  return M >= 5 && (wDtype == kF32 ? !panelsFitCache : panelsFitCache);
}

/** Floats needed by packWeights for an [N, K] weight. */
int64_t packedSize(int64_t N, int64_t K);
/** Repacks W [N, K] (any dtype) into f32 panels of 16 output columns, [ceil(N/16)][K][16], zero-padded. */
void packWeights(float* dst, const void* w, int dtype, int64_t N, int64_t K);

void matmul(const MatmulArgs& a);

/** uint16 words needed by packWeightsBf16 for an [N, K] weight. */
int64_t packedBf16Size(int64_t N, int64_t K);
/**
 * Converts W [N, K] (any dtype; f32 rounded to nearest even) once into bf16 panels of 16 output columns
 * laid out for vdpbf16ps: [ceil(N/16)][ceil(K/2)][16][2] (k pairs innermost), zero-padded.
 */
void packWeightsBf16(uint16_t* dst, const void* w, int dtype, int64_t N, int64_t K);
/**
 * The bf16 compute path (AVX512_BF16 only; the caller checks isa()): x rounded to bf16, products of bf16
 * pairs summed in FP32 by vdpbf16ps, same epilogue as matmul. Every M, from decode rows to prefill.
 */
void matmulBf16(const MatmulArgs& a);

#if defined(__x86_64__)
/** dst[0, n) = act(dst + bias) + res (any pointer but dst may be null); AVX2, so isa() >= kIsaAvx2. */
void epilogueAvx2(float* dst, const float* bias, const float* res, int64_t n, bool gelu);
#endif

/**
 * For GEMM tasks laid out n-major over mTasks row blocks (task t = row block t % mTasks, column block
 * t / mTasks): the column block of the task the thread running t most likely takes next, when it covers
 * the same rows, else -1. The pool hands tasks out in order, so that task is `threads` further on; the
 * GEMMs prefetch its first weight panels while they finish t. (Defined on every target; used by the x86
 * GEMMs.)
 */
int64_t likelyNextColumnTask(int64_t t, int64_t mTasks, int64_t nTasks);

}  // namespace bs
