// out[M, N] = act(x[M, K] W[N, K]^T + bias) + residual, tiled through workgroup memory.
// The constants TM, TN (outputs per invocation), WG_M, WG_N (invocations), KT (K tile) and W_DTYPE
// (0 f32, 1 f16, 2 bf16) are prepended by matmul.ts; they are the pipeline's cache key. Shapes and
// the epilogue flags (hasBias, gelu, residual: 0 none, 1 separate tensor, 2 out itself) arrive in
// `p`: the flags are uniform branches in the epilogue only, and keeping them out of the key cuts the
// pipeline count 12x, which matters where each compile costs about a second (llvmpipe).
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

const TILE_M = WG_M * TM;
const TILE_N = WG_N * TN;
const THREADS = WG_M * WG_N;

// Stored k-major so that neighbouring invocations read neighbouring words in the inner loop.
var<workgroup> xs: array<f32, TILE_M * KT>;
var<workgroup> ws: array<f32, TILE_N * KT>;

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

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u,
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
    // llvmpipe from unrolling this loop, whose unrolled form took seconds to compile for the small tile.
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
    let n = p.nStart + nl;
    var v = acc[o];
    if (p.hasBias != 0u) { v += bias[n]; }
    if (p.gelu != 0u) { v = 0.5 * v * (1.0 + erf32(v * 0.7071067811865476)); }
    let oi = m * p.N + n;
    if (p.residual == 1u) { v += residual[oi]; }
    if (p.residual == 2u) { v += outBuf[oi]; }
    outBuf[oi] = v;
  }
}
