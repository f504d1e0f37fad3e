/**
 * Records how a runtime calls a CNI plugin: the installed plugin is moved aside and replaced by
 * a small wrapper that runs it unchanged (same environment, stdin, stdout and exit code) and
 * appends one line per call to a log. Tests read back which commands came, with which netns,
 * and what the plugin answered.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RecordedCall {
  command: string;
  /** CNI_NETNS as the runtime passed it ('' when it sent none). */
  netns: string;
  containerId: string;
  exitCode: number;
  /** The plugin's stdout: the result, or the CNI error JSON. */
  output: string;
}

const SAFE_PATH = /^[A-Za-z0-9_./-]+$/;

export class CniCallRecorder {
  private constructor(private readonly logFile: string) {}

  /** Wraps plugin `type` in containerd's CNI bin dir; calls are appended to a log in its work dir. */
  static install(containerd: { cniBinDir: string; workDir: string }, type: string): CniCallRecorder {
    const plugin = join(containerd.cniBinDir, type);
    const real = join(containerd.cniBinDir, `${type}.recorded`);
    const logFile = join(containerd.workDir, 'cni-calls.log');
    for (const path of [plugin, logFile]) {
      if (!SAFE_PATH.test(path)) throw new RangeError(`path "${path}" is not safe to put in a script`);
    }
    renameSync(plugin, real);
    // Fields are tab-separated; the plugin prints its JSON on one line.
    const script = `#!/bin/sh
out=$('${real}')
rc=$?
printf '%s\\t%s\\t%s\\t%s\\t%s\\n' "$CNI_COMMAND" "$CNI_NETNS" "$CNI_CONTAINERID" "$rc" "$out" >> '${logFile}'
[ -n "$out" ] && printf '%s\\n' "$out"
exit $rc
`;
    writeFileSync(plugin, script);
    chmodSync(plugin, 0o755);
    return new CniCallRecorder(logFile);
  }

  calls(containerId?: string): RecordedCall[] {
    if (!existsSync(this.logFile)) return [];
    return readFileSync(this.logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [command = '', netns = '', id = '', rc = '', ...rest] = line.split('\t');
        return { command, netns, containerId: id, exitCode: Number(rc), output: rest.join('\t') };
      })
      .filter((call) => containerId === undefined || call.containerId === containerId);
  }

  /** The calls for one sandbox as [command, netns, exit code], the shape the tests compare. */
  trace(containerId: string): Array<[string, string, number]> {
    return this.calls(containerId).map((c) => [c.command, c.netns, c.exitCode]);
  }
}
