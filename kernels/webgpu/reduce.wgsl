// Workgroup reductions shared by the shaders that reduce a row across one workgroup (layernorm,
// attention). Appended to those shaders by withConsts(..., ['reduce.wgsl']); the including shader
// defines WG, its workgroup size (a power of two).

var<workgroup> red: array<f32, WG>;

fn workgroupMax(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] = max(red[li], red[li + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn workgroupSum(v: f32, li: u32) -> f32 {
  red[li] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

