// One safetensors file: strict header parsing, tensor reads, and a writer (tests, random weights).
//
// Format (github.com/huggingface/safetensors): 8-byte little-endian header length N, N bytes of UTF-8
// JSON `{ "__metadata__": {str: str}, NAME: { dtype, shape, data_offsets: [begin, end] } }`, then the
// data; offsets are relative to the data start, and the tensors must tile the data exactly (no overlap,
// no hole, nothing after the last one), as the official reader demands.
//
// API
//   readSafetensorsHeader(path)        -> parsed, validated header (no tensor data read)
//   readSafetensors(path, {skip, onProgress}) -> { tensors: Map<name, TensorView>, metadata }
//   writeSafetensors(path, tensors, metadata?)
//
// Memory: Node has no mmap, so "zero-copy" here means each tensor is read straight from the file into
// the typed array that is handed out (Float32Array for F32, Uint16Array of raw words for F16/BF16):
// one copy out of the page cache, exactly like readFileSync, and never a second one. Reading per tensor
// rather than into one file-sized Buffer means alignment never forces a copy, files over 2 GiB (Node's
// readFileSync limit) load, and skipped tensors are never read at all, nor kept alive by a shared buffer.
//
// Every problem is a WeightsError whose message starts with the file path.

import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { endianness } from 'node:os';

export type WeightDtype = 'f32' | 'f16' | 'bf16';

export interface TensorView {
  name: string;
  dtype: WeightDtype;
  shape: number[];
  /** Float32Array for f32; raw 16-bit words for f16 / bf16. Length = product of shape. */
  data: Float32Array | Uint16Array;
}

export class WeightsError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'WeightsError';
  }
}

/** Bytes per element of every dtype the format defines; used to check offsets even for dtypes we do not load. */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};
const LOADABLE: Record<string, WeightDtype> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };
const FILE_DTYPE: Record<WeightDtype, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/** The official reader's cap; anything larger is not a safetensors header. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  name: string;
  /** As written in the file ("F32", "I64", ...). */
  fileDtype: string;
  shape: number[];
  /** Absolute byte offsets in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  fileSize: number;
  dataStart: number;
  /** In file order of their data. */
  tensors: TensorEntry[];
  metadata: Record<string, string>;
}

export interface ReadOptions {
  /** Tensors for which this returns true are neither read nor returned. */
  skip?: (name: string) => boolean;
  /** Called after each tensor with the bytes read so far and the bytes this read will take in all. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

function openForRead(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new WeightsError(path, 'file not found');
    if (code === 'EISDIR') throw new WeightsError(path, 'is a directory, not a safetensors file');
    throw new WeightsError(path, `cannot open: ${(e as Error).message}`);
  }
}

/** Reads exactly `length` bytes at `position` into `target` (in chunks: one read() is capped near 2 GiB). */
function readFully(fd: number, path: string, target: Uint8Array, position: number): void {
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < target.length) {
    const want = Math.min(CHUNK, target.length - done);
    const got = readSync(fd, target, done, want, position + done);
    if (got === 0) throw new WeightsError(path, `truncated: file ended at byte ${position + done} while reading`);
    done += got;
  }
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function parseHeaderJson(path: string, bytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new WeightsError(path, 'corrupt header: not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WeightsError(path, `corrupt header: invalid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new WeightsError(path, 'corrupt header: JSON is not an object');
  }
  return json as Record<string, unknown>;
}

function parseEntry(path: string, name: string, raw: unknown, dataStart: number, dataBytes: number): TensorEntry {
  const bad = (what: string) => new WeightsError(path, `corrupt header: tensor "${name}" ${what}`);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad('is not an object');
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') throw bad('has no dtype string');
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`has an invalid shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw bad(`has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [b, e] = offsets as [number, number];
  if (e > dataBytes) {
    throw new WeightsError(
      path,
      `truncated or corrupt: tensor "${name}" data [${b}, ${e}) runs past the end of the data section (${dataBytes} bytes)`,
    );
  }
  const elemBytes = DTYPE_BYTES[dtype];
  if (elemBytes !== undefined) {
    const count = shape.reduce((a: number, s: number) => a * s, 1);
    if (count * elemBytes !== e - b) {
      throw bad(`holds ${e - b} bytes but ${dtype} ${JSON.stringify(shape)} needs ${count * elemBytes}`);
    }
  }
  return { name, fileDtype: dtype, shape: [...shape], begin: dataStart + b, end: dataStart + e };
}

function parseMetadata(path: string, raw: unknown): Record<string, string> {
  if (raw === undefined) return {};
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new WeightsError(path, 'corrupt header: __metadata__ is not an object');
  }
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new WeightsError(path, `corrupt header: __metadata__.${k} is not a string`);
  }
  return { ...(raw as Record<string, string>) };
}

/** Overlaps, holes and trailing bytes: the tensors must tile the data section exactly. */
function checkTiling(path: string, tensors: TensorEntry[], dataStart: number, fileSize: number): void {
  let cursor = dataStart;
  let prev: TensorEntry | undefined;
  for (const t of tensors) {
    if (t.begin < cursor) {
      throw new WeightsError(path, `corrupt header: tensors "${prev!.name}" and "${t.name}" overlap`);
    }
    if (t.begin > cursor) {
      throw new WeightsError(path, `corrupt header: bytes [${cursor - dataStart}, ${t.begin - dataStart}) of the data belong to no tensor`);
    }
    cursor = t.end;
    prev = t;
  }
  if (cursor !== fileSize) {
    throw new WeightsError(path, `corrupt: ${fileSize - cursor} bytes after the last tensor's data`);
  }
}

function headerFromFd(fd: number, path: string): SafetensorsHeader {
  const fileSize = fstatSync(fd).size;
  if (fileSize < 8) throw new WeightsError(path, `truncated: ${fileSize} bytes, shorter than the 8-byte header length`);
  const lenBytes = new Uint8Array(8);
  readFully(fd, path, lenBytes, 0);
  const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    throw new WeightsError(path, `header length ${headerLen} is absurd (limit ${MAX_HEADER_BYTES}): not a safetensors file`);
  }
  const n = Number(headerLen);
  if (8 + n > fileSize) {
    throw new WeightsError(path, `truncated: header length ${n} runs past the end of the file (${fileSize} bytes)`);
  }
  const headerBytes = new Uint8Array(n);
  readFully(fd, path, headerBytes, 8);
  const json = parseHeaderJson(path, headerBytes);
  const dataStart = 8 + n;
  const metadata = parseMetadata(path, json.__metadata__);
  const tensors: TensorEntry[] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === '__metadata__') continue;
    tensors.push(parseEntry(path, name, raw, dataStart, fileSize - dataStart));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  checkTiling(path, tensors, dataStart, fileSize);
  return { path, fileSize, dataStart, tensors, metadata };
}

export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openForRead(path);
  try {
    return headerFromFd(fd, path);
  } finally {
    closeSync(fd);
  }
}

function loadableDtype(path: string, t: TensorEntry): WeightDtype {
  const d = LOADABLE[t.fileDtype];
  if (!d) {
    throw new WeightsError(path, `tensor "${t.name}" has dtype ${t.fileDtype}; only F32, F16 and BF16 are supported`);
  }
  return d;
}

function readTensor(fd: number, path: string, t: TensorEntry, dtype: WeightDtype): TensorView {
  const count = t.shape.reduce((a, s) => a * s, 1);
  const data = dtype === 'f32' ? new Float32Array(count) : new Uint16Array(count);
  readFully(fd, path, new Uint8Array(data.buffer, 0, data.byteLength), t.begin);
  return { name: t.name, dtype, shape: t.shape, data };
}

/** Reads the selected tensors of a header already parsed (used by the sharded loader to report progress across files). */
export function readTensorsOf(
  header: SafetensorsHeader,
  opts: { skip?: (name: string) => boolean; onBytes?: (n: number) => void } = {},
): Map<string, TensorView> {
  const { path } = header;
  if (endianness() !== 'LE') throw new WeightsError(path, 'safetensors data is little-endian; this machine is not');
  const wanted = header.tensors.filter((t) => !opts.skip?.(t.name));
  // Dtype errors come before any reading, so a bad file fails fast.
  const dtypes = wanted.map((t) => loadableDtype(path, t));
  const out = new Map<string, TensorView>();
  const fd = openForRead(path);
  try {
    wanted.forEach((t, i) => {
      out.set(t.name, readTensor(fd, path, t, dtypes[i]!));
      opts.onBytes?.(t.end - t.begin);
    });
  } finally {
    closeSync(fd);
  }
  return out;
}

/** Bytes readTensorsOf will read for this header and skip rule. */
export function bytesToRead(header: SafetensorsHeader, skip?: (name: string) => boolean): number {
  return header.tensors.reduce((a, t) => (skip?.(t.name) ? a : a + t.end - t.begin), 0);
}

export function readSafetensors(
  path: string,
  opts: ReadOptions = {},
): { tensors: Map<string, TensorView>; metadata: Record<string, string> } {
  const header = readSafetensorsHeader(path);
  const total = bytesToRead(header, opts.skip);
  let done = 0;
  const tensors = readTensorsOf(header, {
    skip: opts.skip,
    onBytes: (n) => opts.onProgress?.((done += n), total),
  });
  return { tensors, metadata: header.metadata };
}

/**
 * Writes tensors in the given order, header padded with spaces to a multiple of 8 bytes (as the
 * official writer does, so f32 data starts aligned), streaming each tensor's bytes to the file.
 */
export function writeSafetensors(path: string, tensors: TensorView[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const count = t.shape.reduce((a, s) => a * s, 1);
    if (t.name === '__metadata__' || t.name in header)
      throw new WeightsError(path, `cannot write: duplicate or reserved tensor name "${t.name}"`);
    if (t.data.length !== count) {
      throw new WeightsError(path, `cannot write "${t.name}": ${t.data.length} values for shape ${JSON.stringify(t.shape)}`);
    }
    const wantArray = t.dtype === 'f32' ? Float32Array : Uint16Array;
    if (!(t.data instanceof wantArray)) throw new WeightsError(path, `cannot write "${t.name}": ${t.dtype} needs a ${wantArray.name}`);
    header[t.name] = { dtype: FILE_DTYPE[t.dtype], shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json);
  json += ' '.repeat((8 - ((8 + jsonBytes) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, prefix);
    writeSync(fd, headerBytes);
    for (const t of tensors) {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, Math.min(1 << 30, bytes.length - done));
    }
  } finally {
    closeSync(fd);
  }
}
