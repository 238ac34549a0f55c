#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { CannotStart, runBench, type BenchOptions, type BenchReport } from './bench.js';
import { formatJson, formatMarkdown, formatText } from './bench-report.js';
import { parseDuration } from './duration.js';
import { splitWords } from './words.js';
import { count, engine, QUEUE_USAGE, runCommand, RUN_USAGE } from './run-command.js';
import { OutputFileError } from './sink.js';
import { UsageError } from './usage.js';

const USAGE = `usage:
${RUN_USAGE}
${QUEUE_USAGE}
  spawnpool bench [OPTIONS] [-- CMD ARGS [--- CMD2 ARGS ...]] [--cmd 'CMD ARGS' ...]
      Runs each command (default /bin/true) through the pool and reports its
      time (mean ± σ, min, max, p50/p90/p99/p99.9), spawns/s, failures by code
      and the main loop's delay; several commands are compared.
    -w, --warmup N            unmeasured runs first (one probe run always checks it starts)
    -n, --runs N | -d, --duration DURATION   (default: at least 10 runs and 3 s)
    -c, --concurrency N       in flight at once (default 1)
    --rate R[/s]              open loop: R starts a second, each timed from its scheduled start
    --ballast MB              hold that much resident memory first
    --compare                 each command on child_process.spawn too
    --export-json FILE, --export-markdown FILE
    --engine native|node
  spawnpool --version | --help`;

async function benchCommand(args: string[]): Promise<number> {
  const terminator = args.indexOf('--');
  const { values } = parseArgs({
    args: terminator === -1 ? args : args.slice(0, terminator),
    allowPositionals: false,
    options: {
      warmup: { type: 'string', short: 'w' },
      runs: { type: 'string', short: 'n' },
      duration: { type: 'string', short: 'd' },
      concurrency: { type: 'string', short: 'c' },
      rate: { type: 'string' },
      cmd: { type: 'string', multiple: true },
      ballast: { type: 'string' },
      compare: { type: 'boolean', default: false },
      engine: { type: 'string' },
      'export-json': { type: 'string' },
      'export-markdown': { type: 'string' },
    },
  });
  if (values.concurrency !== undefined && values.rate !== undefined) throw new UsageError('-c (closed loop) or --rate (open loop): one of them');
  if (values.runs !== undefined && values.duration !== undefined) throw new UsageError('-n or -d: one of them');
  const argvs = [...(values.cmd ?? []).map(splitWords), ...(terminator === -1 ? [] : splitCommands(args.slice(terminator + 1)))];
  const commands = (argvs.length > 0 ? argvs : [['/bin/true']]).map((argv) => ({ label: argv.join(' '), argv }));
  const o: BenchOptions = {
    commands,
    warmup: count('-w', values.warmup, 0, 0),
    runs: values.runs === undefined ? undefined : count('-n', values.runs, 0),
    durationMs: values.duration === undefined ? undefined : parseDuration('-d', values.duration),
    concurrency: count('-c', values.concurrency, 1),
    rate: values.rate === undefined ? undefined : parseRate(values.rate),
    ballastMb: count('--ballast', values.ballast, 0, 0),
    compare: values.compare,
    engine: engine(values.engine),
    progress: process.stderr.isTTY ? process.stderr : undefined,
  };
  let reports: BenchReport[];
  try {
    reports = await runBench(o);
  } catch (err) {
    if (!(err instanceof CannotStart)) throw err;
    console.error(`spawnpool bench: ${err.message}`);
    return 1;
  }
  process.stdout.write(formatText(reports, o));
  for (const [path, text] of [[values['export-json'], () => formatJson(reports, o)], [values['export-markdown'], () => formatMarkdown(reports)]] as const) {
    if (path === undefined) continue;
    try {
      writeFileSync(path, text());
    } catch (err) {
      throw new OutputFileError(path, err as NodeJS.ErrnoException);
    }
  }
  return reports.every((r) => r.failed === 0) ? 0 : 1;
}

/** `-- CMD1 ARGS --- CMD2 ARGS`: the commands to compare. */
function splitCommands(words: readonly string[]): string[][] {
  const out: string[][] = [[]];
  for (const w of words) {
    if (w === '---') out.push([]);
    else out[out.length - 1]!.push(w);
  }
  if (out.some((c) => c.length === 0)) throw new UsageError('an empty command between -- and ---');
  return out;
}

/** `--rate 200` or `200/s`: starts per second. */
function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(?:\/s)?$/.exec(text);
  const rate = m === null ? NaN : Number(m[1]);
  if (!(rate > 0)) throw new UsageError(`--rate must be a number of starts per second (200 or 200/s), got ${text}`);
  return rate;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run': return await runCommand(rest, process.stdin, process.stdout, process.stderr);
      case 'bench': return await benchCommand(rest);
      case 'submit': return await runCommand(rest, process.stdin, process.stdout, process.stderr, 'submit');
      case 'worker': case 'status': case 'cancel': {
        const q = await import('./queue-command.js');
        const run = { worker: () => q.workerCommand(rest, process.stderr), status: () => q.statusCommand(rest, process.stdout), cancel: () => q.cancelCommand(rest, process.stderr) }[command];
        return await q.queueMain(run, command);
      }
      case '--version': case '-V':
        console.log(version());
        return 0;
      case '--help': case '-h': case 'help':
        console.log(USAGE);
        return 0;
      default:
        throw new UsageError(command === undefined ? 'a command is needed' : `unknown command ${command}`);
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (err instanceof OutputFileError) {
      console.error(`spawnpool: ${err.message}`);
      return 3;
    }
    if (err instanceof UsageError || e.code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`spawnpool: ${e.message}\n${USAGE}`);
      return 2;
    }
    if (e.syscall !== undefined) {
      console.error(`spawnpool: ${e.message}`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
