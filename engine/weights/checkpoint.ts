// A whole checkpoint: one safetensors file, a directory holding model.safetensors, or a directory
// holding a sharded checkpoint (model.safetensors.index.json whose weight_map names each tensor's
// shard). Plus the strict check of what was loaded against what the model expects.
//
// API
//   resolveCheckpoint(pathOrDir)            -> { source, shards: [{ path, names? }] } (no tensor data read)
//   loadCheckpoint(pathOrDir, {skip, onProgress}) -> Map<name, TensorView>
//   checkTensors(found, expected, {ignore, source}) -> throws one WeightsError listing every missing,
//                                                    unexpected and mis-shaped tensor

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  bytesToRead,
  readSafetensorsHeader,
  readTensorsOf,
  WeightsError,
  type ReadOptions,
  type SafetensorsHeader,
  type TensorView,
} from './safetensors.ts';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

export interface CheckpointFiles {
  /** What the user pointed at (for messages). */
  source: string;
  /** For a sharded checkpoint, the index file; else the single safetensors file. */
  indexPath?: string;
  shards: string[];
  /** Sharded only: tensor name -> shard path, from the index. */
  weightMap?: Map<string, string>;
}

function readIndex(indexPath: string): CheckpointFiles {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch (e) {
    throw new WeightsError(indexPath, `corrupt index: ${(e as Error).message}`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new WeightsError(indexPath, 'corrupt index: no weight_map object');
  }
  const dir = dirname(indexPath);
  const weightMap = new Map<string, string>();
  const shards: string[] = [];
  for (const [name, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== 'string') throw new WeightsError(indexPath, `corrupt index: weight_map["${name}"] is not a file name`);
    const shard = resolve(dir, file);
    if (!shards.includes(shard)) shards.push(shard);
    weightMap.set(name, shard);
  }
  const missing = shards.filter((s) => !existsSync(s));
  if (missing.length) throw new WeightsError(indexPath, `shard file(s) not found: ${missing.join(', ')}`);
  return { source: indexPath, indexPath, shards, weightMap };
}

/** Finds the files of a checkpoint without reading tensor data. */
export function resolveCheckpoint(pathOrDir: string): CheckpointFiles {
  let isDir: boolean;
  try {
    isDir = statSync(pathOrDir).isDirectory();
  } catch {
    throw new WeightsError(pathOrDir, 'file not found');
  }
  if (!isDir) {
    if (pathOrDir.endsWith('.index.json')) return readIndex(pathOrDir);
    return { source: pathOrDir, shards: [pathOrDir] };
  }
  const single = join(pathOrDir, SINGLE_FILE);
  if (existsSync(single)) return { source: single, shards: [single] };
  const index = join(pathOrDir, INDEX_FILE);
  if (existsSync(index)) return readIndex(index);
  // A directory with exactly one .safetensors file under another name is unambiguous.
  const others = readdirSync(pathOrDir).filter((f) => f.endsWith('.safetensors'));
  if (others.length === 1) return { source: join(pathOrDir, others[0]!), shards: [join(pathOrDir, others[0]!)] };
  const pickles = readdirSync(pathOrDir).filter((f) => /^pytorch_model.*\.bin$/.test(f));
  if (!others.length && pickles.length) {
    throw new WeightsError(
      pathOrDir,
      `only PyTorch pickle weights here (${pickles.join(', ')}); blockserve reads safetensors: convert with ` +
        `safetensors.torch.save_file(torch.load(path), "model.safetensors")`,
    );
  }
  throw new WeightsError(
    pathOrDir,
    others.length
      ? `several .safetensors files (${others.join(', ')}) and no ${INDEX_FILE} saying which tensor is where`
      : `no ${SINGLE_FILE} or ${INDEX_FILE} in this directory`,
  );
}

/** Index and shards must agree: each tensor in the shard the index names, none twice. */
function checkShardsAgainstIndex(files: CheckpointFiles, headers: SafetensorsHeader[]): void {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const h of headers) {
    for (const t of h.tensors) {
      const other = seen.get(t.name);
      if (other) problems.push(`"${t.name}" is in both ${other} and ${h.path}`);
      seen.set(t.name, h.path);
      const listed = files.weightMap!.get(t.name);
      if (listed !== h.path) problems.push(`"${t.name}" is in ${h.path} but the index ${listed ? `says ${listed}` : 'does not list it'}`);
    }
  }
  for (const [name, shard] of files.weightMap!) {
    if (!seen.has(name)) problems.push(`"${name}" is listed for ${shard} but not in it`);
  }
  if (problems.length) throw new WeightsError(files.indexPath!, `index and shards disagree:\n  ${problems.join('\n  ')}`);
}

/**
 * Loads every tensor of a checkpoint except the skipped ones (never read). Progress counts the bytes
 * of all shards together.
 */
export function loadCheckpoint(pathOrDir: string, opts: ReadOptions = {}): Map<string, TensorView> {
  const files = resolveCheckpoint(pathOrDir);
  const headers = files.shards.map(readSafetensorsHeader);
  if (files.weightMap) checkShardsAgainstIndex(files, headers);
  const total = headers.reduce((a, h) => a + bytesToRead(h, opts.skip), 0);
  let done = 0;
  const out = new Map<string, TensorView>();
  for (const h of headers) {
    const part = readTensorsOf(h, { skip: opts.skip, onBytes: (n) => opts.onProgress?.((done += n), total) });
    for (const [name, t] of part) out.set(name, t);
  }
  return out;
}

/**
 * Buffers that older HF GPT-NeoX checkpoints (Pythia's among them) saved beside the parameters: the
 * causal mask (`attention.bias`, BOOL), `attention.masked_bias` and the rotary `inv_freq`. The model
 * recomputes them, so a loader should skip them (never read, and a BOOL would not load anyway).
 */
export function isHfNeoxBuffer(name: string): boolean {
  return /\.attention\.(bias|masked_bias|rotary_emb\.inv_freq)$/.test(name);
}

const shapeText = (s: number[]) => `[${s.join(', ')}]`;

/**
 * Strict comparison of loaded tensors with the model's expected list. Throws one WeightsError naming
 * every problem, so a wrong preset or a truncated export is diagnosed in one run.
 */
export function checkTensors(
  found: Map<string, TensorView>,
  expected: { name: string; shape: number[] }[],
  opts: { ignore?: (name: string) => boolean; source?: string } = {},
): void {
  const missing: string[] = [];
  const misShaped: string[] = [];
  const expectedNames = new Set<string>();
  for (const e of expected) {
    expectedNames.add(e.name);
    const t = found.get(e.name);
    if (!t) missing.push(`  missing: ${e.name} ${shapeText(e.shape)}`);
    else if (t.shape.length !== e.shape.length || t.shape.some((s, i) => s !== e.shape[i])) {
      misShaped.push(`  wrong shape: ${e.name} is ${shapeText(t.shape)} in the file, the model expects ${shapeText(e.shape)}`);
    }
  }
  const unexpected: string[] = [];
  for (const [name, t] of found) {
    if (!expectedNames.has(name) && !opts.ignore?.(name)) unexpected.push(`  unexpected: ${name} ${shapeText(t.shape)}`);
  }
  const lines = [...missing, ...misShaped, ...unexpected];
  if (!lines.length) return;
  const counts = [
    missing.length && `${missing.length} missing`,
    misShaped.length && `${misShaped.length} of the wrong shape`,
    unexpected.length && `${unexpected.length} unexpected`,
  ].filter(Boolean);
  throw new WeightsError(opts.source ?? 'checkpoint', `does not match the model (${counts.join(', ')} tensors):\n${lines.join('\n')}`);
}
