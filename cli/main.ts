// `blockserve <command>`: the one entry point. Each command's module is imported lazily so that
// `blockserve generate` never loads Fastify and `blockserve serve` never loads the load tester.

const USAGE = `blockserve — an inference server for the Block Transformer and GPT-NeoX / Pythia models

Usage:
  blockserve serve [options]          OpenAI-compatible HTTP server (see: blockserve serve --help)
  blockserve generate [options]       generate text from a prompt (see: blockserve generate --help)
  blockserve pull MODEL               download a Hub model (ORG/NAME) or an authors' checkpoint (block_main_b4_85)
  blockserve bench [options]          the paper's throughput benchmark (see: blockserve bench --help)
  blockserve bench kernels [options]  kernel benchmark against this machine's peaks
  blockserve bench step [options]     one decode step per backend, side by side (--preset, --batch, --backends)
  blockserve bench quality [options]  the shipped demo pair: held-out perplexity and decode tokens/s
  blockserve loadtest [options]       load-test any OpenAI-compatible server (see: blockserve loadtest --help)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { runServe } = await import('../server/main.ts');
      return runServe(rest); // 1 when the engine died
    }
    case 'pull': {
      const { runPull } = await import('./pull.ts');
      return runPull(rest);
    }
    case 'generate': {
      const { runGenerate } = await import('./generate.ts');
      return runGenerate(rest);
    }
    case 'bench': {
      if (rest[0] === 'step') {
        const { runStepBench } = await import('../engine/bench/step.ts');
        return runStepBench(rest.slice(1));
      }
      if (rest[0] === 'quality') {
        const { runQualityBench } = await import('../engine/bench/quality.ts');
        return runQualityBench(rest.slice(1));
      }
      if (rest[0] === 'kernels') {
        const { runKernelBenchCommand } = await import('./bench-kernels.ts');
        return runKernelBenchCommand(rest.slice(1));
      }
      const { runBench } = await import('../engine/bench/main.ts');
      return runBench(rest);
    }
    case 'loadtest': {
      const { runLoadtest } = await import('../loadtest/main.ts');
      return runLoadtest(rest);
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`blockserve: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as Error;
    // Expected user errors carry a clear message; anything else also gets its stack for bug reports.
    const expected = [
      'ResolveError',
      'ConfigError',
      'OptionError',
      'WeightsError',
      'TokenizerError',
      'UsageError',
      'EngineRequestError',
      'EngineStartError',
      'BackendUnavailableError',
      'HubError',
    ].includes(e?.constructor?.name ?? '');
    process.stderr.write(`blockserve: ${expected ? e.message : (e?.stack ?? String(err))}\n`);
    process.exitCode = 1;
  },
);
