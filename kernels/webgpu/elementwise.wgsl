// out = a + b elementwise. A_IS_OUT / B_IS_OUT (prepended) mark operands that are the output buffer
// itself (a buffer cannot be bound both writable and read-only in one dispatch); those are read
// through `outBuf`, each element by the invocation that writes it.

struct Params { count: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> outBuf: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

const WG = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.count) { return; }
  var av = 0.0;
  var bv = 0.0;
  if (A_IS_OUT) { av = outBuf[i]; } else { av = a[i]; }
  if (B_IS_OUT) { bv = outBuf[i]; } else { bv = b[i]; }
  outBuf[i] = av + bv;
}
