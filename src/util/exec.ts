import { execFile, execFileSync } from 'node:child_process';

export interface RunOptions {
  /** Run inside this network namespace (`ip netns exec <netns> …`). */
  netns?: string;
  /** Written to the command's stdin, which is then closed. */
  input?: string;
  /** Kill the command (SIGKILL) after this long; a timeout always throws. Default 30 s. */
  timeoutMs?: number;
  /** Return a non-zero exit code instead of throwing. Spawn failures and timeouts still throw. */
  allowFail?: boolean;
  /** Extra environment variables, added to this process's environment. */
  env?: Record<string, string>;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
// `ip -json` of a busy namespace, tcpdump hex dumps and iperf3 JSON stay far below this.
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** A command that could not be started, timed out, was killed, or exited non-zero. */
export class CommandError extends Error {
  override readonly name = 'CommandError';

  constructor(
    readonly argv: readonly string[],
    /** Exit code, or null when the command never ran or was killed by a signal. */
    readonly code: number | null,
    readonly stderr: string,
    readonly signal: NodeJS.Signals | null = null,
    cause?: unknown,
  ) {
    const how =
      code !== null ? `exit code ${code}` : signal !== null ? `signal ${signal}` : 'failed to start';
    const detail = stderr.trim() || (cause instanceof Error ? cause.message : '');
    super(
      `${argv.join(' ')}: ${how}${detail ? `: ${detail}` : ''}`,
      cause === undefined ? undefined : { cause },
    );
  }
}

function fullArgv(argv: readonly string[], netns: string | undefined): string[] {
  if (argv.length === 0) throw new TypeError('run: empty argv');
  return netns === undefined ? [...argv] : ['ip', 'netns', 'exec', netns, ...argv];
}

/** Runs a program with an argument array (never through a shell) and collects its output. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [file, ...args] = fullArgv(argv, opts.netns) as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        encoding: 'utf8',
        maxBuffer: MAX_OUTPUT_BYTES,
        timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        ...(opts.env === undefined ? {} : { env: { ...process.env, ...opts.env } }),
      },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ stdout, stderr, code: 0 });
          return;
        }
        const code = typeof error.code === 'number' ? error.code : null;
        if (code !== null && opts.allowFail === true) {
          resolve({ stdout, stderr, code });
          return;
        }
        const signal = (error.signal as NodeJS.Signals | undefined) ?? null;
        reject(new CommandError([file, ...args], code, stderr, signal, error));
      },
    );
    // A command that exits without reading its stdin makes the write fail with EPIPE; the exit
    // callback above reports the outcome that matters.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input);
  });
}

/**
 * Synchronous variant, only for process `exit` handlers, where asynchronous work never runs.
 * Never throws: failures are returned as a non-zero code.
 */
export function runSyncBestEffort(argv: readonly string[], timeoutMs = 5_000): RunResult {
  const [file, ...args] = fullArgv(argv, undefined) as [string, ...string[]];
  try {
    const stdout = execFileSync(file, args, { encoding: 'utf8', timeout: timeoutMs, stdio: 'pipe' });
    return { stdout, stderr: '', code: 0 };
  } catch (error) {
    const e = error as { status?: number | null; stdout?: string; stderr?: string };
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.status ?? -1 };
  }
}
