import type { CommandSpec, InputWiring, OutputWiring } from '../shared/spec.js';
import type { StdioPlan } from './engine.js';

function input(w: InputWiring): StdioPlan {
  return w.kind === 'null' ? 'null' : w.kind === 'fd' ? { fd: w.fd } : 'pipe';
}

function output(w: OutputWiring): StdioPlan {
  return w.kind === 'null' ? 'null' : w.kind === 'fd' ? { fd: w.fd } : 'pipe';
}

/**
 * What the child gets at 0, 1, 2. An unwired stderr is still a pipe: its
 * tail goes into the error message of a failed command, as virCommandRun
 * logs it (but a daemon's: /dev/null). An unwired stdout is /dev/null and costs nothing.
 */
export function stdioPlan(spec: CommandSpec): [StdioPlan, StdioPlan, StdioPlan] {
  // A daemon would hold that pipe open for as long as it lives.
  const tail: StdioPlan = spec.attrs.daemonize ? 'null' : 'pipe';
  const stderr: StdioPlan =
    spec.stderr.kind === 'combined' ? 'stdout' : spec.stderr.kind === 'null' ? tail : output(spec.stderr);
  return [input(spec.stdin), output(spec.stdout), stderr];
}
