import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextGapSeconds, Rng } from './rng.ts';
import { distribution, percentileSorted } from './stats.ts';
import { parseLengthSpec, sampleLength } from './workload.ts';

test('percentiles interpolate between ranks like numpy', () => {
  assert.equal(percentileSorted([1, 2, 3, 4], 50), 2.5);
  assert.equal(percentileSorted([10], 99), 10);
  const d = distribution([5, 1, 4, 2, 3]);
  assert.deepEqual([d.min, d.p50, d.max, d.mean, d.count], [1, 3, 5, 3, 5]);
  assert.ok(Math.abs(d.p90 - 4.6) < 1e-12);
  assert.ok(Number.isNaN(distribution([]).p50));
});

test('same seed, same stream; different seeds differ', () => {
  const a = new Rng(7);
  const b = new Rng(7);
  const c = new Rng(8);
  const sa = Array.from({ length: 5 }, () => a.uint32());
  assert.deepEqual(
    sa,
    Array.from({ length: 5 }, () => b.uint32()),
  );
  assert.notDeepEqual(
    sa,
    Array.from({ length: 5 }, () => c.uint32()),
  );
});

test('gamma gaps have mean 1/rate and coefficient of variation 1/sqrt(burstiness)', () => {
  for (const burstiness of [0.5, 1, 4]) {
    const rng = new Rng(42);
    const n = 40_000;
    const gaps = Array.from({ length: n }, () => nextGapSeconds(rng, 100, burstiness));
    const mean = gaps.reduce((s, g) => s + g, 0) / n;
    const sd = Math.sqrt(gaps.reduce((s, g) => s + (g - mean) ** 2, 0) / n);
    assert.ok(Math.abs(mean - 0.01) / 0.01 < 0.03, `mean ${mean} for burstiness ${burstiness}`);
    const cv = sd / mean;
    assert.ok(Math.abs(cv - 1 / Math.sqrt(burstiness)) < 0.05, `cv ${cv} for burstiness ${burstiness}`);
  }
});

test('length specs: fixed, uniform within bounds, normal around the mean and never below 1', () => {
  const rng = new Rng(1);
  assert.deepEqual(parseLengthSpec('128'), { kind: 'fixed', value: 128 });
  assert.equal(sampleLength(parseLengthSpec('128'), rng), 128);
  const u = Array.from({ length: 2000 }, () => sampleLength(parseLengthSpec('uniform:10:20'), rng));
  assert.equal(Math.min(...u), 10);
  assert.equal(Math.max(...u), 20);
  const normal = Array.from({ length: 4000 }, () => sampleLength(parseLengthSpec('normal:100:10'), rng));
  const mean = normal.reduce((s, v) => s + v, 0) / normal.length;
  assert.ok(Math.abs(mean - 100) < 1, `normal mean ${mean}`);
  assert.ok(Math.min(...Array.from({ length: 500 }, () => sampleLength(parseLengthSpec('normal:2:50'), rng))) >= 1);
  for (const bad of ['0', 'x', 'uniform:5', 'uniform:9:3', 'normal:10:-1', 'zipf:1:2'])
    assert.throws(() => parseLengthSpec(bad), /bad length/);
});
