/** Writes the results table (bench/RESULTS.md): machine, versions, settings, figures, targets. */
import { cpus, totalmem, release } from 'node:os';
import { VARIANTS, type VariantKey } from './servers.js';
import {
  metricSpecs,
  ratios,
  spread,
  values,
  type MetricSpec,
  type Round,
  type Sizes,
  type Spread,
  type VariantRound,
} from './summary.js';

export interface ReportInput {
  readonly command: string;
  readonly mode: string;
  readonly startedAt: Date;
  readonly elapsedSeconds: number;
  readonly versions: Record<string, string>;
  readonly settings: Record<string, string>;
  readonly loads: readonly number[];
  readonly sizes: Sizes;
  readonly rounds: readonly Round[];
  readonly notes: readonly string[];
}

function format(value: number, digits = 1): string {
  if (!Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function cell(s: Spread | undefined, digits: number): string {
  if (!s) return '—';
  if (s.n === 1) return format(s.median, digits);
  return `${format(s.median, digits)} (${format(s.min, digits)}–${format(s.max, digits)})`;
}

function ratioCell(s: Spread | undefined): string {
  if (!s) return '';
  return s.n === 1
    ? ` ×${format(s.median, 2)}`
    : ` ×${format(s.median, 2)} [${format(s.min, 2)}–${format(s.max, 2)}]`;
}

function table(input: ReportInput, specs: readonly MetricSpec[]): string[] {
  const present = VARIANTS.filter((v) => input.rounds.some((round) => round[v.key]));
  const lines = [
    `| figure | unit | ${present.map((v) => v.label).join(' | ')} |`,
    `|---|---|${present.map(() => '---').join('|')}|`,
  ];
  for (const spec of specs) {
    const cells = present.map((v) => {
      const s = spread(values(input.rounds, v.key, spec.pick));
      const r = spread(ratios(input.rounds, v.key, 'naive', spec.pick));
      return `${cell(s, spec.digits ?? 1)}${ratioCell(r)}`;
    });
    lines.push(`| ${spec.name} | ${spec.unit} | ${cells.join(' | ')} |`);
  }
  return lines;
}

function ratioOf(input: ReportInput, spec: MetricSpec, variant: VariantKey, base: VariantKey) {
  return spread(ratios(input.rounds, variant, base, spec.pick))?.median ?? NaN;
}

/** Median over the rounds of a figure of one server. */
function median(
  input: ReportInput,
  variant: VariantKey,
  pick: (r: VariantRound) => number,
): number {
  return spread(values(input.rounds, variant, pick))?.median ?? NaN;
}

/** Why a target came out as it did, from the run's own figures. */
function reasons(input: ReportInput, specs: readonly MetricSpec[]): Record<string, string> {
  const byKey = (key: string) => specs.find((spec) => spec.key === key)!;
  const half = input.loads.indexOf(0.5);
  const quarter = input.loads.indexOf(0.25);
  const kib = (bytes: number) => `${format(bytes / 1024, 2)} KiB`;
  const gap = (key: string) => {
    const value =
      median(input, 'sidecast', byKey(key).pick) - median(input, 'naive', byKey(key).pick);
    return `${value >= 0 ? '+' : ''}${kib(value * 1024)}`;
  };
  const versusPython = (key: string) =>
    `${kib(1024 * median(input, 'sidecast', byKey(key).pick))} vs ${kib(1024 * median(input, 'python', byKey(key).pick))} ` +
    'per connection (the Python server keeps a deflate context for every connection)';
  const rate = (variant: VariantKey, load: number) =>
    median(input, variant, (r) => r.latency[load]?.offeredRate ?? NaN);
  const cpu = (variant: VariantKey, load: number) =>
    median(input, variant, (r) => r.latency[load]?.serverCpu ?? NaN);
  const stormCpu = median(input, 'sidecast', (r) =>
    r.storm ? r.storm.serverCpu / Math.max(1, r.storm.opened) : NaN,
  );
  const perClient = (variant: VariantKey) => median(input, variant, byKey('storm-db').pick);
  return {
    capacity: `server core at ${format(100 * median(input, 'sidecast', (r) => r.capacity?.serverCpu ?? NaN), 0)}%, load generators at ${format(100 * median(input, 'sidecast', (r) => r.capacity?.clientCpu ?? NaN), 0)}% of theirs`,
    memory: `${gap('rss')} RSS and ${gap('heap')} heap per connection over the naive loop (sidecast's Connection record, listeners and router slot)`,
    bigMemory:
      `${gap('big-rss')} RSS and ${gap('big-heap')} heap per connection over the naive loop, ` +
      `sidecast as one \`serve --workers ${input.sizes.bigProcesses}\`, the peers as ${input.sizes.bigProcesses} processes; ` +
      'RSS beyond the heap gap is native memory the allocator kept after the connection wave',
    rssPython: versusPython('rss'),
    bigPython: versusPython('big-rss'),
    latency:
      `at 50% sidecast carries ${format(rate('sidecast', half), 0)} deliveries/s with its core at ${format(100 * cpu('sidecast', half), 0)}%, ` +
      `${format(rate('sidecast', half) / rate('naive', quarter), 0)}× what the naive loop carries at 25% (core at ${format(100 * cpu('naive', quarter), 0)}%). ` +
      'Each event reaches about a third of all connections, so every write pass finds nearly every socket with frames pending: ' +
      `p99 is about one pass over all ${input.sizes.clients.toLocaleString('en-US')} sockets, one write each, and a socket write on loopback costs ` +
      'several microseconds of server CPU however many frames it carries',
    storm: `${format(stormCpu * 1e6, 0)} µs of server CPU per connection (upgrade, token, ${format(perClient('sidecast'), 2)} database transactions, registration)`,
    stormPython: `Python: ${format(median(input, 'python', byKey('storm').pick), 1)} s and ${format(perClient('python'), 2)} transactions per client`,
  };
}

/** The issue's targets, each with its measured ratio, a verdict and the reason. */
function targets(input: ReportInput, specs: readonly MetricSpec[]): string[] {
  const why = reasons(input, specs);
  const byKey = (key: string) => specs.find((spec) => spec.key === key)!;
  const capacity = byKey('capacity');
  const rss = byKey('rss');
  const heap = byKey('heap');
  const storm = byKey('storm');
  const verdict = (ok: boolean, value: number) =>
    Number.isFinite(value) ? (ok ? '**met**' : '**not met**') : 'not measured';
  const rows: [string, string, string, string][] = [];
  const add = (
    what: string,
    value: number,
    ok: boolean,
    reason: string,
    shown = `×${format(value, 2)}`,
  ) =>
    rows.push(
      Number.isFinite(value)
        ? [what, shown, verdict(ok, value), reason]
        : [what, '—', verdict(ok, value), ''],
    );
  const vsNaive = ratioOf(input, capacity, 'sidecast', 'naive');
  add('fan-out ≥ 5× naive', vsNaive, vsNaive >= 5, why.capacity!);
  const vsPython = ratioOf(input, capacity, 'sidecast', 'python');
  add('fan-out ≥ 10× Python', vsPython, vsPython >= 10, why.capacity!);
  const small = input.sizes.clients.toLocaleString('en-US');
  const big = input.sizes.bigClients.toLocaleString('en-US');
  const rssNaive = ratioOf(input, rss, 'sidecast', 'naive');
  add(`idle RSS/conn ≤ 1.1× naive (${small})`, rssNaive, rssNaive <= 1.1, why.memory!);
  const heapNaive = ratioOf(input, heap, 'sidecast', 'naive');
  add(`idle heap/conn ≤ 1.1× naive (${small})`, heapNaive, heapNaive <= 1.1, why.memory!);
  const bigRss = ratioOf(input, byKey('big-rss'), 'sidecast', 'naive');
  add(`idle RSS/conn ≤ 1.1× naive (${big})`, bigRss, bigRss <= 1.1, why.bigMemory!);
  const bigHeap = ratioOf(input, byKey('big-heap'), 'sidecast', 'naive');
  add(`idle heap/conn ≤ 1.1× naive (${big})`, bigHeap, bigHeap <= 1.1, why.bigMemory!);
  const rssPython = ratioOf(input, rss, 'sidecast', 'python');
  add(`idle RSS/conn ≤ ¼ Python (${small})`, rssPython, rssPython <= 0.25, why.rssPython!);
  const bigPython = ratioOf(input, byKey('big-rss'), 'sidecast', 'python');
  add(`idle RSS/conn ≤ ¼ Python (${big})`, bigPython, bigPython <= 0.25, why.bigPython!);
  const p99 = (variant: VariantKey, load: number) =>
    spread(values(input.rounds, variant, (r) => r.latency[load]?.p99 ?? NaN))?.median ?? NaN;
  const half = input.loads.indexOf(0.5);
  const quarter = input.loads.indexOf(0.25);
  const mine = p99('sidecast', half);
  const theirs = p99('naive', quarter);
  add(
    'p99 at 50% ≤ naive p99 at 25%',
    mine / theirs,
    mine <= theirs,
    why.latency!,
    `${format(mine, 1)} ms vs ${format(theirs, 1)} ms`,
  );
  const seconds = spread(values(input.rounds, 'sidecast', storm.pick));
  const clean = input.rounds.every((round) => {
    const s = round.sidecast?.storm;
    return !s || (s.complete && Object.keys(s.closes).length === 0 && s.opened === s.live);
  });
  add(
    'storm < 5 s, no errors',
    seconds?.max ?? NaN,
    (seconds?.max ?? Infinity) < 5 && clean,
    why.storm!,
    `${format(seconds?.median ?? NaN, 2)} s (worst ${format(seconds?.max ?? NaN, 2)} s)${clean ? '' : ', with errors'}`,
  );
  const faster = 1 / ratioOf(input, storm, 'sidecast', 'python');
  add('storm ≥ 5× faster than Python', faster, faster >= 5, why.stormPython!);
  return [
    '| target | measured (sidecast) | verdict | why |',
    '|---|---|---|---|',
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ];
}

export function renderReport(input: ReportInput): string {
  const specs = metricSpecs(input.loads, input.sizes);
  const cpu = cpus();
  const machine = `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${format(totalmem() / 2 ** 30, 1)} GiB RAM, Linux ${release()}`;
  return [
    '# sidecast benchmark results',
    '',
    `Produced by \`${input.command}\` (${input.mode} mode) on ${input.startedAt.toISOString()}, in ${format(input.elapsedSeconds / 60, 1)} min.`,
    'Do not edit by hand: rerun the command. Method and caveats: bench/README.md.',
    '',
    `**Machine:** ${machine}.`,
    '',
    `**Versions:** ${Object.entries(input.versions)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}.`,
    '',
    '**Settings:**',
    '',
    ...Object.entries(input.settings).map(([name, value]) => `- ${name}: ${value}`),
    '',
    '## Targets',
    '',
    ...targets(input, specs),
    '',
    '## Figures',
    '',
    `Median over ${input.rounds.length} interleaved round(s), (min–max) when more than one; ×ratio to the naive ws loop measured in the same round, [min–max] of the per-round ratios.`,
    '',
    ...table(input, specs),
    '',
    '## Notes',
    '',
    ...input.notes.map((note) => `- ${note}`),
    '',
  ].join('\n');
}
