// Partial selection over one logits row: the k largest entries without sorting the vocabulary. A
// min-heap of k indices is kept; most entries lose a single comparison against the heap's minimum, so a
// 50,304-wide row costs little more than one pass. Ties go to the lower token id (deterministic).

/** True when a ranks above b: larger value, or equal value and smaller index. */
function above(row: ArrayLike<number>, offset: number, a: number, b: number): boolean {
  const va = row[offset + a];
  const vb = row[offset + b];
  return va > vb || (va === vb && a < b);
}

/**
 * Indices (relative to `offset`) of the k largest of row[offset .. offset+width) whose value is at least
 * `floor`, sorted best first.
 */
export function topKIndices(row: ArrayLike<number>, offset: number, width: number, k: number, floor = -Infinity): number[] {
  const heap: number[] = [];
  if (k <= 0) return heap;
  const siftDown = (i: number): void => {
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      // the child that ranks lowest
      const c = r < n && above(row, offset, heap[l], heap[r]) ? r : l;
      if (!above(row, offset, heap[i], heap[c])) return;
      [heap[i], heap[c]] = [heap[c], heap[i]];
      i = c;
    }
  };
  const siftUp = (i: number): void => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!above(row, offset, heap[p], heap[i])) return;
      [heap[i], heap[p]] = [heap[p], heap[i]];
      i = p;
    }
  };
  let minValue = -Infinity; // value at the heap root once it is full
  for (let i = 0; i < width; i++) {
    const v = row[offset + i];
    if (!(v >= floor)) continue;
    if (heap.length < k) {
      heap.push(i);
      siftUp(heap.length - 1);
      if (heap.length === k) minValue = row[offset + heap[0]];
    } else if (v > minValue) {
      heap[0] = i;
      siftDown(0);
      minValue = row[offset + heap[0]];
    }
  }
  heap.sort((a, b) => (above(row, offset, a, b) ? -1 : 1));
  return heap;
}
