#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runBench } from './bench.js';
import { count, engine, runCommand, RUN_USAGE } from './run-command.js';
import { OutputFileError } from './sink.js';
import { UsageError } from './usage.js';

const USAGE = `usage:
${RUN_USAGE}
  spawnpool bench [-n N] [-c CONCURRENCY] [--ballast MB] [--compare] [--engine native|node]
                  [-- CMD ARGS]
      A spawn storm (default /bin/true): spawns/s, latency, main-loop delay.
  spawnpool --version | --help`;

async function benchCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      runs: { type: 'string', short: 'n' },
      concurrency: { type: 'string', short: 'c' },
      ballast: { type: 'string' },
      compare: { type: 'boolean', default: false },
      engine: { type: 'string' },
    },
  });
  const reports = await runBench({
    runs: count('-n', values.runs, 5000),
    concurrency: count('-c', values.concurrency, 64),
    ballastMb: count('--ballast', values.ballast, 0, 0),
    compare: values.compare,
    argv: positionals.length > 0 ? positionals : ['/bin/true'],
    engine: engine(values.engine),
    out: process.stdout,
  });
  return reports.every((r) => r.failed === 0) ? 0 : 1;
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
