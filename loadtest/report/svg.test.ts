import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chart, groupedBars, niceTicks } from './svg.ts';

test('ticks are 1, 2 or 5 times a power of ten, inside the range', () => {
  assert.deepEqual(niceTicks(0, 97), [0, 20, 40, 60, 80]);
  assert.deepEqual(niceTicks(0.3, 1.1), [0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(5, 5), [5, 5.1, 5.2, 5.3, 5.4, 5.5], 'an empty range is widened');
  assert.deepEqual(niceTicks(NaN, 1), []);
});

test('charts escape text, draw one mark per series, and say "no data" when empty', () => {
  const svg = chart(
    [
      {
        name: '<script>x</script>',
        points: [
          [0, 1],
          [1, 2],
          [2, 3],
        ],
      },
      {
        name: 'dots',
        style: 'scatter',
        points: [
          [1, 1],
          [2, 2],
        ],
      },
    ],
    { title: 'a & b', xLabel: 'x', yLabel: 'y' },
  );
  assert.doesNotMatch(svg, /<script>/);
  assert.match(svg, /&lt;script&gt;/);
  assert.match(svg, /a &amp; b/);
  assert.equal((svg.match(/<path class="series"/g) ?? []).length, 1);
  assert.equal((svg.match(/<g fill="[^"]+" fill-opacity="0.55" class="series">(<circle[^>]*>){2}<\/g>/g) ?? []).length, 1);
  assert.match(chart([{ name: 'none', points: [] }], { title: 't', xLabel: 'x', yLabel: 'y' }), /no data/);
  const bars = groupedBars([{ label: 'req/s', values: [1, 2] }], ['a', 'b'], { title: 'bars' });
  assert.equal((bars.match(/<rect class="bar"/g) ?? []).length, 2);
});
