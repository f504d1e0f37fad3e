/**
 * How the lab, tests and bench start an agent: the built entry, the node flags and the `agent run`
 * command line, in one place (the image's entrypoint, deploy/image/agent, uses the same node flags).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A 4 MB semi-space keeps V8's young generation from growing to its 16 MB default per semi-space:
 * about 11 MB less RSS per agent, no measurable CPU cost at the agent's allocation rate.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir)
      throw new Error('cannot find the weft checkout (package.json) above the agent-launch module');
    dir = up;
  }
  return dir;
}

/** The built agent program (`npm run build`), found from this module whether it runs from src/ or dist/. */
export const AGENT_ENTRY = resolve(repoRoot(), 'dist/agent/main.js');

export interface AgentRunSpec {
  adminSocket: string;
  name?: string;
  underlayAddress?: string;
  stateDir?: string;
  /** Underlay addresses of the other nodes; `--peers` is left out when empty. */
  peers?: readonly string[];
  peersFile?: string;
  /** Node flags after AGENT_NODE_FLAGS (e.g. `--cpu-prof`). */
  nodeFlags?: readonly string[];
  /** Further `agent run` flags, last so they can override the ones above. */
  flags?: readonly string[];
}

/** The argv (node binary first) of `agent run` for one node. */
export function agentRunArgv(spec: AgentRunSpec): string[] {
  const flag = (name: string, value: string | undefined): string[] =>
    value === undefined ? [] : [name, value];
  return [
    process.execPath,
    ...AGENT_NODE_FLAGS,
    ...(spec.nodeFlags ?? []),
    AGENT_ENTRY,
    'run',
    ...flag('--name', spec.name),
    ...flag('--underlay-address', spec.underlayAddress),
    ...flag('--state-dir', spec.stateDir),
    ...flag('--admin-socket', spec.adminSocket),
    ...flag('--peers', spec.peers !== undefined && spec.peers.length > 0 ? spec.peers.join(',') : undefined),
    ...flag('--peers-file', spec.peersFile),
    ...(spec.flags ?? []),
  ];
}
