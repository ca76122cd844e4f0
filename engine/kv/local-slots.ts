// Block models keep a fixed token-decoder window (R + L - 1 rows) per running sequence. The runner
// allocates `maxNumSeqs` of them up front; this hands out their indices. Admission is already bounded by
// maxNumSeqs, so running out here means a bookkeeping bug, hence null is returned and the scheduler asserts.
export class LocalSlotPool {
  private readonly free: number[] = [];
  private readonly inUse: Uint8Array;

  constructor(readonly numSlots: number) {
    this.inUse = new Uint8Array(numSlots);
    for (let s = numSlots - 1; s >= 0; s--) this.free.push(s);
  }

  get used(): number {
    return this.numSlots - this.free.length;
  }

  allocate(): number | null {
    const slot = this.free.pop();
    if (slot === undefined) return null;
    this.inUse[slot] = 1;
    return slot;
  }

  release(slot: number): void {
    if (!this.inUse[slot]) throw new Error(`release of local slot ${slot} that is not in use`);
    this.inUse[slot] = 0;
    this.free.push(slot);
  }
}
