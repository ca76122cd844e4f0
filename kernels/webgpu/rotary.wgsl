// GPT-NeoX rotary (rotate-half) in place on q and k of qkv [T, H, 3, hd]. The cos/sin table
// [T, half] x 2 is built on the host per call (f32 angles, like the reference and torch's cache):
// WGSL only promises 2^-11 absolute error for cos/sin, and only on [-pi, pi].

struct Params { T: u32, H: u32, hd: u32, half: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> cosSin: array<f32>; // cos [T * half], then sin [T * half]

const WG = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  // One invocation per (t, head, q|k, i < half): rotates the pair (i, i + half).
  let id = gid.x + gid.y * nwg.x * WG;
  if (id >= p.T * p.H * 2u * p.half) { return; }
  let i = id % p.half;
  let part = (id / p.half) % 2u;
  let th = id / (p.half * 2u); // t * H + head
  let t = th / p.H;
  let c = cosSin[t * p.half + i];
  let s = cosSin[(p.T + t) * p.half + i];
  let o = (th * 3u + part) * p.hd;
  let x1 = qkv[o + i];
  let x2 = qkv[o + i + p.half];
  qkv[o + i] = x1 * c - x2 * s;
  qkv[o + i + p.half] = x2 * c + x1 * s;
}
