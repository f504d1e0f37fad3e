/**
 * Execs CNI plugins from one long-lived process inside a node's network namespace, the way
 * kubelet/containerd do, instead of `ip netns exec … env … plugin` per call: that wrapper costs two
 * extra execs and a mount-namespace setup per call, which at 50 concurrent calls outweighed the
 * plugins themselves and is not part of what a node pays.
 *
 * Two runners speak the same protocol (bench/runner/wire.ts):
 * - `spawn`: bench/runner/cni-runner.c, a small C process that uses posix_spawn (clone with
 *   CLONE_VM|CLONE_VFORK), so that an exec costs what it costs Go's os.StartProcess in a runtime;
 * - `node`: bench/plugin-runner-child.ts, a Node process whose child_process.spawn forks, copying
 *   its page tables per plugin: the exec cost of a big parent, kept for comparison.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { outcomeOf, type PluginCall, type PluginOutcome } from '../test/helpers/cni.js';
import { answerBodyLength, decodeAnswer, encodeRequest, FrameReader, type RunAnswer } from './runner/wire.js';

export const RUNNER_KINDS = ['spawn', 'node'] as const;
export type RunnerKind = (typeof RUNNER_KINDS)[number];

/** What `npm run build:bench` compiles from bench/runner/cni-runner.c. */
export const CNI_RUNNER_EXECUTABLE = resolve('dist/bench/runner/cni-runner');
/** Built, like the C runner, so that tests running this file from source start the same program. */
const NODE_CHILD = resolve('dist/bench/plugin-runner-child.js');

function runnerCommand(kind: RunnerKind): string[] {
  return kind === 'spawn' ? [CNI_RUNNER_EXECUTABLE] : [process.execPath, NODE_CHILD];
}

export interface PluginExec extends PluginOutcome {
  /** Measured by the runner: from just before the spawn to the plugin's exit with its output at EOF. */
  execMs: number;
}

/** The plugin could not be started at all (missing executable, not executable, …). */
export class PluginStartError extends Error {}

interface Waiter {
  resolve: (answer: RunAnswer) => void;
  reject: (error: Error) => void;
}

export class PluginRunner {
  private nextId = 0;
  private readonly waiting = new Map<number, Waiter>();
  private failure: Error | undefined;

  private constructor(
    readonly kind: RunnerKind,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    const reader = new FrameReader(answerBodyLength, (header, body) => {
      const answer = decodeAnswer(header, body);
      this.waiting.get(answer.id)?.resolve(answer);
      this.waiting.delete(answer.id);
    });
    child.stdout.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (error) {
        this.fail(error as Error);
        child.kill();
      }
    });
    child.stdout.on('end', () => {
      if (reader.pending > 0) this.fail(new Error(`plugin runner ${kind}: its answers end inside a frame`));
    });
    child.stderr.pipe(process.stderr);
    child.stdin.on('error', () => undefined);
    child.on('error', (error) => this.fail(new Error(`plugin runner ${kind}: ${error.message}`)));
    child.on('exit', (code, signal) =>
      this.fail(new Error(`plugin runner ${kind} exited (${signal ?? `code ${code}`})`)),
    );
  }

  /** In `netns` (`ip netns exec` execs in place), or in the caller's namespace without one. */
  static start(kind: RunnerKind, netns?: string): PluginRunner {
    const command = runnerCommand(kind);
    const argv = netns === undefined ? command : ['ip', 'netns', 'exec', netns, ...command];
    return new PluginRunner(kind, spawn(argv[0] as string, argv.slice(1)));
  }

  /** The runner, whose reaped children are the plugins. */
  get pid(): number {
    return this.child.pid as number;
  }

  /** Runs one plugin; `call.netns` is ignored (the runner already lives in the node). */
  call = async (call: PluginCall): Promise<PluginExec> => {
    const env = Object.entries({ PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...call.env });
    const answer = await new Promise<RunAnswer>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const id = this.nextId++;
      this.waiting.set(id, { resolve, reject });
      const stdin = Buffer.from(call.stdin);
      this.child.stdin.write(
        encodeRequest({ id, argv: call.plugin, env: env.map(([k, v]) => `${k}=${v}`), stdin }),
      );
    });
    const stderr = answer.stderr.toString();
    if (answer.kind === 'error') throw new PluginStartError(stderr.trim());
    // A signal reads as a shell reports it.
    const code = answer.kind === 'signal' ? 128 + answer.value : answer.value;
    return { ...outcomeOf(code, answer.stdout.toString(), stderr), execMs: answer.latencyNs / 1e6 };
  };

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    await exited;
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}
