import { describe, expect, test } from 'vitest';
import type { StatusReport } from '../../../src/api/status-report.js';
import { statusReportSchema } from '../../../src/api/status-schema.js';
import { wholeMillis } from '../../../src/api/views/format.js';
import { type StatusViewName, showView, statusViews } from '../../../src/api/views/index.js';
import { awaitingConsensusReport, clusterReport, staticReport } from './fixtures.js';

const fixtures: Record<string, () => StatusReport> = {
  cluster: clusterReport,
  static: staticReport,
  awaiting: awaitingConsensusReport,
};
const viewNames = Object.keys(statusViews) as StatusViewName[];

describe('status views rendered from a fixed agent state', () => {
  for (const [fixture, report] of Object.entries(fixtures)) {
    for (const view of viewNames) {
      test(`${fixture}: ${view} matches the golden file`, async () => {
        await expect(showView(view, report(), false)).toMatchFileSnapshot(`./golden/${fixture}-${view}.txt`);
      });
      test(`${fixture}: ${view} --json conforms to its schema`, () => {
        const json = JSON.parse(showView(view, report(), true));
        const parsed = statusViews[view].schema.safeParse(json);
        expect(parsed.error?.issues ?? []).toEqual([]);
      });
    }
  }
});

describe('columns and facts the views must show', () => {
  const headerOf = (text: string, first: string) => text.split('\n').find((l) => l.startsWith(first)) ?? '';

  test('peers: every column, this node first, ICMP and libp2p RTT, unreachable marked', () => {
    const text = showView('peers', clusterReport(), false);
    const header = headerOf(text, 'NODE');
    for (const column of [
      'PEER ID',
      'UNDERLAY',
      'STATE',
      'LAST SEEN',
      'RTT',
      'ICMP RTT',
      'PMTU',
      'RANGES',
      'ADDRESSES',
      'IN USE',
    ])
      expect(header).toContain(column);
    const rows = text.split('\n').slice(1, 4);
    expect(rows[0]).toMatch(/^n1 \(this node\) .*self/);
    expect(rows[1]).toMatch(
      /^n2 .*…2222bbbb .*192\.168\.198\.2 .*reachable .*0\.4 s ago +2 ms +0\.087 ms .*1500 B/,
    );
    expect(rows[2]).toMatch(/^n3 .*unreachable .*95 s ago/);
  });

  test('ipam: shares add up to 100 %, the unreachable owner is marked with the rmpeer hint', () => {
    const model = statusViews.ipam.model(clusterReport());
    expect(model.shares.reduce((sum, s) => sum + s.percent, 0)).toBeCloseTo(100, 9);
    const text = showView('ipam', clusterReport(), false);
    expect(text).toMatch(/^n3 .*393,216 .*37\.5 % .*unreachable!$/m);
    expect(text).toContain('agent rmpeer n3');
    expect(text).toMatch(/^n1 \(this node\) .*12 active$/m);
  });

  test("ipam in static mode: the file's ranges plus the unassigned rest add up to 100 %", () => {
    const model = statusViews.ipam.model(staticReport());
    expect(model.state).toBe('static');
    expect(model.shares.map((s) => s.peer)).toEqual(['n1', 'n2', null]);
    expect(model.shares.reduce((sum, s) => sum + s.percent, 0)).toBeCloseTo(100, 9);
  });

  test('dataplane: per-peer traffic with a total row, every drop reason, a PMTU warning', () => {
    const text = showView('dataplane', clusterReport(), false);
    expect(text).toMatch(/^total +123,456 .* 120,001 /m);
    for (const reason of Object.keys(clusterReport().dataplane.counters.dropped))
      expect(text).toContain(reason);
    expect(text).toContain(
      'path MTU to n3 is 1400 B but full overlay packets need 1500 B: lower --mtu to 1364',
    );
    expect(text).not.toContain('path MTU to n2');
  });

  test('connections: established first, the retrying dial with its error and next retry', () => {
    const text = showView('connections', clusterReport(), false);
    const lines = text.trim().split('\n');
    expect(lines[1]).toMatch(/^<- .*established/);
    expect(lines[2]).toMatch(/^-> .*retrying +connect ECONNREFUSED .*retry #4 in 7\.5 s/);
  });

  test('summary: the facts the issue lists', () => {
    const text = showView('summary', clusterReport(), false);
    for (const fact of [
      /Version: weft 0\.1\.0/,
      /Status: ready/,
      /Peer ID: 12D3KooW/,
      /Encryption: cluster secret/,
      /Peers: 2 \(1 reachable, 1 unreachable\)/,
      /Connections: 2 \(1 established, 1 retrying\)/,
      /IPAM: ready/,
      /Cluster range: 10\.32\.0\.0\/12/,
      /Pod ranges: 10\.32\.0\.0\/14, 10\.44\.0\.0\/16 \(12 pods, 327,664 free\)/,
      /Data plane: userspace/,
      /MTU 1464/,
      /Encapsulated: 123,456 packets/,
      /Decapsulated: 120,001 packets/,
      /Dropped: 4 packets \(spoofed_source 1, no_route 3\)/,
      /agent rmpeer n3/,
    ])
      expect(text).toMatch(fact);
    expect(showView('summary', awaitingConsensusReport(), false)).toMatch(
      /Status: NOT READY: IPAM awaiting consensus: quorum 2, known 1/,
    );
  });
});

describe('the report schema', () => {
  test('accepts every fixture and rejects a report that lost a field or changed a type', () => {
    for (const report of Object.values(fixtures))
      expect(statusReportSchema.safeParse(report()).success).toBe(true);
    const { readiness: _, ...withoutReadiness } = clusterReport();
    expect(statusReportSchema.safeParse(withoutReadiness).success).toBe(false);
    const wrongState = clusterReport();
    (wrongState.controlPlane?.peers[0] as { state: string }).state = 'gone';
    expect(statusReportSchema.safeParse(wrongState).success).toBe(false);
    const missingDropReason = clusterReport();
    delete (missingDropReason.dataplane.counters.dropped as Partial<Record<string, number>>).oversize;
    expect(statusReportSchema.safeParse(missingDropReason).success).toBe(false);
  });
});

describe('round-trip formatting', () => {
  test("libp2p's whole-millisecond RTT: 0 reads as under a millisecond, not as 0.000 ms", () => {
    expect(wholeMillis(0)).toBe('<1 ms');
    expect(wholeMillis(0.5)).toBe('<1 ms');
    expect(wholeMillis(3)).toBe('3 ms');
    expect(wholeMillis(1234)).toBe('1,234 ms');
    expect(wholeMillis(null)).toBe('-');
  });

  test('a sub-millisecond peer reads "<1 ms" in the peers table, its ICMP RTT keeps microseconds', () => {
    const report = clusterReport();
    const n2 = report.controlPlane?.peers.find((p) => p.name === 'n2');
    if (n2 === undefined) throw new Error('fixture lacks n2');
    n2.rttMs = 0;
    expect(showView('peers', report, false)).toMatch(/^n2 .* reachable +0\.4 s ago +<1 ms +0\.087 ms /m);
  });
});
