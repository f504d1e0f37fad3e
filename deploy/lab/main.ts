#!/usr/bin/env node
import '../../src/util/polyfill.js';
import { parseArgs } from 'node:util';
import { pingAll, renderMatrix, renderPods, summarize, wgetAll } from '../../src/lab/checks.js';
import { compareCni, renderCniComparison } from '../../src/lab/compare.js';
import { Lab } from '../../src/lab/lab.js';
import type { CniFlavor } from '../../src/lab/state.js';
import { AGENT_ENTRY } from '../../src/util/agent-launch.js';
import { run } from '../../src/util/exec.js';

const usage = `Usage: lab <command> [--name LAB] [--json]

  up [--nodes N] [--cni weft|reference]   start a cluster (default 3 nodes, weft), run the checks
  down                                   remove everything the lab created (also after a crash)
  status                                 pods, nodes and agents; then the checks again
  exec POD -- CMD...                     run a command in a pod
  add-node                               add a node with its agent and two pods
  remove-node NODE                       delete a node; another node reclaims its ranges (rmpeer)
  partition A B | heal                   cut / restore the underlay between two nodes
  compare [--nodes N]                    the same lab with weft and with bridge + host-local: results, timings
  bench [bench options]                  the benchmark report (bench/README.md)

The default lab is named "lab"; its state is in /run/weft-lab/<name>/. Needs root.
`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  strict: false,
  options: {
    name: { type: 'string', default: 'lab' },
    nodes: { type: 'string', default: '3' },
    cni: { type: 'string', default: 'weft' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
});
const name = String(values.name);
const json = values.json === true;
const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
const progress = (message: string) => say(`• ${message}`);

async function checks(lab: Lab): Promise<boolean> {
  say('');
  say(renderPods(lab));
  say('');
  progress('ping between pods on different nodes (RTT)');
  const pings = await pingAll(lab);
  say(renderMatrix(pings, (r) => r.detail));
  say(summarize('ping', pings));
  say('');
  progress('wget http://<web pod>/ from pods on other nodes');
  const gets = await wgetAll(lab);
  say(renderMatrix(gets, () => '200 ✓'));
  say(summarize('wget', gets));
  if (lab.state.cni === 'weft') {
    const first = lab.nodes[0];
    if (first !== undefined) {
      say('');
      progress(`agent status peers on ${first.name}`);
      const out = await run(
        [
          'nsenter',
          `--net=/run/netns/${first.ns}`,
          process.execPath,
          AGENT_ENTRY,
          'status',
          'peers',
          '--admin-socket',
          lab.socket(first.name),
        ],
        { allowFail: true },
      );
      say((out.stdout || out.stderr).trimEnd());
    }
  }
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ lab: lab.name, nodes: lab.nodes, pods: lab.pods, ping: pings, wget: gets }, null, 2)}\n`,
    );
  }
  return [...pings, ...gets].every((r) => r.ok);
}

function hints(): void {
  const flag = name === 'lab' ? '' : ` --name ${name}`;
  say('');
  say('Go on with:');
  say(`  node dist/deploy/lab/main.js exec n1-sh${flag} -- ping -c 3 <ip>     # any pod, any command`);
  say(
    `  node dist/deploy/lab/main.js add-node${flag} | remove-node n3${flag} | partition n1 n2${flag} | heal${flag}`,
  );
  say(`  node dist/deploy/lab/main.js status${flag}`);
  say(`Tear down: node dist/deploy/lab/main.js down${flag}`);
}

function nodeCount(): number {
  const nodes = Number(values.nodes);
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 50) throw new UsageError('--nodes must be 1..50');
  return nodes;
}

async function main(): Promise<number> {
  const [command, ...rest] = positionals;
  switch (command) {
    case 'up': {
      const nodes = nodeCount();
      const cni = String(values.cni);
      if (cni !== 'weft' && cni !== 'reference') throw new UsageError('--cni must be weft or reference');
      const started = Date.now();
      progress(`starting lab "${name}": ${nodes} nodes, ${cni} CNI`);
      const lab = await Lab.up(name, { nodes, cni: cni as CniFlavor, progress });
      progress(`lab up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      const ok = await checks(lab);
      hints();
      return ok ? 0 : 1;
    }
    case 'down':
      await Lab.down(name, progress);
      return 0;
    case 'status': {
      const lab = Lab.open(name, progress);
      return (await checks(lab)) ? 0 : 1;
    }
    case 'exec': {
      const [pod, ...cmd] = rest;
      if (pod === undefined || cmd.length === 0) throw new UsageError('exec POD -- CMD...');
      const out = await Lab.open(name).exec(pod, cmd, { allowFail: true, timeoutMs: 600_000 });
      process.stdout.write(out.stdout);
      process.stderr.write(out.stderr);
      return out.code;
    }
    case 'add-node': {
      const node = await Lab.open(name, progress).addNode();
      progress(`node ${node.name} added`);
      return 0;
    }
    case 'remove-node': {
      const [node] = rest;
      if (node === undefined) throw new UsageError('remove-node NODE');
      await Lab.open(name, progress).removeNode(node);
      return 0;
    }
    case 'partition': {
      const [a, b] = rest;
      if (a === undefined || b === undefined) throw new UsageError('partition A B');
      await Lab.open(name, progress).partition(a, b);
      progress(`underlay between ${a} and ${b} cut; "heal" restores it`);
      return 0;
    }
    case 'heal':
      await Lab.open(name, progress).heal();
      progress('all partitions healed');
      return 0;
    case 'compare': {
      const runs = await compareCni({ nodes: nodeCount(), progress });
      process.stdout.write(`${renderCniComparison(runs)}\n`);
      if (json) process.stdout.write(`${JSON.stringify(runs)}\n`);
      return runs.every((r) => r.pingOk === r.pingTotal && r.wgetOk === r.wgetTotal) ? 0 : 1;
    }
    case 'bench': {
      const { runBenchReport } = await import('../../bench/report.js');
      return runBenchReport(process.argv.slice(process.argv.indexOf('bench') + 1));
    }
    case undefined:
    case 'help':
      process.stdout.write(usage);
      return command === undefined && values.help !== true ? 2 : 0;
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

class UsageError extends Error {}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`lab: ${(error as Error).message}\n`);
    if (error instanceof UsageError) process.stderr.write(usage);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
