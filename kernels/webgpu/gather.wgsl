// out row (outRowOffset + i) = src row rows[i], widening f16 / bf16 to f32. SRC_DTYPE (0 f32, 1 f16,
// 2 bf16) is prepended. src may be bigger than one binding (an f32 embedding table): gather.ts then
// dispatches once per window of src rows [rowStart, rowEnd), and each dispatch copies only the rows
// that fall inside its window; `srcBase` is the element index of rowStart within the window.

struct Params { count: u32, width: u32, outRowOffset: u32, rowStart: u32, rowEnd: u32, srcBase: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> outBuf: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(3) var<storage, read> rows: array<i32>;

const WG = 64u;

fn load(e: u32) -> f32 {
  if (SRC_DTYPE == 0u) { return bitcast<f32>(src[e]); }
  let bits = (src[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
  if (SRC_DTYPE == 1u) { return unpack2x16float(bits).x; }
  return bitcast<f32>(bits << 16u);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * WG;
  if (id >= p.count * p.width) { return; }
  let i = id / p.width;
  let c = id % p.width;
  let r = u32(rows[i]);
  if (r < p.rowStart || r >= p.rowEnd) { return; }
  outBuf[(p.outRowOffset + i) * p.width + c] = load(p.srcBase + (r - p.rowStart) * p.width + c);
}
