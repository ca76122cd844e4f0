// Attention over a slot-addressed KV cache, and the kvWrite that fills it.
//
// attention: one workgroup per (query row t, head h). The row's sequence owns slots
// plan[offSlots + base ..], and the row attends to the first ctx of them. Keys are scored WG at a
// time (one per invocation); an online softmax (running max m and sum l, rescaled per chunk) folds
// each chunk into the accumulator, whose dims are owned by fixed invocations. The plan is one i32
// array: rowSeq [T] | rowCtxLen [T] | seqSlotOffsets [S+1] | seqSlots, with offsets in Params.

struct Params { T: u32, H: u32, hd: u32, scale: f32, offCtx: u32, offSeqOffsets: u32, offSlots: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> outBuf: array<f32>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> kCache: array<f32>;
@group(0) @binding(4) var<storage, read> vCache: array<f32>;
@group(0) @binding(5) var<storage, read> plan: array<i32>;

const WG = 64u;
const MAX_HD = 256u;
const NEG_BIG = -3.0e38; // stands in for -inf: exp(NEG_BIG - x) is 0

var<workgroup> q: array<f32, MAX_HD>;
var<workgroup> acc: array<f32, MAX_HD>;
var<workgroup> probs: array<f32, WG>;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) li: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= p.T * p.H) { return; }
  let t = g / p.H;
  let h = g % p.H;
  let width = p.H * p.hd;
  let seq = u32(plan[t]);
  let ctx = u32(plan[p.offCtx + t]);
  let first = p.offSlots + u32(plan[p.offSeqOffsets + seq]);
  let qo = (t * p.H + h) * 3u * p.hd;
  for (var d = li; d < p.hd; d += WG) {
    q[d] = qkv[qo + d];
    acc[d] = 0.0;
  }
  workgroupBarrier();
  var m = NEG_BIG;
  var l = 0.0;
  for (var j0 = 0u; j0 < ctx; j0 += WG) {
    let j = j0 + li;
    var s = NEG_BIG;
    if (j < ctx) {
      let ko = u32(plan[first + j]) * width + h * p.hd;
      var dot = 0.0;
      for (var d = 0u; d < p.hd; d++) { dot = fma(q[d], kCache[ko + d], dot); }
      s = dot * p.scale;
    }
    let mNew = max(m, workgroupMax(s, li));
    var e = 0.0;
    if (j < ctx) { e = exp(s - mNew); }
    probs[li] = e;
    let alpha = exp(m - mNew);
    l = l * alpha + workgroupSum(e, li); // the barriers inside also publish probs
    m = mNew;
    let n = min(WG, ctx - j0);
    for (var d = li; d < p.hd; d += WG) {
      var a = acc[d] * alpha;
      for (var jj = 0u; jj < n; jj++) {
        a = fma(probs[jj], vCache[u32(plan[first + j0 + jj]) * width + h * p.hd + d], a);
      }
      acc[d] = a;
    }
    workgroupBarrier(); // probs is rewritten by the next chunk
  }
  let oo = t * width + h * p.hd;
  for (var d = li; d < p.hd; d += WG) { outBuf[oo + d] = acc[d] / l; }
}

// kvWrite: one invocation per (row t, element e < H * hd): k and v of row t go to slot slots[t].
struct KvParams { T: u32, H: u32, hd: u32 }

@group(0) @binding(0) var<uniform> kp: KvParams;
@group(0) @binding(1) var<storage, read_write> kOut: array<f32>;
@group(0) @binding(2) var<storage, read_write> vOut: array<f32>;
@group(0) @binding(3) var<storage, read> qkvIn: array<f32>;
@group(0) @binding(4) var<storage, read> slots: array<i32>;

@compute @workgroup_size(WG)
fn kvWrite(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * WG;
  let width = kp.H * kp.hd;
  if (id >= kp.T * width) { return; }
  let t = id / width;
  let e = id % width;
  let src = (t * kp.H + e / kp.hd) * 3u * kp.hd + e % kp.hd;
  let dst = u32(slots[t]) * width + e;
  kOut[dst] = qkvIn[src + kp.hd];
  vOut[dst] = qkvIn[src + 2u * kp.hd];
}
