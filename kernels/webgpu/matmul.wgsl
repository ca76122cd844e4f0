// out[M, N] = act(x[M, K] W[N, K]^T + bias) + residual. Two entry points share the bindings and the
// epilogue: `tiled` (64 x 64 output tiles through workgroup memory, 4 x 4 outputs per invocation) for
// many rows, and `gemv` (few rows: the invocations of a workgroup split K for 4 rows x 4 columns and
// reduce at the end, so even N = 768 spreads over 192 workgroups) for decode.
//
// W_DTYPE (0 f32, 1 f16, 2 bf16) is prepended by matmul.ts: with the entry point it is the pipeline's
// cache key. Shapes and the epilogue flags (hasBias, gelu, residual: 0 none, 1 separate tensor, 2 out
// itself) arrive in `p`; the flags are uniform branches in the epilogue only, and keeping them out of
// the key cuts the pipeline count 12x, which matters where a compile costs up to a second (llvmpipe).
//
// W may be larger than one storage binding: matmul.ts then binds a window of rows [nStart, nStart +
// nCount) and `wBase` is the element index of row nStart inside that window.

struct Params { M: u32, N: u32, K: u32, nStart: u32, nCount: u32, wBase: u32, hasBias: u32, gelu: u32, residual: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> outBuf: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<u32>; // f32 bits, or two 16-bit words per u32
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;

// tiled: WG_N x WG_M invocations, each TM x TN outputs, K in steps of KT.
const WG_M = 16u;
const WG_N = 16u;
const TM = 4u;
const TN = 4u;
const KT = 16u;
const TILE_M = WG_M * TM;
const TILE_N = WG_N * TN;
const THREADS = WG_M * WG_N;

// gemv: GV_WG invocations per workgroup, GV_ROWS rows x GV_COLS columns of output per workgroup.
const GV_WG = 64u;
const GV_ROWS = 4u;
const GV_COLS = 4u;

// Stored k-major so that neighbouring invocations read neighbouring words in the inner loop.
var<workgroup> xs: array<f32, TILE_M * KT>;
var<workgroup> ws: array<f32, TILE_N * KT>;
var<workgroup> partial: array<f32, GV_ROWS * GV_COLS * GV_WG>;

fn loadW(e: u32) -> f32 {
  if (W_DTYPE == 0u) {
    return bitcast<f32>(w[e]);
  }
  // Element 2i is the low half of word i (little-endian packing of the host's Uint16Array).
  let bits = (w[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
  if (W_DTYPE == 1u) {
    return unpack2x16float(bits).x;
  }
  return bitcast<f32>(bits << 16u);
}

// Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): WGSL has no erf.
fn erf32(v: f32) -> f32 {
  let a = abs(v);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let y = 1.0 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp(-a * a);
  return select(y, -y, v < 0.0);
}

// Bias, GELU and residual, then the store; n is the absolute output column.
fn finish(m: u32, n: u32, acc: f32) {
  var v = acc;
  if (p.hasBias != 0u) { v += bias[n]; }
  if (p.gelu != 0u) { v = 0.5 * v * (1.0 + erf32(v * 0.7071067811865476)); }
  let o = m * p.N + n;
  if (p.residual == 1u) { v += residual[o]; }
  if (p.residual == 2u) { v += outBuf[o]; }
  outBuf[o] = v;
}

@compute @workgroup_size(WG_N, WG_M)
fn tiled(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let m0 = wid.y * TILE_M;
  let n0 = wid.x * TILE_N; // relative to nStart
  var acc: array<f32, TM * TN>;
  for (var k0 = 0u; k0 < p.K; k0 += KT) {
    for (var i = li; i < TILE_M * KT; i += THREADS) {
      let r = i / KT;
      let c = i % KT;
      var v = 0.0;
      if (m0 + r < p.M && k0 + c < p.K) { v = x[(m0 + r) * p.K + k0 + c]; }
      xs[c * TILE_M + r] = v;
    }
    for (var i = li; i < TILE_N * KT; i += THREADS) {
      let r = i / KT;
      let c = i % KT;
      var v = 0.0;
      if (n0 + r < p.nCount && k0 + c < p.K) { v = loadW(p.wBase + (n0 + r) * p.K + k0 + c); }
      ws[c * TILE_N + r] = v;
    }
    workgroupBarrier();
    // The bound skips the zero padding of a last partial K tile; being a run-time value it also keeps
    // llvmpipe from unrolling this loop, whose unrolled form took seconds to compile for some tile shapes.
    let kEnd = min(KT, p.K - k0);
    for (var kk = 0u; kk < kEnd; kk++) {
      var xv: array<f32, TM>;
      for (var i = 0u; i < TM; i++) { xv[i] = xs[kk * TILE_M + lid.y + i * WG_M]; }
      for (var j = 0u; j < TN; j++) {
        let wv = ws[kk * TILE_N + lid.x + j * WG_N];
        for (var i = 0u; i < TM; i++) { acc[i * TN + j] = fma(xv[i], wv, acc[i * TN + j]); }
      }
    }
    workgroupBarrier();
  }
  // One loop over this invocation's outputs rather than nested TM x TN loops: llvmpipe then emits the
  // epilogue (GELU's erf above all) once instead of TM * TN times, which cut its compile from 1-3 s to
  // ~0.15 s per pipeline. GPU compilers unroll a constant trip count like this one anyway.
  for (var o = 0u; o < TM * TN; o++) {
    let i = o / TN;
    let j = o % TN;
    let m = m0 + lid.y + i * WG_M;
    let nl = n0 + lid.x + j * WG_N;
    if (m >= p.M || nl >= p.nCount) { continue; }
    finish(m, p.nStart + nl, acc[o]);
  }
}

@compute @workgroup_size(GV_WG)
fn gemv(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) li: u32) {
  let m0 = wid.y * GV_ROWS;
  let n0 = wid.x * GV_COLS; // relative to nStart
  var acc: array<f32, GV_ROWS * GV_COLS>;
  // Neighbouring invocations read neighbouring k of the same W row: coalesced, and W is read once
  // per group of GV_ROWS rows of x.
  for (var k = li; k < p.K; k += GV_WG) {
    var xv: array<f32, GV_ROWS>;
    for (var r = 0u; r < GV_ROWS; r++) {
      if (m0 + r < p.M) { xv[r] = x[(m0 + r) * p.K + k]; }
    }
    for (var c = 0u; c < GV_COLS; c++) {
      if (n0 + c < p.nCount) {
        let wv = loadW(p.wBase + (n0 + c) * p.K + k);
        for (var r = 0u; r < GV_ROWS; r++) { acc[r * GV_COLS + c] = fma(xv[r], wv, acc[r * GV_COLS + c]); }
      }
    }
  }
  for (var o = 0u; o < GV_ROWS * GV_COLS; o++) { partial[o * GV_WG + li] = acc[o]; }
  workgroupBarrier();
  if (li < GV_ROWS * GV_COLS) {
    var sum = 0.0;
    for (var j = 0u; j < GV_WG; j++) { sum += partial[li * GV_WG + j]; }
    let m = m0 + li / GV_COLS;
    let nl = n0 + li % GV_COLS;
    if (m < p.M && nl < p.nCount) { finish(m, p.nStart + nl, sum); }
  }
}
