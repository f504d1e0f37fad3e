/**
 * `lab bench` / `npm run bench`: the benchmark report. Runs, one after the other and each in its
 * own process, the data-plane comparison (bench/dataplane.ts: weft, plain routing and the
 * kernel's VXLAN-GPE between pods on two nodes), CNI ADD/DEL latency (bench/cni-latency.ts), the
 * lab with weft against the lab with the reference bridge + host-local plugins (`lab compare`), and
 * gossip convergence with real agents (bench/cluster-convergence.ts); then writes one JSON file and
 * an SVG chart of the throughput comparison to bench/results/.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { barChartSvg } from './chart.js';
import { machineBusyPct } from './measure.js';
import type { Comparison } from './topology.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

interface Section {
  name: string;
  status: 'ok' | 'failed';
  /** What the benchmark printed (its table). */
  text: string;
  data?: unknown;
}

/** Runs `node <script> args`, progress (stderr) shown live, stdout collected. */
function runScript(script: string, args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code: code ?? 1, stdout }));
  });
}

function lastJsonLine(stdout: string): unknown {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

async function dataplane(args: string[], outDir: string): Promise<Section> {
  const { code, stdout } = await runScript(here('./dataplane.js'), [...args, '--out', outDir]);
  const file = /^JSON: (.+)$/m.exec(stdout)?.[1];
  const data = file && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Comparison) : undefined;
  const text = stdout.replace(/^JSON: .+$/m, '').trimEnd();
  return { name: 'dataplane', status: code === 0 && data ? 'ok' : 'failed', text, data };
}

/** A benchmark script whose last stdout line is its JSON result. */
async function scriptSection(name: string, script: string, args: string[]): Promise<Section> {
  const { code, stdout } = await runScript(script, args);
  const data = lastJsonLine(stdout);
  const text = (data === undefined ? stdout : stdout.trim().split('\n').slice(0, -1).join('\n')).trimEnd();
  return { name, status: code === 0 ? 'ok' : 'failed', text, data };
}

/** The throughput comparison as a chart: TCP 1 and 4 streams, UDP 64 B packets per second. */
export function throughputChart(comparison: Comparison, note: string): string {
  const ok = comparison.modes.filter((m) => m.summary !== undefined);
  const bars = (pick: (m: (typeof ok)[number]) => number | null | undefined) =>
    ok.map((m) => ({ label: m.mode, value: pick(m) ?? null }));
  return barChartSvg(
    'weft vs plain routing vs kernel VXLAN-GPE, pod to pod across two nodes (medians)',
    [
      { title: 'TCP, 1 stream', unit: 'Gbit/s', bars: bars((m) => m.summary?.tcp1Gbps) },
      { title: 'TCP, 4 streams', unit: 'Gbit/s', bars: bars((m) => m.summary?.tcp4Gbps) },
      {
        title: 'UDP, 64-byte datagrams',
        unit: 'kpps delivered',
        bars: bars((m) => (m.summary?.udpDeliveredPps == null ? null : m.summary.udpDeliveredPps / 1000)),
      },
    ],
    note,
  );
}

export async function runBenchReport(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      reps: { type: 'string' },
      duration: { type: 'string' },
      out: { type: 'string', default: join('bench', 'results') },
      sizes: { type: 'string' },
      skip: { type: 'string', default: '' },
    },
  });
  const outDir = String(values.out);
  const skip = new Set(String(values.skip).split(',').filter(Boolean));
  mkdirSync(outDir, { recursive: true });
  const busyPct = await machineBusyPct();
  const load = loadavg()[0] ?? 0;
  const log = (message: string) => process.stderr.write(`[report] ${message}\n`);
  log(`machine ${busyPct.toFixed(0)} % busy, load average ${load.toFixed(2)} before the run`);

  const sections: Section[] = [];
  const dpArgs = [
    ...(values.quick ? ['--quick'] : []),
    ...(values.reps ? ['--reps', values.reps] : []),
    ...(values.duration ? ['--duration', values.duration] : []),
  ];
  if (!skip.has('dataplane')) {
    log('data plane: routed, vxlan-gpe, weft');
    sections.push(await dataplane(dpArgs, outDir));
  }
  if (!skip.has('cni')) {
    log('CNI ADD/DEL latency');
    const cniArgs = values.quick ? ['--pods', '10', '--rounds', '1'] : [];
    sections.push(await scriptSection('cni-latency', here('./cni-latency.js'), cniArgs));
  }
  if (!skip.has('compare')) {
    log('the lab with weft and with bridge + host-local (pod start, ping, wget)');
    const nodes = values.quick ? '2' : '3';
    sections.push(
      await scriptSection('cni-reference', here('../deploy/lab/main.js'), [
        'compare',
        '--nodes',
        nodes,
        '--json',
      ]),
    );
  }
  if (!skip.has('convergence')) {
    const sizes = values.sizes ?? (values.quick ? '3' : '3,5,10');
    log(`gossip convergence with ${sizes} agents`);
    const idle = values.quick ? ['--settle-s', '1', '--idle-s', '3'] : ['--settle-s', '5', '--idle-s', '10'];
    sections.push(
      await scriptSection('convergence', here('./cluster-convergence.js'), ['--sizes', sizes, ...idle]),
    );
  }

  const date = new Date().toISOString();
  const stamp = date.replace(/[:.]/g, '-');
  const loadNote = `measured on a shared machine: ${busyPct.toFixed(0)} % busy, load ${load.toFixed(2)} at the start`;
  const report = { date, load: { busyPct, loadavg1: load, note: loadNote }, sections };
  const jsonFile = join(outDir, `report-${stamp}.json`);
  writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  const comparison = sections.find((s) => s.name === 'dataplane')?.data as Comparison | undefined;
  let svgFile: string | undefined;
  if (comparison) {
    svgFile = join(outDir, `throughput-${stamp}.svg`);
    writeFileSync(svgFile, throughputChart(comparison, loadNote));
  }

  for (const section of sections) {
    process.stdout.write(`\n== ${section.name} (${section.status})\n${section.text}\n`);
  }
  process.stdout.write(`\n${loadNote}\nJSON: ${jsonFile}\n${svgFile ? `chart: ${svgFile}\n` : ''}`);
  return sections.every((s) => s.status !== 'failed') ? 0 : 1;
}
