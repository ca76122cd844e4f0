// N-API binding of the CPU kernels. Tensors live in native 64-byte-aligned memory owned by a Buf behind
// a JS External; the TS wrapper (../backend.ts) checks shapes, this file checks what would otherwise
// read or write out of bounds (slot and row indices, buffer sizes).

#include <napi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu.h"
#include "gemm.h"
#include "memory.h"
#include "ops.h"
#include "sampling.h"
#include "simd.h"
#include "thread_pool.h"

namespace bs {

static Isa gIsa = detectIsa();
Isa isa() { return gIsa; }
Isa setIsa(Isa cap) { return gIsa = std::min(cap, detectIsa()); }

static const char* isaName(Isa i) { return i == kIsaAvx512Bf16 ? "avx512bf16" : i == kIsaAvx2 ? "avx2" : "portable"; }

struct Buf {
  void* data = nullptr;
  int64_t elements = 0;
  int dtype = kF32;
  bool freed = false;
  float* packed = nullptr;  // GEMM panels of a weight, built on first large-M use
  uint16_t* packedBf16 = nullptr;  // its bf16 panels for the bf16 compute path, built on first use
  void dropPanels() {
    std::free(packed);
    std::free(packedBf16);
    packed = nullptr;
    packedBf16 = nullptr;
  }
  void release() {
    std::free(data);
    data = nullptr;
    dropPanels();
    freed = true;
  }
};

static int64_t elementBytes(int dtype) { return dtype == kF32 ? 4 : 2; }

static Buf* buf(const Napi::Value& v, const char* what) {
  if (!v.IsExternal()) throw Napi::TypeError::New(v.Env(), std::string(what) + ": not a cpu tensor");
  Buf* b = v.As<Napi::External<Buf>>().Data();
  if (b->freed) throw Napi::Error::New(v.Env(), std::string(what) + ": tensor used after free");
  return b;
}

static float* f32(const Napi::Value& v, const char* what) {
  Buf* b = buf(v, what);
  if (b->dtype != kF32) throw Napi::TypeError::New(v.Env(), std::string(what) + ": must be an f32 tensor");
  return static_cast<float*>(b->data);
}

static int64_t i64(const Napi::CallbackInfo& info, int i) { return info[i].As<Napi::Number>().Int64Value(); }

static void need(Napi::Env env, bool ok, const std::string& msg) {
  if (!ok) throw Napi::RangeError::New(env, msg);
}

thread_local std::vector<float> tlsResidualCopy;

// ---- memory ----

static Napi::Value Alloc(const Napi::CallbackInfo& info) {
  const int64_t elements = i64(info, 0);
  const int dtype = static_cast<int>(i64(info, 1));
  Buf* b = new Buf();
  b->elements = elements;
  b->dtype = dtype;
  b->data = alignedZeroed(elements * elementBytes(dtype));
  if (!b->data) {
    delete b;
    throw Napi::Error::New(info.Env(), "cpu backend: out of memory allocating " + std::to_string(elements) + " elements");
  }
  return Napi::External<Buf>::New(info.Env(), b, [](Napi::Env, Buf* p) {
    p->release();
    delete p;
  });
}

/** Copies a typed array's bytes into the tensor at element `offset` (upload, write). */
static void Write(const Napi::CallbackInfo& info) {
  Buf* b = buf(info[0], "write");
  auto arr = info[1].As<Napi::TypedArray>();
  const int64_t offset = i64(info, 2);
  const int64_t n = static_cast<int64_t>(arr.ElementLength());
  need(info.Env(), static_cast<int64_t>(arr.ElementSize()) == elementBytes(b->dtype), "write: element size does not match the tensor dtype");
  need(info.Env(), offset >= 0 && offset + n <= b->elements, "write: data runs past the end of the tensor");
  auto* src = static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  std::memcpy(static_cast<uint8_t*>(b->data) + offset * elementBytes(b->dtype), src, n * elementBytes(b->dtype));
  b->dropPanels();  // contents changed: the GEMM panels are stale
}

static Napi::Value Read(const Napi::CallbackInfo& info) {
  const float* d = f32(info[0], "read");
  const int64_t count = i64(info, 1);
  need(info.Env(), count >= 0 && count <= buf(info[0], "read")->elements, "read: count exceeds the tensor");
  auto out = Napi::Float32Array::New(info.Env(), count);
  std::memcpy(out.Data(), d, count * sizeof(float));
  return out;
}

/** readInto(buf, dst, count): copies the first `count` floats into a caller-owned Float32Array. */
static void ReadInto(const Napi::CallbackInfo& info) {
  const float* d = f32(info[0], "readInto");
  need(info.Env(), info[1].IsTypedArray() && info[1].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array, "readInto: destination must be a Float32Array");
  auto dst = info[1].As<Napi::Float32Array>();
  const int64_t count = i64(info, 2);
  need(info.Env(), count >= 0 && count <= buf(info[0], "readInto")->elements, "readInto: count exceeds the tensor");
  need(info.Env(), count <= static_cast<int64_t>(dst.ElementLength()), "readInto: destination too small");
  std::memcpy(dst.Data(), d, count * sizeof(float));
}

static void Free(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) return;
  Buf* b = info[0].As<Napi::External<Buf>>().Data();
  if (!b->freed) b->release();
}

// ---- ops ----

/** The weight's tiled-GEMM panels, built on first need and kept until its contents change. */
static const float* packedPanels(Napi::Env env, Buf* w, int64_t N, int64_t K) {
  if (!w->packed) {
    w->packed = static_cast<float*>(alignedZeroed(packedSize(N, K) * 4));
    if (!w->packed) throw Napi::Error::New(env, "matmul: out of memory packing weights");
    packWeights(w->packed, w->data, w->dtype, N, K);
  }
  return w->packed;
}

/** The weight converted to bf16 panels (the bf16 compute path), built once and kept like packedPanels. */
static const uint16_t* packedBf16Panels(Napi::Env env, Buf* w, int64_t N, int64_t K) {
  if (!w->packedBf16) {
    w->packedBf16 = static_cast<uint16_t*>(alignedZeroed(packedBf16Size(N, K) * 2));
    if (!w->packedBf16) throw Napi::Error::New(env, "matmul: out of memory converting weights to bf16");
    packWeightsBf16(w->packedBf16, w->data, w->dtype, N, K);
  }
  return w->packedBf16;
}

/** Whether a matmul with compute flag `bf16` takes the bf16 kernels (they need AVX512_BF16). */
static bool bf16Compute(bool bf16) { return bf16 && isa() >= kIsaAvx512Bf16; }

/**
 * prepack(w, N, K, bf16): builds a weight's GEMM panels now, at load, instead of inside the first call
 * that needs them; with bf16 compute that is the one conversion of the weight to bf16.
 */
static void Prepack(const Napi::CallbackInfo& info) {
  Buf* w = buf(info[0], "prepack w");
  const int64_t N = i64(info, 1), K = i64(info, 2);
  need(info.Env(), N > 0 && K > 0 && w->elements == N * K, "prepack: size mismatch");
  if (bf16Compute(info[3].ToBoolean().Value())) packedBf16Panels(info.Env(), w, N, K);
  else if (useAvx2()) packedPanels(info.Env(), w, N, K);  // the portable path reads W as it is
}

static void Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Buf* out = buf(info[0], "matmul out");
  Buf* x = buf(info[1], "matmul x");
  Buf* w = buf(info[2], "matmul w");
  MatmulArgs a{};
  a.M = i64(info, 3);
  a.K = i64(info, 4);
  a.N = i64(info, 5);
  need(env, out->dtype == kF32 && x->dtype == kF32, "matmul: out and x must be f32");
  need(env, x->elements == a.M * a.K && out->elements == a.M * a.N && w->elements == a.N * a.K, "matmul: size mismatch");
  need(env, out != x, "matmul: out must not alias x");
  a.out = static_cast<float*>(out->data);
  a.x = static_cast<const float*>(x->data);
  a.w = w->data;
  a.wDtype = w->dtype;
  if (!info[6].IsNull() && !info[6].IsUndefined()) {
    Buf* bias = buf(info[6], "matmul bias");
    need(env, bias->dtype == kF32 && bias->elements == a.N, "matmul: bias must be f32 [N]");
    a.bias = static_cast<const float*>(bias->data);
  }
  if (!info[7].IsNull() && !info[7].IsUndefined()) {
    Buf* res = buf(info[7], "matmul residual");
    need(env, res->dtype == kF32 && res->elements == a.M * a.N, "matmul: residual must be f32 [M, N]");
    a.residual = static_cast<const float*>(res->data);
    if (res == out) {  // out is written while summing; keep the residual's values aside first
      if (static_cast<int64_t>(tlsResidualCopy.size()) < a.M * a.N) tlsResidualCopy.resize(a.M * a.N);
      std::memcpy(tlsResidualCopy.data(), res->data, a.M * a.N * sizeof(float));
      a.residual = tlsResidualCopy.data();
    }
  }
  a.gelu = info[8].ToBoolean().Value();
  if (bf16Compute(info[9].ToBoolean().Value())) {
    a.packedBf16 = packedBf16Panels(env, w, a.N, a.K);
    matmulBf16(a);
    return;
  }
  if (usesTiledGemm(a.M, a.K, a.N, w->dtype) && useAvx2()) a.packed = packedPanels(env, w, a.N, a.K);
  matmul(a);
}

static void LayerNorm(const Napi::CallbackInfo& info) {
  Buf* out = buf(info[0], "layerNorm out");
  Buf* x = buf(info[1], "layerNorm x");
  const int64_t rows = i64(info, 4), width = i64(info, 5);
  need(info.Env(), out->elements >= rows * width && x->elements >= rows * width, "layerNorm: size mismatch");
  need(info.Env(), buf(info[2], "gamma")->elements >= width && buf(info[3], "beta")->elements >= width, "layerNorm: gamma/beta too small");
  layerNorm(static_cast<float*>(out->data), f32(info[1], "x"), f32(info[2], "gamma"), f32(info[3], "beta"), rows, width,
            static_cast<float>(info[6].As<Napi::Number>().DoubleValue()));
}

static void Add(const Napi::CallbackInfo& info) {
  Buf* out = buf(info[0], "add out");
  Buf* a = buf(info[1], "add a");
  Buf* b = buf(info[2], "add b");
  need(info.Env(), out->elements == a->elements && a->elements == b->elements, "add: shape mismatch");
  add(f32(info[0], "out"), f32(info[1], "a"), f32(info[2], "b"), out->elements);
}

static void GatherRows(const Napi::CallbackInfo& info) {
  Buf* out = buf(info[0], "gatherRows out");
  Buf* src = buf(info[1], "gatherRows src");
  auto rows = info[2].As<Napi::Int32Array>();
  const int64_t offset = i64(info, 3), width = i64(info, 4);
  const int64_t count = static_cast<int64_t>(rows.ElementLength());
  need(info.Env(), width > 0, "gatherRows: width must be positive");
  const int64_t srcRows = src->elements / width;
  const int32_t* r = rows.Data();
  for (int64_t i = 0; i < count; i++)
    if (r[i] < 0 || r[i] >= srcRows) need(info.Env(), false, "gatherRows: row " + std::to_string(r[i]) + " out of range");
  need(info.Env(), offset >= 0 && (offset + count) * width <= out->elements, "gatherRows: output too small");
  gatherRows(f32(info[0], "out"), src->data, src->dtype, rows.Data(), count, offset, width);
}

static void Rotary(const Napi::CallbackInfo& info) {
  Buf* qkv = buf(info[0], "rotary qkv");
  auto positions = info[1].As<Napi::Int32Array>();
  const int64_t heads = i64(info, 2), hd = i64(info, 3), rot = i64(info, 4);
  const int64_t T = static_cast<int64_t>(positions.ElementLength());
  need(info.Env(), qkv->elements >= T * heads * 3 * hd, "rotary: qkv too small");
  need(info.Env(), rot % 2 == 0 && rot <= hd && hd <= 1024, "rotary: rotDims must be even and <= headDim <= 1024");
  rotary(f32(info[0], "qkv"), positions.Data(), T, heads, hd, rot, info[5].As<Napi::Number>().DoubleValue());
}

static void KvWrite(const Napi::CallbackInfo& info) {
  Buf* k = buf(info[0], "kvWrite kCache");
  Buf* v = buf(info[1], "kvWrite vCache");
  Buf* qkv = buf(info[2], "kvWrite qkv");
  auto slots = info[3].As<Napi::Int32Array>();
  const int64_t heads = i64(info, 4), hd = i64(info, 5), T = static_cast<int64_t>(slots.ElementLength());
  const int64_t numSlots = std::min(k->elements, v->elements) / (heads * hd);
  need(info.Env(), qkv->elements >= T * heads * 3 * hd, "kvWrite: qkv too small");
  const int32_t* sl = slots.Data();
  for (int64_t t = 0; t < T; t++)
    if (sl[t] < 0 || sl[t] >= numSlots) need(info.Env(), false, "kvWrite: slot " + std::to_string(sl[t]) + " out of range");
  need(info.Env(), k->dtype == v->dtype && (k->dtype == kF32 || k->dtype == kBF16), "kvWrite: K and V caches must both be f32 or both bf16");
  kvWrite(k->data, v->data, k->dtype, f32(info[2], "qkv"), slots.Data(), T, heads, hd);
}

static void Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Buf* out = buf(info[0], "attention out");
  Buf* qkv = buf(info[1], "attention qkv");
  Buf* k = buf(info[2], "attention kCache");
  Buf* v = buf(info[3], "attention vCache");
  auto rowSeq = info[4].As<Napi::Int32Array>();
  auto rowCtx = info[5].As<Napi::Int32Array>();
  auto offsets = info[6].As<Napi::Int32Array>();
  auto slots = info[7].As<Napi::Int32Array>();
  AttentionArgs a{};
  a.heads = i64(info, 8);
  a.headDim = i64(info, 9);
  a.scale = static_cast<float>(info[10].As<Napi::Number>().DoubleValue());
  a.bf16Compute = info.Length() > 11 && info[11].ToBoolean().Value();  // the backend's compute dtype
  a.T = static_cast<int64_t>(rowSeq.ElementLength());
  const int64_t width = a.heads * a.headDim;
  need(env, a.headDim <= 1024, "attention: headDim above 1024");
  need(env, static_cast<int64_t>(rowCtx.ElementLength()) == a.T, "attention: rowCtxLen length != rows");
  need(env, out->elements >= a.T * width && qkv->elements >= a.T * 3 * width, "attention: out or qkv too small");
  const int64_t seqs = static_cast<int64_t>(offsets.ElementLength()) - 1;
  const int64_t numSlots = std::min(k->elements, v->elements) / width;
  const int32_t *off = offsets.Data(), *sl = slots.Data(), *rs = rowSeq.Data(), *rc = rowCtx.Data();
  need(env, seqs >= 0 && off[seqs] <= static_cast<int64_t>(slots.ElementLength()), "attention: seqSlotOffsets exceed seqSlots");
  // Messages are built only on failure: these loops run over every slot of every call.
  for (int64_t i = 0; i < static_cast<int64_t>(slots.ElementLength()); i++)
    if (sl[i] < 0 || sl[i] >= numSlots) need(env, false, "attention: slot " + std::to_string(sl[i]) + " out of range");
  for (int64_t t = 0; t < a.T; t++) {
    const int32_t s = rs[t];
    need(env, s >= 0 && s < seqs, "attention: row sequence out of range");
    if (!(rc[t] >= 1 && off[s] >= 0 && off[s] + rc[t] <= off[s + 1])) need(env, false, "attention: row " + std::to_string(t) + " context exceeds its sequence");
  }
  a.out = f32(info[0], "out");
  a.qkv = f32(info[1], "qkv");
  need(env, k->dtype == v->dtype && (k->dtype == kF32 || k->dtype == kBF16), "attention: K and V caches must both be f32 or both bf16");
  a.kCache = k->data;
  a.vCache = v->data;
  a.kvDtype = k->dtype;
  a.rowSeq = rowSeq.Data();
  a.rowCtxLen = rowCtx.Data();
  a.seqSlotOffsets = offsets.Data();
  a.seqSlots = slots.Data();
  attention(a);
}

// ---- setup and machine probes ----

static Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("threads", pool().threads());
  o.Set("avx2", useAvx2());
  o.Set("cpuHasAvx2", detectAvx2());
  o.Set("isa", isaName(isa()));
  o.Set("cpuIsa", isaName(detectIsa()));
  return o;
}

/** configure(threads, isaCap): isaCap 0 portable, 1 AVX2, 2 AVX512-BF16 (capped at what the CPU has). */
static void Configure(const Napi::CallbackInfo& info) {
  configurePool(static_cast<int>(i64(info, 0)));
  const int64_t cap = i64(info, 1);
  need(info.Env(), cap >= kIsaPortable && cap <= kIsaAvx512Bf16, "configure: isa cap must be 0, 1 or 2");
  setIsa(static_cast<Isa>(cap));
}

static Napi::Value PeakBf16(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), measurePeakBf16Flops(info[0].As<Napi::Number>().DoubleValue()));
}

static Napi::Value PeakFlops(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), measurePeakFlops(info[0].As<Napi::Number>().DoubleValue()));
}

static Napi::Value Triad(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), measureTriadBytesPerSecond(i64(info, 0), static_cast<int>(i64(info, 1))));
}

// ---- sampling passes (engine/sampler) over rows of a JS Float32Array ----

/** Data of a typed array argument of the expected kind, at least `need` elements long. */
template <class T>
static T* typed(const Napi::CallbackInfo& info, int i, napi_typedarray_type type, int64_t needed, const char* what) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
    throw Napi::TypeError::New(info.Env(), std::string(what) + ": wrong array type");
  auto arr = info[i].As<Napi::TypedArray>();
  need(info.Env(), static_cast<int64_t>(arr.ElementLength()) >= needed, std::string(what) + ": array too short");
  return reinterpret_cast<T*>(static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset());
}

/** The row logits[offset .. offset + V) of argument 0 (offset, V in arguments 1 and 2). */
static const float* logitsRow(const Napi::CallbackInfo& info, int64_t& V) {
  const int64_t offset = i64(info, 1);
  V = i64(info, 2);
  need(info.Env(), offset >= 0 && V >= 0, "sampling: negative offset or width");
  if (!samplingReady()) throw Napi::Error::New(info.Env(), "sampling: samplingSetup was not called");
  return typed<float>(info, 0, napi_float32_array, offset + V, "logits") + offset;
}

static double num(const Napi::CallbackInfo& info, int i) { return info[i].As<Napi::Number>().DoubleValue(); }

static void SamplingSetup(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(info.Env(), "samplingSetup: table must be a Float64Array");
  const int64_t n = info[0].As<Napi::TypedArray>().ElementLength();
  samplingSetup(typed<double>(info, 0, napi_float64_array, n, "table"), n, num(info, 1), num(info, 2), num(info, 3),
                static_cast<int>(i64(info, 4)), static_cast<int>(i64(info, 5)));
}

static Napi::Value RowArgmax(const Napi::CallbackInfo& info) {
  int64_t V;
  const float* row = logitsRow(info, V);
  return Napi::Number::New(info.Env(), static_cast<double>(rowArgmax(row, V)));
}

// (logits, offset, V, max, scale, floor, counts)
static void BinCounts(const Napi::CallbackInfo& info) {
  int64_t V;
  const float* row = logitsRow(info, V);
  int32_t* counts = typed<int32_t>(info, 6, napi_int32_array, samplingBuckets() + 2, "counts");
  binCounts(row, V, num(info, 3), num(info, 4), num(info, 5), counts);
}

// (logits, offset, V, max, scale, floor, bin, k)
static Napi::Value FindInBin(const Napi::CallbackInfo& info) {
  int64_t V;
  const float* row = logitsRow(info, V);
  const int64_t i = findInBin(row, V, num(info, 3), num(info, 4), num(info, 5), static_cast<int>(i64(info, 6)), i64(info, 7));
  return Napi::Number::New(info.Env(), static_cast<double>(i));
}

// (logits, offset, V, max, invT, floor, w, mass | null)
static Napi::Value ExpWeights(const Napi::CallbackInfo& info) {
  int64_t V;
  const float* row = logitsRow(info, V);
  double* w = typed<double>(info, 6, napi_float64_array, V, "weights");
  double* mass = info[7].IsNull() ? nullptr : typed<double>(info, 7, napi_float64_array, samplingBuckets(), "mass");
  return Napi::Number::New(info.Env(), expWeights(row, V, num(info, 3), num(info, 4), num(info, 5), w, mass));
}

// (logits, offset, V, w, max, invT, bucket, out)
static Napi::Value CollectBucket(const Napi::CallbackInfo& info) {
  int64_t V;
  const float* row = logitsRow(info, V);
  const double* w = typed<double>(info, 3, napi_float64_array, V, "weights");
  int32_t* out = typed<int32_t>(info, 7, napi_int32_array, V, "out");
  return Napi::Number::New(info.Env(), static_cast<double>(collectBucket(row, V, w, num(info, 4), num(info, 5), static_cast<int>(i64(info, 6)), out)));
}

// (logits, offset, V, w, max, invT, nucleus, edge, cutoff, u)
static Napi::Value DrawWeighted(const Napi::CallbackInfo& info) {
  int64_t V;
  const float* row = logitsRow(info, V);
  const double* w = typed<double>(info, 3, napi_float64_array, V, "weights");
  const int64_t i = drawWeighted(row, V, w, num(info, 4), num(info, 5), info[6].ToBoolean().Value(), static_cast<int>(i64(info, 7)), num(info, 8), num(info, 9));
  return Napi::Number::New(info.Env(), static_cast<double>(i));
}

// (logits, offset, V, k, floor, out)
static Napi::Value TopK(const Napi::CallbackInfo& info) {
  int64_t V;
  const float* row = logitsRow(info, V);
  const int64_t k = std::min(i64(info, 3), V);
  int32_t* out = typed<int32_t>(info, 5, napi_int32_array, std::max<int64_t>(k, 0), "out");
  return Napi::Number::New(info.Env(), static_cast<double>(topK(row, V, k, num(info, 4), out)));
}

// (logits, offset, V, max)
static Napi::Value ExpSum(const Napi::CallbackInfo& info) {
  int64_t V;
  const float* row = logitsRow(info, V);
  return Napi::Number::New(info.Env(), expSum(row, V, num(info, 3)));
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("configure", Napi::Function::New(env, Configure));
  exports.Set("alloc", Napi::Function::New(env, Alloc));
  exports.Set("write", Napi::Function::New(env, Write));
  exports.Set("read", Napi::Function::New(env, Read));
  exports.Set("readInto", Napi::Function::New(env, ReadInto));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("matmul", Napi::Function::New(env, Matmul));
  exports.Set("prepack", Napi::Function::New(env, Prepack));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm));
  exports.Set("add", Napi::Function::New(env, Add));
  exports.Set("gatherRows", Napi::Function::New(env, GatherRows));
  exports.Set("rotary", Napi::Function::New(env, Rotary));
  exports.Set("kvWrite", Napi::Function::New(env, KvWrite));
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("peakFlops", Napi::Function::New(env, PeakFlops));
  exports.Set("peakBf16", Napi::Function::New(env, PeakBf16));
  exports.Set("triad", Napi::Function::New(env, Triad));
  exports.Set("samplingSetup", Napi::Function::New(env, SamplingSetup));
  exports.Set("rowArgmax", Napi::Function::New(env, RowArgmax));
  exports.Set("binCounts", Napi::Function::New(env, BinCounts));
  exports.Set("findInBin", Napi::Function::New(env, FindInBin));
  exports.Set("expWeights", Napi::Function::New(env, ExpWeights));
  exports.Set("collectBucket", Napi::Function::New(env, CollectBucket));
  exports.Set("drawWeighted", Napi::Function::New(env, DrawWeighted));
  exports.Set("expSum", Napi::Function::New(env, ExpSum));
  exports.Set("topK", Napi::Function::New(env, TopK));
  return exports;
}

}  // namespace bs

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return bs::Init(env, exports); }
NODE_API_MODULE(blockserve_cpu, InitModule)
