import { test } from 'node:test';
import assert from 'node:assert/strict';
import { erf } from './erf.ts';

test('erf matches tabulated values across series and tail regions', () => {
  const cases: [number, number][] = [
    [0, 0],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [2.9, 0.9999589021219005],
    [3, 0.9999779095030014],
    [3.5, 0.9999992569016276],
    [-1.5, -0.9661051464753108],
  ];
  for (const [x, want] of cases) assert.ok(Math.abs(erf(x) - want) < 1e-12, `erf(${x}) = ${erf(x)}, want ${want}`);
  assert.equal(erf(10), 1);
  assert.equal(erf(-10), -1);
});
