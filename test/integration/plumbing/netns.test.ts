import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { run } from '../../../src/util/exec.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';

function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
  } catch {
    return 'gone';
  }
}

describeAsRoot('NetnsGroup', () => {
  const groups: NetnsGroup[] = [];
  const extraNamespaces: string[] = [];

  afterEach(async () => {
    for (const group of groups.splice(0)) await group.destroy();
    for (const ns of extraNamespaces.splice(0)) await run(['ip', 'netns', 'del', ns], { allowFail: true });
  });

  it('stops tracked and daemonised processes and deletes its namespaces, idempotently', async () => {
    const group = NetnsGroup.create('nstest');
    groups.push(group);
    await group.addNamespace('a');
    await group.addNamespace('b');
    await group.addVethPair({ ns: 'a', ifname: 'va' }, { ns: 'b', ifname: 'vb' }, { mtu: 1400 });
    await group.addAddress('a', 'va', '192.168.198.1/24');
    await group.addAddress('b', 'vb', '192.168.198.2/24');
    await group.linkUp('a', 'va');
    await group.linkUp('b', 'vb');
    expect((await group.exec('a', ['ping', '-c', '1', '-W', '1', '192.168.198.2'])).code).toBe(0);

    const sleeper = group.spawn('a', ['sleep', '600']);
    // A daemon forks away from its parent; only the namespace still knows it.
    await group.exec('b', ['iperf3', '-s', '-D', '-B', '192.168.198.2']);
    const daemonPids = (await run(['ip', 'netns', 'pids', group.ns('b')])).stdout.split('\n').filter(Boolean);
    expect(daemonPids).toHaveLength(1);

    await group.destroy();
    await group.destroy();
    expect(sleeper.exitCode !== null || sleeper.signalCode !== null).toBe(true);
    // Gone, or a zombie: PID 1 here is no init system and reaps orphans only minutes later.
    expect(processState(Number(daemonPids[0]))).toMatch(/^(gone|Z)$/);
    const left = (await NetnsGroup.listNamespaces()).filter((ns) => ns.startsWith(`${group.prefix}-`));
    expect(left).toEqual([]);
  });

  it('rejects interface names longer than the kernel allows', async () => {
    const group = NetnsGroup.create('nstest');
    groups.push(group);
    await group.addNamespace('a');
    await expect(
      group.addVethPair({ ns: 'a', ifname: 'x'.repeat(16) }, { ns: 'a', ifname: 'y' }),
    ).rejects.toThrow(/1\.\.15/);
  });

  it('sweeps leftovers of dead runs with its prefix only, never a live group', async () => {
    const live = NetnsGroup.create('nsweep');
    groups.push(live);
    await live.addNamespace('n1');
    // Left by a run that died: no live owner.
    const stale = `wt-nsweep-${randomBytes(2).toString('hex')}-n1`;
    const otherPurpose = `wt-nsweepx-${randomBytes(2).toString('hex')}-n1`;
    for (const ns of [stale, otherPurpose]) {
      extraNamespaces.push(ns);
      await run(['ip', 'netns', 'add', ns]);
    }

    expect(await NetnsGroup.sweepStale('wt-nsweep')).toEqual([stale]);
    const names = await NetnsGroup.listNamespaces();
    expect(names).not.toContain(stale);
    expect(names).toContain(otherPurpose);
    expect(names).toContain(live.ns('n1'));
  });
});
