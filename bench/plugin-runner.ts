/**
 * Execs CNI plugins from one long-lived process inside a node's network namespace, the way
 * kubelet/containerd do, instead of `ip netns exec … env … plugin` per call: that wrapper costs two
 * extra execs and a mount-namespace setup per call, which at 50 concurrent calls outweighed the
 * plugins themselves and is not part of what a node pays.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PluginCall, PluginOutcome } from '../test/helpers/cni.js';

const CHILD = fileURLToPath(new URL('./plugin-runner-child.js', import.meta.url));

interface Answer {
  id: number;
  code: number;
  stdout: string;
  stderr: string;
}

export class PluginRunner {
  private nextId = 0;
  private readonly waiting = new Map<number, (answer: Answer) => void>();

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as Answer;
      this.waiting.get(answer.id)?.(answer);
      this.waiting.delete(answer.id);
    });
    child.stderr.pipe(process.stderr);
  }

  static start(netns: string): PluginRunner {
    return new PluginRunner(spawn('ip', ['netns', 'exec', netns, process.execPath, CHILD]));
  }

  /** `ip netns exec` execs in place, so this is the runner, whose reaped children are the plugins. */
  get pid(): number {
    return this.child.pid as number;
  }

  /** Runs one plugin; `call.netns` is ignored (the runner already lives in the node). */
  call = (call: PluginCall): Promise<PluginOutcome> =>
    new Promise((resolve) => {
      const id = this.nextId++;
      this.waiting.set(id, ({ code, stdout, stderr }) => {
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(stdout) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolve({ code, stdout, stderr, json });
      });
      this.child.stdin.write(
        `${JSON.stringify({ id, argv: call.plugin, env: call.env, stdin: call.stdin })}\n`,
      );
    });

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin.end();
    await exited;
  }
}
