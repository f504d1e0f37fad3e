import '../src/util/polyfill.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startAgentOn } from '../test/helpers/agent.js';
import type { NetnsGroup } from '../test/helpers/netns.js';
import type { TwoNodeTopology } from '../test/helpers/topology.js';
import { QUICK_MEASURE_OPTIONS } from './measure.js';
import { type BenchMode, kernelVxlanGpeMode, routedMode, runComparison } from './topology.js';

/**
 * `npm run bench`: weft against plain routing (the limit) and the kernel's VXLAN-GPE (the same
 * wire format done in the kernel), each on a fresh two-node topology, in one run.
 */
const weftMode: BenchMode = {
  name: 'weft',
  podMtu: 1464,
  async setUp(group: NetnsGroup, topo: TwoNodeTopology) {
    const agents = [await startAgentOn(group, topo, 0), await startAgentOn(group, topo, 1)];
    return {
      pids: agents.map((a) => a.child.pid as number),
      undo: async () => {
        for (const agent of agents) await group.stop(agent.child);
      },
    };
  },
};

const modes: Record<string, BenchMode> = {
  routed: routedMode,
  'vxlan-gpe': kernelVxlanGpeMode,
  weft: weftMode,
};

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    quick: { type: 'boolean' },
    duration: { type: 'string' },
    reps: { type: 'string' },
    out: { type: 'string' },
    'no-lock': { type: 'boolean' },
  },
});
const selected = positionals.length > 0 ? positionals : Object.keys(modes);
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
