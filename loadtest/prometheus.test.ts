import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePrometheusText, seriesKey } from './prometheus.ts';

test('parses HELP/TYPE, labels with escapes, special values, timestamps; counts bad lines', () => {
  const text = [
    '# HELP vllm:num_requests_running Number of requests running.',
    '# TYPE vllm:num_requests_running gauge',
    'vllm:num_requests_running{model_name="m",engine="0"} 3',
    '# TYPE ttft histogram',
    'ttft_bucket{le="0.5",model="a\\"b\\\\c\\nd"} 10 1700000000000',
    'ttft_bucket{le="+Inf"} 12',
    'up 1',
    'nan_metric NaN',
    'inf_metric -Inf',
    'broken{le="1" 3',
    'name_without_value',
    '',
  ].join('\n');
  const m = parsePrometheusText(text);
  assert.equal(m.types['vllm:num_requests_running'], 'gauge');
  assert.equal(m.types.ttft, 'histogram');
  assert.equal(m.help['vllm:num_requests_running'], 'Number of requests running.');
  assert.equal(m.samples.length, 6);
  assert.deepEqual(m.samples[0], { name: 'vllm:num_requests_running', labels: { model_name: 'm', engine: '0' }, value: 3 });
  assert.deepEqual(m.samples[1].labels, { le: '0.5', model: 'a"b\\c\nd' });
  assert.equal(m.samples[1].value, 10);
  assert.equal(m.samples[3].value, 1);
  assert.ok(Number.isNaN(m.samples[4].value));
  assert.equal(m.samples[5].value, -Infinity);
  assert.equal(m.badLines, 2);
  assert.equal(seriesKey(m.samples[0]), 'vllm:num_requests_running{engine="0",model_name="m"}');
  assert.equal(seriesKey(m.samples[3]), 'up');
});
