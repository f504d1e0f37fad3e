import '../src/util/polyfill.js';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startAgentOn, waitFor } from '../test/helpers/agent.js';
import type { NetnsGroup } from '../test/helpers/netns.js';
import type { TwoNodeTopology } from '../test/helpers/topology.js';
import { ALL_TESTS, QUICK_MEASURE_OPTIONS, type TestName } from './measure.js';
import { type BenchMode, kernelVxlanGpeMode, routedMode, runComparison } from './topology.js';

/**
 * `npm run bench`: weft against plain routing (the limit) and the kernel's VXLAN-GPE (the same
 * wire format done in the kernel), each on a fresh two-node topology, in one run.
 */
function weftMode(name: string, agentFlags: string[], peerFeatures: string[] = ['partial-csum']): BenchMode {
  return {
    name,
    podMtu: 1464,
    async setUp(group: NetnsGroup, topo: TwoNodeTopology) {
      // Each node's peer file lists what the other announces, as the topology records would.
      const opts = { flags: [...agentFlags, ...extraAgentFlags], nodeFlags, peerFeatures };
      const agents = [await startAgentOn(group, topo, 0, opts), await startAgentOn(group, topo, 1, opts)];
      return {
        pids: agents.map((a) => a.child.pid as number),
        undo: async () => {
          for (const agent of agents) await group.stop(agent.child);
        },
      };
    },
  };
}

/**
 * A bench-only forwarding loop on both nodes instead of the agent: `command` runs as
 * `<command...> <selfIp> <peerIp> --partial` (partial checksums, as weft between its peers), creates
 * weft0, and sends everything to the other node.
 */
function standaloneLoopMode(name: string, command: () => string[]): BenchMode {
  return {
    name,
    podMtu: 1464,
    async setUp(group: NetnsGroup, topo: TwoNodeTopology) {
      const loops: ChildProcess[] = [];
      for (const node of [0, 1] as const) {
        const self = topo.nodes[node];
        const peer = topo.nodes[node === 0 ? 1 : 0];
        const child = group.spawn(self.shortName, [
          ...command(),
          self.underlayIp,
          peer.underlayIp,
          '--partial',
        ]);
        loops.push(child);
        await waitFor(
          async () =>
            (await group.exec(self.shortName, ['ip', 'link', 'show', 'weft0'], { allowFail: true })).code ===
            0,
          10_000,
          `${name} on ${self.shortName} did not create weft0`,
        );
        await group.exec(self.shortName, [
          'ip',
          'link',
          'set',
          'weft0',
          'mtu',
          '1464',
          'txqueuelen',
          '10000',
          'up',
        ]);
        await group.exec(self.shortName, [
          'ip',
          'route',
          'add',
          peer.podCidr,
          'dev',
          'weft0',
          'src',
          self.gatewayIp,
        ]);
      }
      return {
        pids: loops.map((child) => child.pid as number),
        undo: async () => {
          for (const child of loops) await group.stop(child);
        },
      };
    },
  };
}

/** Not run by default: bench/dp-minimal-loop.ts, the prototype's loop on weft's addon without the agent. */
const minimalLoopMode = standaloneLoopMode('minimal-loop', () => [
  process.execPath,
  ...nodeFlags,
  fileURLToPath(new URL('./dp-minimal-loop.js', import.meta.url)),
]);
/** Not run by default: bench/runner/dp-relay.c, the same loop in C (no JavaScript per packet). */
const nativeRelayMode = standaloneLoopMode('native-relay', () => [
  fileURLToPath(new URL('./runner/dp-relay', import.meta.url)),
]);

const modes: Record<string, BenchMode> = {
  'minimal-loop': minimalLoopMode,
  'native-relay': nativeRelayMode,
  routed: routedMode,
  'vxlan-gpe': kernelVxlanGpeMode,
  weft: weftMode('weft', []),
  /** Not run by default: complete inner checksums on every packet (a peer that does not take partial ones). */
  'weft-full-csum': weftMode('weft-full-csum', [], []),
  /** Not run by default: the per-packet path, to show what the offloads bring. */
  'weft-offload-off': weftMode('weft-offload-off', ['--offload', 'off']),
};
const DEFAULT_MODES = ['routed', 'vxlan-gpe', 'weft'];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean' },
    duration: { type: 'string' },
    reps: { type: 'string' },
    out: { type: 'string' },
    'no-lock': { type: 'boolean' },
    tests: { type: 'string' },
    'quiet-pct': { type: 'string' },
    'quiet-wait': { type: 'string' },
    /** Passed to every weft agent: `--agent-flag=--offload --agent-flag=off`. */
    'agent-flag': { type: 'string', multiple: true },
    /** Node flags for every weft agent, e.g. `--node-flag=--perf-basic-prof` for perf. */
    'node-flag': { type: 'string', multiple: true },
  },
});
const extraAgentFlags = values['agent-flag'] ?? [];
const nodeFlags = values['node-flag'] ?? [];
const selected = positionals.length > 0 ? positionals : DEFAULT_MODES;
const tests = values.tests?.split(',') ?? ALL_TESTS;
const unknownTests = tests.filter((t) => !(ALL_TESTS as readonly string[]).includes(t));
if (unknownTests.length > 0) {
  console.error(`bench: unknown test(s) ${unknownTests.join(', ')}; choose from ${ALL_TESTS.join(', ')}`);
  process.exit(2);
}
const unknown = selected.filter((name) => !(name in modes));
if (unknown.length > 0) {
  console.error(`bench: unknown mode(s) ${unknown.join(', ')}; choose from ${Object.keys(modes).join(', ')}`);
  process.exit(2);
}

const outDir = values.out ?? join('bench', 'results');
const { comparison, table } = await runComparison(
  selected.map((name) => modes[name] as BenchMode),
  {
    ...(values.quick ? QUICK_MEASURE_OPTIONS : {}),
    ...(values.duration ? { durationSec: Number(values.duration) } : {}),
    ...(values.reps ? { reps: Number(values.reps) } : {}),
    ...(values['no-lock'] ? { lockFile: null } : {}),
    ...(values['quiet-pct'] ? { quietPct: Number(values['quiet-pct']) } : {}),
    ...(values['quiet-wait'] ? { quietMaxWaitSec: Number(values['quiet-wait']) } : {}),
    tests: tests as TestName[],
    reference: selected.includes('vxlan-gpe') ? 'vxlan-gpe' : selected[0],
    log: (message) => console.error(`[bench] ${message}`),
  },
);
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `dataplane-${comparison.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(comparison, null, 2)}\n`);
console.log(table);
console.log(`\nJSON: ${file}`);
process.exit(comparison.modes.every((m) => m.status === 'ok') ? 0 : 1);
