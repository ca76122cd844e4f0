// The one option table: one parser and one help printer for serve, generate and bench; every row's
// flag, variable, type, default and check behave the same in every command that lists it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINE_ARGS, helpFor, OptionError, parseCommand, parseOptions, type OptionRow } from './options.ts';
import { SERVE_OPTIONS } from '../server/config.ts';
import { GENERATE_ROWS } from '../cli/generate.ts';
import { BENCH_ROWS } from './bench/main.ts';
import { STEP_ROWS } from './bench/step.ts';
import { PULL_ROWS } from '../cli/pull.ts';
import { KERNEL_BENCH_ROWS } from '../cli/bench-kernels.ts';
import { QUALITY_ROWS } from './bench/quality.ts';

/** The commands that run a model take the block-model rows too. */
const MODEL_COMMANDS: [string, readonly OptionRow[]][] = [
  ['serve', SERVE_OPTIONS],
  ['generate', GENERATE_ROWS],
  ['bench', BENCH_ROWS],
];
const COMMANDS: [string, readonly OptionRow[]][] = [
  ...MODEL_COMMANDS,
  ['bench step', STEP_ROWS],
  ['bench kernels', KERNEL_BENCH_ROWS],
  ['bench quality', QUALITY_ROWS],
  ['pull', PULL_ROWS],
];

test('every command: unique keys and flags, BLOCKSERVE_<FLAG> variables, every row in its --help, the variable set apart', () => {
  for (const [name, rows] of COMMANDS) {
    assert.equal(new Set(rows.map((r) => r.key)).size, rows.length, `${name}: duplicate key`);
    assert.equal(new Set(rows.map((r) => r.flag)).size, rows.length, `${name}: duplicate flag`);
    const help = helpFor(rows, `Usage: blockserve ${name}`);
    for (const r of rows) {
      if (r.env) assert.equal(r.env, `BLOCKSERVE_${r.flag.toUpperCase().replace(/-/g, '_')}`, `${name} --${r.flag}`);
      // A long flag (--cpu-isa with its four choices) still leaves a space before its variable.
      assert.match(help, new RegExp(`--(\\[no-\\])?${r.flag}\\b[^\\n]*${r.env ? `\\s\\[${r.env}\\]` : ''}`), `${name} --${r.flag}`);
    }
  }
});

test('the engine rows mean the same in serve, generate and bench', () => {
  for (const [name, rows] of MODEL_COMMANDS) {
    for (const r of rows) {
      const engineRow = ENGINE_ARGS.find((e) => e.key === r.key);
      if (engineRow) assert.deepEqual(r, engineRow, `${name} re-declares --${r.flag}`);
    }
    assert.ok(
      rows.some((r) => r.key === 'positionMode') && rows.some((r) => r.key === 'padFirstBlock'),
      `${name} lacks the block-model rows`,
    );
  }
});

test('types, bounds, choices, switches and precedence', () => {
  const rows = [
    { key: 'n', flag: 'n', env: 'BLOCKSERVE_N', kind: 'int', min: 1, max: 10, default: 3, help: '' },
    { key: 'x', flag: 'x', kind: 'number', min: 0, help: '' },
    { key: 'c', flag: 'c', env: 'BLOCKSERVE_C', kind: 'choice', choices: ['a', 'b'], help: '' },
    { key: 's', flag: 's', env: 'BLOCKSERVE_S', kind: 'bool', help: '' },
    {
      key: 'l',
      flag: 'l',
      env: 'BLOCKSERVE_L',
      kind: 'list',
      default: [],
      help: '',
      check: (v: string) => (v === 'bad' ? 'not that one' : undefined),
    },
  ] as const satisfies readonly OptionRow[];
  const parse = (argv: string[], env: Record<string, string> = {}) => parseOptions(rows, argv, { env, usage: 'u' });
  assert.deepEqual(parse([]), { n: 3, x: undefined, c: undefined, s: undefined, l: [] });
  assert.deepEqual(parse(['--n', '7', '--x', '0.5', '--c', 'b', '--no-s', '--l', 'p', '--l', 'q']), {
    n: 7,
    x: 0.5,
    c: 'b',
    s: false,
    l: ['p', 'q'],
  });
  assert.deepEqual(parse([], { BLOCKSERVE_N: '9', BLOCKSERVE_S: 'yes', BLOCKSERVE_L: 'p, q' }), {
    n: 9,
    x: undefined,
    c: undefined,
    s: true,
    l: ['p', 'q'],
  });
  assert.equal((parse(['--n', '2'], { BLOCKSERVE_N: '9' }) as { n: number }).n, 2, 'flag over variable');
  assert.equal(parse(['-h']), 'help');
  const bad: [string[], Record<string, string>, RegExp][] = [
    [['--n', '11'], {}, /^--n \(BLOCKSERVE_N\): expected an integer in \[1, 10\], got '11'$/],
    [['--n', ''], {}, /--n .*expected an integer/],
    [[], { BLOCKSERVE_N: '2.5' }, /^BLOCKSERVE_N: expected an integer/],
    [['--x=-1'], {}, /^--x: expected a number in \[0, inf\], got '-1'$/],
    // A negative value after a space is the value, not an option (node's parser calls it ambiguous).
    [['--x', '-1'], {}, /^--x: expected a number in \[0, inf\], got '-1'$/],
    [['--n', '-3'], {}, /^--n \(BLOCKSERVE_N\): expected an integer in \[1, 10\], got '-3'$/],
    [['--c', 'z'], {}, /expected one of a, b, got 'z'/],
    [[], { BLOCKSERVE_S: 'maybe' }, /^BLOCKSERVE_S: expected true or false/],
    [['--l', 'ok', '--l', 'bad'], {}, /^--l \(BLOCKSERVE_L\): not that one, got 'bad'$/],
    [['--nope'], {}, /Unknown option '--nope'[\s\S]*\n {2}--n N/],
  ];
  for (const [argv, env, re] of bad)
    assert.throws(
      () => parse(argv, env),
      (e: unknown) => e instanceof OptionError && re.test((e as Error).message),
      argv.join(' ') || JSON.stringify(env),
    );
});

test('a command with operands gets exactly the named ones', () => {
  const rows = [{ key: 'url', flag: 'url', kind: 'string', help: '' }] as const satisfies readonly OptionRow[];
  const r = parseCommand(rows, ['x', '--url', 'u'], { usage: 'u' }, ['MODEL']);
  assert.deepEqual(r, { options: { url: 'u' }, operands: ['x'] });
  assert.throws(() => parseCommand(rows, [], { usage: 'u' }, ['MODEL']), /expected MODEL, got nothing/);
  assert.throws(() => parseCommand(rows, ['a', 'b'], { usage: 'u' }, ['MODEL']), /expected MODEL, got 'a' 'b'/);
  assert.throws(() => parseOptions(rows, ['stray'], { usage: 'u' }), /Unexpected argument 'stray'/);
});
