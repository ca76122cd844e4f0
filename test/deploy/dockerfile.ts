// Reads the Dockerfile into stages of instructions, so tests check and replay the real recipe instead of
// a copy of it. Handles what this Dockerfile uses: comments, parser directives, backslash continuations,
// JSON (exec) and shell forms, `FROM image AS name`, `ENV k=v ...`, `RUN --flag=... command`.
import { readFileSync } from 'node:fs';

export type Instruction = {
  keyword: string; // upper case: FROM, RUN, ENV, ...
  args: string; // everything after the keyword, continuations joined
  line: number; // 1-based line of the keyword
};

export type Stage = { name: string | null; base: string; instructions: Instruction[] };

export function parseDockerfile(text: string): { globalArgs: Instruction[]; stages: Stage[] } {
  const lines = text.split('\n');
  const instructions: Instruction[] = [];
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i]!.trim();
    if (first === '' || first.startsWith('#')) continue;
    const line = i + 1;
    let joined = lines[i]!.replace(/\s+$/, '');
    // A trailing backslash continues the instruction; comment lines inside it are dropped (as Docker does).
    while (joined.endsWith('\\') && i + 1 < lines.length) {
      joined = joined.slice(0, -1);
      i++;
      while (i < lines.length && lines[i]!.trim().startsWith('#')) i++;
      if (i < lines.length) joined += ' ' + lines[i]!.trim().replace(/\s+$/, '');
    }
    const m = /^\s*(\S+)\s*(.*)$/s.exec(joined)!;
    instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' ').trim(), line });
  }
  const globalArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile:${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ base: m[1]!, name: m[2] ?? null, instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword !== 'ARG') throw new Error(`Dockerfile:${ins.line}: ${ins.keyword} before the first FROM`);
      globalArgs.push(ins);
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

export function readDockerfile(path: string) {
  return parseDockerfile(readFileSync(path, 'utf8'));
}

export function stage(stages: Stage[], name: string): Stage {
  const s = stages.find((st) => st.name === name);
  if (!s) throw new Error(`Dockerfile has no stage '${name}'`);
  return s;
}

/** The stage a plain `docker build .` produces: the last one, followed through `FROM <stage>` aliases. */
export function defaultTarget(stages: Stage[]): Stage[] {
  const chain: Stage[] = [];
  let current: Stage | undefined = stages.at(-1);
  while (current) {
    chain.unshift(current);
    const base = current.base;
    current = stages.find((s) => s.name === base);
  }
  return chain; // outermost base stage first
}

/** Instructions of a stage chain (base stage first), e.g. every ENV the final image sees. */
export function instructionsOf(chain: Stage[], keyword: string): Instruction[] {
  return chain.flatMap((s) => s.instructions.filter((i) => i.keyword === keyword));
}

/** Exec form `["a", "b"]` -> argv; shell form -> ['/bin/sh', '-c', text] (what Docker runs). */
export function commandArgv(args: string): string[] {
  if (args.startsWith('[')) {
    const argv = JSON.parse(args) as unknown;
    if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new Error(`not an exec form: ${args}`);
    return argv;
  }
  return ['/bin/sh', '-c', args];
}

/** RUN's options (`--mount=...`, `--network=...`) are build-engine settings, not part of the command. */
export function runCommand(args: string): string {
  return args.replace(/^(?:--[a-z-]+=\S+\s+)+/, '');
}

/** `ENV A=1 B="two words"` (or the legacy `ENV A 1`) -> { A: '1', B: 'two words' }. */
export function envPairs(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  const legacy = /^(\w+)\s+([^=]*)$/.exec(args);
  if (legacy) {
    out[legacy[1]!] = legacy[2]!;
    return out;
  }
  const re = /(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g;
  for (const m of args.matchAll(re)) out[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  return out;
}

/** HEALTHCHECK [--opt=v ...] CMD <command> -> its options (durations in seconds) and argv. */
export function healthcheck(args: string): { options: Record<string, number>; argv: string[] } {
  const m = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$/s.exec(args);
  if (!m) throw new Error(`cannot read HEALTHCHECK ${args}`);
  const options: Record<string, number> = {};
  for (const opt of m[1]!.trim().split(/\s+/).filter(Boolean)) {
    const [key, value] = opt.slice(2).split('=') as [string, string];
    options[key] = seconds(value);
  }
  return { options, argv: commandArgv(m[2]!) };
}

/** Docker / compose / Go durations: '90s', '1m30s', '500ms', '2m' -> seconds; bare numbers are seconds. */
export function seconds(value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let consumed = '';
  for (const m of value.matchAll(re)) {
    consumed += m[0];
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
  }
  if (consumed !== value) throw new Error(`not a duration: ${value}`);
  return total;
}
