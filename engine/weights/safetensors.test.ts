import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, readSafetensorsHeader, writeSafetensors, WeightsError, type TensorView } from './safetensors.ts';
import { f16ToF32, bf16ToF32 } from './convert.ts';

const testdata = new URL('./testdata/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'blockserve-st-'));
let fileNo = 0;

/** A file built by hand, independent of writeSafetensors: 8-byte length, JSON, data. */
function rawFile(header: unknown, data: Uint8Array, headerLength?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  const path = join(dir, `raw${fileNo++}.safetensors`);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

/** Runs fn, expects a WeightsError whose message names the file and matches every pattern. */
function expectError(fn: () => unknown, path: string, ...patterns: RegExp[]): string {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof WeightsError, `expected a WeightsError, got ${String(caught)}`);
  assert.ok(caught.message.includes(path), `message does not name the file: ${caught.message}`);
  for (const p of patterns) assert.match(caught.message, p);
  return caught.message;
}

test('reads a file written by the official safetensors library', () => {
  const { tensors, metadata } = readSafetensors(join(testdata, 'official.safetensors'));
  assert.deepEqual(metadata, { format: 'pt', note: 'blockserve test' });
  assert.deepEqual([...tensors.keys()].sort(), ['a.f32', 'b.f16', 'c.bf16', 'd.scalar', 'e.empty']);
  const a = tensors.get('a.f32')!;
  assert.equal(a.dtype, 'f32');
  assert.deepEqual(a.shape, [2, 3]);
  assert.ok(a.data instanceof Float32Array);
  assert.deepEqual([...a.data], [1, -2.5, 3.25, 0, Math.fround(1e-3), -7]);
  const b = tensors.get('b.f16')!;
  assert.equal(b.dtype, 'f16');
  assert.ok(b.data instanceof Uint16Array);
  assert.deepEqual([...f16ToF32(b.data as Uint16Array)], [1, -2, 0.5, 65504, 2 ** -24]);
  const c = tensors.get('c.bf16')!;
  assert.equal(c.dtype, 'bf16');
  assert.deepEqual(c.shape, [2, 2]);
  assert.deepEqual([...bf16ToF32(c.data as Uint16Array)], [1, -2, 3.140625, 2 ** 100]);
  assert.deepEqual(tensors.get('d.scalar')!.shape, []);
  assert.deepEqual([...tensors.get('d.scalar')!.data], [42]);
  assert.deepEqual(tensors.get('e.empty')!.shape, [0, 4]);
  assert.equal(tensors.get('e.empty')!.data.length, 0);
});

test('write then read round-trips every dtype, with metadata and an 8-byte aligned data start', () => {
  const path = join(dir, 'roundtrip.safetensors');
  const written: TensorView[] = [
    { name: 'x', dtype: 'bf16', shape: [3], data: new Uint16Array([0x3f80, 0xc000, 0x7f80]) }, // 6 bytes: next one is misaligned in the file
    { name: 'y', dtype: 'f32', shape: [2, 2], data: new Float32Array([1.5, -2, 1e-30, 3e30]) },
    { name: 'z', dtype: 'f16', shape: [1, 1, 2], data: new Uint16Array([0x3c00, 0x0001]) },
  ];
  writeSafetensors(path, written, { source: 'test', ünï: 'cödé' });
  const bytes = readFileSync(path);
  assert.equal(Number(bytes.readBigUInt64LE(0)) % 8, 0, 'header padded to a multiple of 8');
  const { tensors, metadata } = readSafetensors(path);
  assert.deepEqual(metadata, { source: 'test', ünï: 'cödé' });
  for (const w of written) {
    const r = tensors.get(w.name)!;
    assert.equal(r.dtype, w.dtype);
    assert.deepEqual(r.shape, w.shape);
    assert.equal(r.data.constructor, w.data.constructor);
    assert.deepEqual([...r.data], [...w.data]);
  }
  // y starts 6 bytes into the data section: the reader still hands out a proper Float32Array.
  assert.equal(tensors.get('y')!.data.byteOffset % 4, 0);
});

test('skipped tensors are not read, and progress counts only what is read', () => {
  const path = join(dir, 'skip.safetensors');
  writeSafetensors(path, [
    { name: 'keep', dtype: 'f32', shape: [4], data: new Float32Array([1, 2, 3, 4]) },
    { name: 'big.unused', dtype: 'f32', shape: [1000], data: new Float32Array(1000) },
    { name: 'keep2', dtype: 'bf16', shape: [2], data: new Uint16Array([1, 2]) },
  ]);
  const progress: [number, number][] = [];
  const { tensors } = readSafetensors(path, { skip: (n) => n.endsWith('.unused'), onProgress: (d, t) => progress.push([d, t]) });
  assert.deepEqual([...tensors.keys()], ['keep', 'keep2']);
  assert.deepEqual(progress, [
    [16, 20],
    [20, 20],
  ]);
});

test('a skipped tensor of an unsupported dtype does not stop the load', () => {
  const { tensors } = readSafetensors(join(testdata, 'official_i64.safetensors'), { skip: (n) => n === 'ids' });
  assert.deepEqual([...tensors.get('w')!.data], [1, 1]);
});

test('bad input: missing file', () => {
  const path = join(dir, 'nope.safetensors');
  expectError(() => readSafetensors(path), path, /file not found/);
});

test('bad input: unsupported dtype names the tensor and the dtype', () => {
  const path = join(testdata, 'official_i64.safetensors');
  expectError(() => readSafetensors(path), path, /tensor "ids"/, /dtype I64/, /only F32, F16 and BF16/);
});

test('bad input: truncated files', () => {
  const full = readFileSync(join(testdata, 'official.safetensors'));
  const headerLen = Number(full.readBigUInt64LE(0));
  const cutData = join(dir, 'cut-data.safetensors');
  writeFileSync(cutData, full.subarray(0, full.length - 10));
  expectError(() => readSafetensors(cutData), cutData, /truncated/, /runs past the end of the data/);
  const cutHeader = join(dir, 'cut-header.safetensors');
  writeFileSync(cutHeader, full.subarray(0, 8 + headerLen - 5));
  expectError(
    () => readSafetensors(cutHeader),
    cutHeader,
    /truncated/,
    new RegExp(`header length ${headerLen} runs past the end of the file`),
  );
  const tiny = join(dir, 'tiny.safetensors');
  writeFileSync(tiny, full.subarray(0, 5));
  expectError(() => readSafetensors(tiny), tiny, /truncated: 5 bytes/);
  const empty = join(dir, 'empty.safetensors');
  writeFileSync(empty, '');
  expectError(() => readSafetensors(empty), empty, /truncated: 0 bytes/);
});

test('bad input: header length beyond the file or absurd', () => {
  const beyond = rawFile({}, new Uint8Array(0), 1000n);
  expectError(() => readSafetensors(beyond), beyond, /header length 1000 runs past the end of the file \(10 bytes\)/);
  const absurd = rawFile({}, new Uint8Array(0), 1n << 62n);
  expectError(() => readSafetensors(absurd), absurd, /header length \d+ is absurd/, /not a safetensors file/);
  // A PNG, say: its first 8 bytes read as a huge length.
  const png = join(dir, 'image.safetensors');
  writeFileSync(png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]));
  expectError(() => readSafetensors(png), png, /is absurd/);
});

test('bad input: corrupt header JSON', () => {
  const t = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
  const broken = rawFile(JSON.stringify({ t }).slice(0, -3) + '#}}', new Uint8Array(4));
  expectError(() => readSafetensors(broken), broken, /corrupt header: invalid JSON/);
  const notObject = rawFile('[1,2]', new Uint8Array(0));
  expectError(() => readSafetensors(notObject), notObject, /JSON is not an object/);
  const badUtf8 = rawFile('{"\xff": 1}', new Uint8Array(0));
  writeFileSync(badUtf8, Buffer.concat([readFileSync(badUtf8).subarray(0, 10), Buffer.from([0xff]), readFileSync(badUtf8).subarray(11)]));
  expectError(() => readSafetensors(badUtf8), badUtf8, /not valid UTF-8/);
  const noDtype = rawFile({ t: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
  expectError(() => readSafetensors(noDtype), noDtype, /tensor "t" has no dtype/);
  const badShape = rawFile({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4));
  expectError(() => readSafetensors(badShape), badShape, /tensor "t" has an invalid shape \[-1\]/);
  const badOffsets = rawFile({ t: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, new Uint8Array(4));
  expectError(() => readSafetensors(badOffsets), badOffsets, /invalid data_offsets \[4,0\]/);
  const badMeta = rawFile({ __metadata__: { n: 1 } }, new Uint8Array(0));
  expectError(() => readSafetensors(badMeta), badMeta, /__metadata__\.n is not a string/);
});

test('bad input: overlapping, gapped, mis-sized and trailing data', () => {
  const f = (shape: number[], b: number, e: number) => ({ dtype: 'F32', shape, data_offsets: [b, e] });
  const overlap = rawFile({ a: f([2], 0, 8), b: f([2], 4, 12) }, new Uint8Array(12));
  expectError(() => readSafetensors(overlap), overlap, /tensors "a" and "b" overlap/);
  const hole = rawFile({ a: f([1], 0, 4), b: f([1], 8, 12) }, new Uint8Array(12));
  expectError(() => readSafetensors(hole), hole, /bytes \[4, 8\) of the data belong to no tensor/);
  const size = rawFile({ a: f([3], 0, 8) }, new Uint8Array(8));
  expectError(() => readSafetensors(size), size, /tensor "a" holds 8 bytes but F32 \[3\] needs 12/);
  const trailing = rawFile({ a: f([1], 0, 4) }, new Uint8Array(9));
  expectError(() => readSafetensors(trailing), trailing, /5 bytes after the last tensor/);
});

test('the header can be read alone, without tensor data', () => {
  const h = readSafetensorsHeader(join(testdata, 'official_i64.safetensors'));
  assert.deepEqual(
    h.tensors.map((t) => [t.name, t.fileDtype, t.shape]),
    [
      ['ids', 'I64', [2, 3]],
      ['w', 'F32', [2]],
    ],
  );
  assert.equal(h.tensors.at(-1)!.end, h.fileSize);
});

test('the writer refuses data that does not fit its shape or dtype', () => {
  const path = join(dir, 'refused.safetensors');
  expectError(
    () => writeSafetensors(path, [{ name: 'a', dtype: 'f32', shape: [3], data: new Float32Array(2) }]),
    path,
    /2 values for shape \[3\]/,
  );
  expectError(
    () => writeSafetensors(path, [{ name: 'a', dtype: 'bf16', shape: [2], data: new Float32Array(2) }]),
    path,
    /bf16 needs a Uint16Array/,
  );
});
