// onnxruntime-node's MatMul as the peer for our GEMM: a one-node ONNX model written by hand (a few
// protobuf fields), B as an initializer so onnxruntime may pre-pack it as it would for a real model.
// onnxruntime-node is a dev dependency loaded lazily; when it is missing the peer is simply absent.

// ---- a minimal protobuf writer (varints, length-delimited fields) ----

function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

class Msg {
  private readonly parts: Uint8Array[] = [];
  int(field: number, value: number): this {
    this.parts.push(Uint8Array.from([...varint((field << 3) | 0), ...varint(value)]));
    return this;
  }
  bytes(field: number, payload: Uint8Array): this {
    this.parts.push(Uint8Array.from([...varint((field << 3) | 2), ...varint(payload.length)]), payload);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Msg): this {
    return this.bytes(field, m.encode());
  }
  encode(): Uint8Array {
    const total = this.parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

function valueInfo(name: string, dims: number[]): Msg {
  const shape = new Msg();
  for (const d of dims) shape.msg(1, new Msg().int(1, d)); // TensorShapeProto.dim { dim_value }
  const tensorType = new Msg().int(1, FLOAT).msg(2, shape); // TypeProto.Tensor { elem_type, shape }
  return new Msg().str(1, name).msg(2, new Msg().msg(1, tensorType)); // ValueInfoProto { name, type }
}

/** ONNX model: C[M,N] = A[M,K] x B[K,N] with B a constant initializer. */
export function matmulModel(M: number, K: number, N: number, b: Float32Array): Uint8Array {
  const init = new Msg()
    .int(1, K)
    .int(1, N)
    .int(2, FLOAT)
    .str(8, 'B')
    .bytes(9, new Uint8Array(b.buffer, b.byteOffset, b.byteLength)); // TensorProto { dims, data_type, name, raw_data }
  const node = new Msg().str(1, 'A').str(1, 'B').str(2, 'C').str(3, 'matmul').str(4, 'MatMul');
  const graph = new Msg()
    .msg(1, node)
    .str(2, 'bench')
    .msg(5, init)
    .msg(11, valueInfo('A', [M, K]))
    .msg(12, valueInfo('C', [M, N]));
  return new Msg().int(1, 8).msg(8, new Msg().str(1, '').int(2, 13)).str(2, 'blockserve-bench').msg(7, graph).encode(); // ir_version 8, opset 13
}

type Ort = typeof import('onnxruntime-node');
let ortPromise: Promise<Ort | null> | null = null;
let ortError: string | null = null;

export function loadOrt(): Promise<Ort | null> {
  ortPromise ??= import('onnxruntime-node').then(
    (m) => ((m as { default?: Ort }).default ?? m) as Ort,
    (e: unknown) => {
      ortError = (e as Error).message.split('\n')[0] ?? String(e);
      return null;
    },
  );
  return ortPromise;
}

export function ortLoadError(): string | null {
  return ortError;
}

/** A live onnxruntime MatMul session on [M,K] x [K,N]: run() times nothing, the caller does. */
export interface OrtMatmul {
  run(): Promise<void>;
  release(): Promise<void>;
}

/** Opens the peer's session for one shape, or null when onnxruntime is unavailable. */
export async function openOrtMatmul(M: number, K: number, N: number, threads: number): Promise<OrtMatmul | null> {
  const ort = await loadOrt();
  if (!ort) return null;
  const b = new Float32Array(K * N);
  for (let i = 0; i < b.length; i++) b[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  let session: Awaited<ReturnType<Ort['InferenceSession']['create']>>;
  try {
    session = await ort.InferenceSession.create(matmulModel(M, K, N, b), {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    ortError = (e as Error).message.split('\n')[0] ?? String(e);
    return null;
  }
  const feeds = { A: new ort.Tensor('float32', new Float32Array(M * K).fill(0.5), [M, K]) };
  return {
    run: async () => {
      await session.run(feeds);
    },
    release: () => session.release(),
  };
}
