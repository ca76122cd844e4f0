// Prometheus text exposition format (version 0.0.4) parser, enough for what servers expose: HELP and
// TYPE comments, samples with optional labels (escaped \\, \", \n), NaN/+Inf/-Inf values and an
// optional timestamp. Bad lines are counted and skipped so a half-broken /metrics never stops a run.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedMetrics {
  samples: Sample[];
  types: Record<string, string>;
  help: Record<string, string>;
  badLines: number;
}

function parseValue(text: string): number {
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  if (text.trim() === '') return NaN;
  const v = Number(text);
  if (Number.isNaN(v)) throw new Error(`bad value ${text}`);
  return v;
}

/** Parses `{a="x",b="y"}` starting at `line[start] === '{'`; returns labels and the index after '}'. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new Error('label without =');
    const key = line.slice(i, eq).trim();
    i = eq + 1;
    if (line[i] !== '"') throw new Error('label value not quoted');
    i++;
    let value = '';
    for (;;) {
      if (i >= line.length) throw new Error('unterminated label value');
      const ch = line[i];
      if (ch === '\\') {
        const nxt = line[i + 1];
        value += nxt === 'n' ? '\n' : nxt;
        i += 2;
      } else if (ch === '"') {
        i++;
        break;
      } else {
        value += ch;
        i++;
      }
    }
    labels[key] = value;
  }
}

export function parsePrometheusText(text: string): ParsedMetrics {
  const samples: Sample[] = [];
  const types: Record<string, string> = {};
  const help: Record<string, string> = {};
  let badLines = 0;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s*(HELP|TYPE)\s+(\S+)\s*(.*)$/.exec(line);
      if (m) (m[1] === 'TYPE' ? types : help)[m[2]] = m[3];
      continue;
    }
    try {
      const brace = line.indexOf('{');
      const space = line.search(/\s/);
      let name: string;
      let labels: Record<string, string> = {};
      let rest: string;
      if (brace >= 0 && (space < 0 || brace < space)) {
        name = line.slice(0, brace);
        const parsed = parseLabels(line, brace);
        labels = parsed.labels;
        rest = line.slice(parsed.end).trim();
      } else {
        if (space < 0) throw new Error('no value');
        name = line.slice(0, space);
        rest = line.slice(space).trim();
      }
      if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad name ${name}`);
      const valueText = rest.split(/\s+/)[0];
      samples.push({ name, labels, value: parseValue(valueText) });
    } catch {
      badLines++;
    }
  }
  return { samples, types, help, badLines };
}

/** A stable key for one series: `name{a="x",b="y"}` with labels sorted. */
export function seriesKey(sample: { name: string; labels: Record<string, string> }): string {
  const keys = Object.keys(sample.labels).sort();
  if (keys.length === 0) return sample.name;
  return `${sample.name}{${keys.map((k) => `${k}=${JSON.stringify(sample.labels[k])}`).join(',')}}`;
}
