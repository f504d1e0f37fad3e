import '../src/util/polyfill.js';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { TestCluster } from '../test/helpers/cluster.js';
import { standinForCluster } from '../test/helpers/kube-standin-netns.js';
import { NetnsGroup } from '../test/helpers/netns.js';
import { percentile, rssMb } from './measure.js';

/**
 * What `--kube-peers` costs in agent memory: N real agents in node namespaces, once with peers from
 * `--peers` (gossip) and once with peers from Node objects served by the Kubernetes API stand-in
 * (kube), in one invocation. RSS is read once every agent is ready and the cluster has settled.
 *
 *   node dist/bench/kube-agent-rss.js [--agents 3] [--settle-s 10]
 */
const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '3' },
    'settle-s': { type: 'string', default: '10' },
  },
});
const size = Number(values.agents);
const settleMs = Number(values['settle-s']) * 1000;
type Mode = 'gossip' | 'kube';

interface Row {
  mode: Mode;
  agents: number;
  loadAvg1: number;
  rssMbMedian: number;
  rssMbMax: number;
}

const log = (message: string) => console.error(`[kube-rss] ${message}`);

async function measure(mode: Mode): Promise<Row> {
  const group = await NetnsGroup.createAfterSweep('krss');
  try {
    const cluster = await TestCluster.create(group, size, { fastHeartbeat: false });
    if (mode === 'kube') {
      const { api, kubeconfig } = await standinForCluster(cluster);
      for (const node of cluster.nodes) api.addNode(node.name, node.underlayIp);
      for (const node of cluster.nodes)
        cluster.startAgent(node.name, ['--kube-peers', '--kubeconfig', kubeconfig], []);
    } else {
      for (const node of cluster.nodes) cluster.startAgent(node.name);
    }
    await cluster.waitUntilReady(undefined, 120_000);
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const rss = cluster.nodes.map((n) => rssMb(n.agent?.pid as number));
    return {
      mode,
      agents: size,
      loadAvg1: loadavg()[0] as number,
      rssMbMedian: percentile(rss, 0.5),
      rssMbMax: Math.max(...rss),
    };
  } finally {
    await group.destroy();
  }
}

const rows: Row[] = [];
for (const mode of ['gossip', 'kube'] as const) {
  log(`${size} agents, ${mode}…`);
  rows.push(await measure(mode));
}
const [gossip, kube] = rows as [Row, Row];
console.log('mode    agents  load1  RSS MB p50/max');
for (const r of rows) {
  console.log(
    `${r.mode.padEnd(6)}  ${String(r.agents).padStart(6)}  ${r.loadAvg1.toFixed(1).padStart(5)}  ${r.rssMbMedian.toFixed(0).padStart(6)}/${r.rssMbMax.toFixed(0)}`,
  );
}
console.log(
  `kube − gossip: ${(kube.rssMbMedian - gossip.rssMbMedian).toFixed(0)} MB per agent (p50), ratio ${(kube.rssMbMedian / gossip.rssMbMedian).toFixed(2)}×`,
);
console.log(JSON.stringify(rows));
