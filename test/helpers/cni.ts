/**
 * Calls CNI plugins exactly as a runtime does: exec the plugin with CNI_* in its environment and
 * the configuration on stdin, inside a node's network namespace; a conflist runs its plugins in
 * order for ADD and CHECK (each gets the previous result as prevResult) and in reverse for DEL.
 */
import { resolve } from 'node:path';
import { REFERENCE_PLUGIN_DIR } from '../../src/lab/cni.js';
import { run } from '../../src/util/exec.js';

/** The plugin executable `npm run build:shim` compiles from cni-shim/weft-cni.c. */
export const SHIM_EXECUTABLE = resolve('dist/cni-shim/weft-cni');

export interface PluginCall {
  /** argv of the plugin executable, e.g. ['/usr/lib/cni/portmap']. */
  plugin: string[];
  /** Node namespace to run in (full name), or undefined for the caller's own. */
  netns?: string;
  env: Record<string, string>;
  stdin: string;
}

export interface PluginOutcome {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json: Record<string, unknown> | undefined;
}

export async function callPlugin(call: PluginCall): Promise<PluginOutcome> {
  const env = Object.entries(call.env).map(([k, v]) => `${k}=${v}`);
  const argv = ['env', '-i', `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`, ...env, ...call.plugin];
  const result = await run(call.netns === undefined ? argv : ['ip', 'netns', 'exec', call.netns, ...argv], {
    input: call.stdin,
    allowFail: true,
  });
  return outcomeOf(result.code, result.stdout, result.stderr);
}

/** A plugin's outcome, with stdout parsed when it is JSON. */
export function outcomeOf(code: number, stdout: string, stderr: string): PluginOutcome {
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Array<Record<string, unknown>>;
}

export interface Attachment {
  containerId: string;
  ifname: string;
  /** Path of the pod's namespace. */
  podNetns: string;
  args?: string;
  /** Capability args, e.g. { portMappings: [...] }, passed as runtimeConfig to plugins that declare them. */
  runtimeConfig?: Record<string, unknown>;
}

export class CniFailure extends Error {
  constructor(
    readonly plugin: string,
    readonly outcome: PluginOutcome,
  ) {
    super(`${plugin} failed (exit ${outcome.code}): ${outcome.stdout || outcome.stderr}`);
  }
}

/** A conflist's plugins and where their executables are. */
export class CniRuntime {
  constructor(
    readonly conflist: ConfList,
    /** Plugin type → argv of its executable. */
    private readonly executables: Record<string, string[]>,
    /** The node namespace plugins run in. */
    readonly netns: string | undefined,
    private readonly cniPath = REFERENCE_PLUGIN_DIR,
    /** How a plugin is exec'd; bench/plugin-runner.ts execs from inside the node like a runtime. */
    private readonly exec: (call: PluginCall) => Promise<PluginOutcome> = callPlugin,
  ) {}

  private stdinFor(plugin: Record<string, unknown>, a: Attachment, prevResult?: unknown, extra = {}): string {
    const config: Record<string, unknown> = {
      ...plugin,
      name: this.conflist.name,
      cniVersion: this.conflist.cniVersion,
      ...extra,
    };
    const caps = plugin.capabilities as Record<string, boolean> | undefined;
    if (caps && a.runtimeConfig) {
      const runtimeConfig = Object.fromEntries(Object.entries(a.runtimeConfig).filter(([k]) => caps[k]));
      if (Object.keys(runtimeConfig).length > 0) config.runtimeConfig = runtimeConfig;
    }
    delete config.capabilities;
    if (prevResult !== undefined) config.prevResult = prevResult;
    return JSON.stringify(config);
  }

  private envFor(command: string, a: Attachment, netns = a.podNetns): Record<string, string> {
    return {
      CNI_COMMAND: command,
      CNI_CONTAINERID: a.containerId,
      CNI_NETNS: netns,
      CNI_IFNAME: a.ifname,
      CNI_ARGS: a.args ?? 'IgnoreUnknown=1',
      CNI_PATH: this.cniPath,
    };
  }

  private executable(plugin: Record<string, unknown>): string[] {
    const argv = this.executables[plugin.type as string];
    if (!argv) throw new Error(`no executable for plugin type ${String(plugin.type)}`);
    return argv;
  }

  /** ADD through the whole list; returns the final result (what a runtime caches). */
  async add(a: Attachment): Promise<Record<string, unknown>> {
    let result: Record<string, unknown> | undefined;
    for (const plugin of this.conflist.plugins) {
      const outcome = await this.exec({
        plugin: this.executable(plugin),
        netns: this.netns,
        env: this.envFor('ADD', a),
        stdin: this.stdinFor(plugin, a, result),
      });
      if (outcome.code !== 0 || !outcome.json) throw new CniFailure(String(plugin.type), outcome);
      result = outcome.json;
    }
    return result ?? {};
  }

  check(a: Attachment, cached: Record<string, unknown>): Promise<void> {
    return this.callEach('CHECK', this.conflist.plugins, a, cached);
  }

  /** DEL in reverse order; `netns` '' is containerd's second DEL. */
  del(a: Attachment, cached?: Record<string, unknown>, netns = a.podNetns): Promise<void> {
    return this.callEach('DEL', [...this.conflist.plugins].reverse(), a, cached, netns);
  }

  /** Calls each plugin in turn with the same cached result; the first that fails throws. */
  private async callEach(
    command: 'CHECK' | 'DEL',
    plugins: ReadonlyArray<Record<string, unknown>>,
    a: Attachment,
    cached: Record<string, unknown> | undefined,
    netns = a.podNetns,
  ): Promise<void> {
    for (const plugin of plugins) {
      const outcome = await this.exec({
        plugin: this.executable(plugin),
        netns: this.netns,
        env: this.envFor(command, a, netns),
        stdin: this.stdinFor(plugin, a, cached),
      });
      if (outcome.code !== 0) throw new CniFailure(String(plugin.type), outcome);
    }
  }
}

/** The weft shim as the runtime sees it: one static executable. */
export function weftExecutable(): string[] {
  return [SHIM_EXECUTABLE];
}

export function weftConflist(name: string, options: Record<string, unknown>, withPortmap = false): ConfList {
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      { type: 'weft', ...options },
      ...(withPortmap ? [{ type: 'portmap', capabilities: { portMappings: true } }] : []),
    ],
  };
}
