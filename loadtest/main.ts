// `blockserve loadtest ...` and `blockserve loadtest compare ...`: returns the process exit code.
//   0  ran and reported        1  usage error, server unreachable, every warm-up request failed
//   3  refused: the client could not generate the requested load (nothing is reported)
import { writeFileSync } from 'node:fs';
import { parseLoadtestArgs, USAGE } from './args.ts';
import { renderCompareReport, renderRunReport } from './report/html.ts';
import { executeRun, LoadtestError, type RunIo } from './run.ts';
import { readRunFile } from './runfile.ts';
import { formatCompare, formatSweep } from './summary.ts';

export const EXIT_REFUSED = 3;

export async function runLoadtest(argv: string[], io: RunIo = { out: process.stdout, err: process.stderr }): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out.write(USAGE + '\n');
    return 0;
  }
  try {
    if (argv[0] === 'compare') return runCompare(argv.slice(1), io);
    const cfg = parseLoadtestArgs(argv);
    const run = await executeRun(cfg, io);
    if (run.sweep) io.out.write(formatSweep(run) + '\n');
    if (run.points.length === 0) {
      io.err.write(
        'nothing to report: the client could not generate the requested load. Lower the rate, or run the load tester on a less busy machine.\n',
      );
      return EXIT_REFUSED;
    }
    if (cfg.out) {
      writeFileSync(cfg.out, JSON.stringify(run));
      io.err.write(`wrote ${cfg.out}\n`);
    }
    if (cfg.html) {
      writeFileSync(cfg.html, renderRunReport(run));
      io.err.write(`wrote ${cfg.html}\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof LoadtestError) {
      io.err.write(`loadtest: ${err.message}\n`);
      return err.exitCode;
    }
    const e = err as Error & { code?: string };
    if (e.code?.startsWith('ERR_PARSE_ARGS') || /^(bad |--|choose )/.test(e.message)) {
      io.err.write(`loadtest: ${e.message}\n${USAGE}\n`);
      return 1;
    }
    throw err;
  }
}

function runCompare(argv: string[], io: RunIo): number {
  const files: string[] = [];
  let html: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--html') html = argv[++i] ?? null;
    else if (argv[i].startsWith('--html=')) html = argv[i].slice(7);
    else if (argv[i].startsWith('-')) throw new LoadtestError(`compare: unknown option ${argv[i]}`, 1);
    else files.push(argv[i]);
  }
  if (files.length < 2) throw new LoadtestError('compare needs two or more run.json files', 1);
  if (argv.includes('--html') && !html) throw new LoadtestError('compare: --html needs a file name', 1);
  const runs = files.map((file) => {
    try {
      return readRunFile(file);
    } catch (err) {
      throw new LoadtestError((err as Error).message, 1);
    }
  });
  io.out.write(formatCompare(runs) + '\n');
  if (html) {
    writeFileSync(html, renderCompareReport(runs));
    io.err.write(`wrote ${html}\n`);
  }
  return 0;
}
