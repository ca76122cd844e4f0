// Partial selection over one logits row: the k largest entries without sorting the vocabulary. A
// min-heap of k indices is kept; most entries lose a single comparison against the heap's minimum, so a
// 50,304-wide row costs little more than one pass. Ties go to the lower token id (deterministic).
// (The heap helpers are top-level functions: closures over `row` would make the hot loop read it
// through a context object.)

/** True when a ranks above b: larger value, or equal value and smaller index. */
function above(row: Float32Array, offset: number, a: number, b: number): boolean {
  const va = row[offset + a];
  const vb = row[offset + b];
  return va > vb || (va === vb && a < b);
}

function siftDown(heap: number[], row: Float32Array, offset: number, i: number): void {
  const n = heap.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) return;
    const r = l + 1;
    const c = r < n && above(row, offset, heap[l], heap[r]) ? r : l; // the child that ranks lowest
    if (!above(row, offset, heap[i], heap[c])) return;
    const t = heap[i];
    heap[i] = heap[c];
    heap[c] = t;
    i = c;
  }
}

function siftUp(heap: number[], row: Float32Array, offset: number, i: number): void {
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!above(row, offset, heap[p], heap[i])) return;
    const t = heap[i];
    heap[i] = heap[p];
    heap[p] = t;
    i = p;
  }
}

/**
 * Indices (relative to `offset`) of the k largest of row[offset .. offset+width) whose value is at least
 * `floor`, sorted best first.
 */
export function topKIndices(row: Float32Array, offset: number, width: number, k: number, floor = -Infinity): number[] {
  const heap: number[] = [];
  if (k <= 0) return heap;
  // Fill the heap with the first k eligible entries, then only entries above its minimum get in.
  let i = 0;
  for (; i < width && heap.length < k; i++) {
    const v = row[offset + i];
    if (!(v >= floor)) continue;
    heap.push(i);
    siftUp(heap, row, offset, heap.length - 1);
  }
  if (heap.length === k) {
    let minValue = row[offset + heap[0]];
    // minValue >= floor here, so `v > minValue` also enforces the floor (NaN never passes).
    for (; i < width; i++) {
      const v = row[offset + i];
      if (v > minValue) {
        heap[0] = i;
        siftDown(heap, row, offset, 0);
        minValue = row[offset + heap[0]];
      }
    }
  }
  heap.sort((a, b) => (above(row, offset, a, b) ? -1 : 1));
  return heap;
}
