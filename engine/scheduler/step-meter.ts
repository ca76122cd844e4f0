// How full steps are: running means over the plans the scheduler made (see StepMetrics in plan.ts).
import type { StepMetrics, StepPlan } from './plan.ts';

export class StepMeter {
  private steps = 0;
  private fillSum = 0;
  private tokenFillSum = 0;
  private blockSteps = 0;
  private blockSyncSum = 0;
  private blockDecoderSteps = 0;

  constructor(
    private readonly maxNumSeqs: number,
    private readonly maxBatchTokens: number,
    /** Block model (tokensPerEntry > 1): block-decoder figures are kept. */
    private readonly isBlock: boolean,
  ) {}

  record(plan: StepPlan): void {
    if (plan.feeds.length === 0) return;
    this.steps++;
    this.fillSum += plan.feeds.length / this.maxNumSeqs;
    this.tokenFillSum += plan.numTokens / this.maxBatchTokens;
    if (!this.isBlock) return;
    if (plan.feeds.some((f) => f.runsBlockDecoder)) this.blockDecoderSteps++;
    let decodes = 0;
    let blockRuns = 0;
    for (const f of plan.feeds) {
      if (!f.isDecode) continue;
      decodes++;
      if (f.runsBlockDecoder) blockRuns++;
    }
    if (blockRuns > 0) {
      this.blockSteps++;
      this.blockSyncSum += blockRuns / decodes;
    }
  }

  metrics(): StepMetrics {
    const s = this.steps;
    return {
      steps: s,
      stepFill: s ? this.fillSum / s : 0,
      tokenFill: s ? this.tokenFillSum / s : 0,
      blockSync: this.blockSteps ? this.blockSyncSum / this.blockSteps : Number.NaN,
      blockSteps: this.blockSteps,
      blockDecoderStepFraction: this.isBlock && s ? this.blockDecoderSteps / s : Number.NaN,
    };
  }
}
