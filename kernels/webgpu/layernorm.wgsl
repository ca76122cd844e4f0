// Row-wise LayerNorm: one workgroup per row, two passes (mean, then variance of the centred values,
// like the reference) with a tree reduction in workgroup memory. X_IS_OUT (prepended) marks the
// in-place case, where x and out are one buffer and only `outBuf` is read. Every element is read
// and written by the same invocation, so in place is safe.

struct Params { rows: u32, width: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> outBuf: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;

const WG = 64u;

fn src(i: u32) -> f32 {
  if (X_IS_OUT) { return outBuf[i]; }
  return x[i];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.width;
  var s = 0.0;
  for (var i = li; i < p.width; i += WG) { s += src(base + i); }
  let mean = workgroupSum(s, li) / f32(p.width);
  var v = 0.0;
  for (var i = li; i < p.width; i += WG) { let d = src(base + i) - mean; v += d * d; }
  let inv = inverseSqrt(workgroupSum(v, li) / f32(p.width) + p.eps);
  for (var i = li; i < p.width; i += WG) {
    outBuf[base + i] = (src(base + i) - mean) * inv * gamma[i] + beta[i];
  }
}
