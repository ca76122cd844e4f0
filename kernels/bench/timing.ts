// Timing loop shared by the kernel benchmark and its onnxruntime peer: a warm-up call, then calls until
// both a minimum count and a time budget are reached (or a hard cap for very slow backends).

export async function timeLoop(fn: () => Promise<void>, budgetMs: number, minReps = 5, maxReps = 200): Promise<number[]> {
  await fn(); // warm-up: first-use work (weight packing, pipeline compiles, page faults) is not timed
  const times: number[] = [];
  const start = performance.now();
  while (times.length < maxReps) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
    const elapsed = performance.now() - start;
    if (times.length >= minReps && elapsed >= budgetMs) break;
    if (elapsed >= 10 * budgetMs) break; // a slow backend gets fewer reps, not minutes per shape
  }
  return times;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
