import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { delQueueDirOf } from '../../../src/cni/agent-cni.js';
import { waitFor } from '../../helpers/agent.js';
import { TestCluster } from '../../helpers/cluster.js';
import {
  type Attachment,
  CniFailure,
  CniRuntime,
  callPlugin,
  weftConflist,
  weftExecutable,
} from '../../helpers/cni.js';
import { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';

const NODES = ['n1', 'n2'];

describeAsRoot('CNI plugin driven like a runtime, with real agents', () => {
  let group: NetnsGroup;
  let cluster: TestCluster;
  const runtimes = new Map<string, CniRuntime>();
  let podCount = 0;

  const delQueueOf = (node: string) => delQueueDirOf(cluster.node(node).stateDir);
  const runtimeOn = (node: string, withPortmap = false): CniRuntime => {
    const key = `${node}/${withPortmap}`;
    let runtime = runtimes.get(key);
    if (!runtime) {
      const conflist = weftConflist(
        'weftnet',
        { socket: cluster.node(node).socket, delQueueDir: delQueueOf(node) },
        withPortmap,
      );
      runtime = new CniRuntime(
        conflist,
        { weft: weftExecutable(), portmap: ['/usr/lib/cni/portmap'] },
        group.ns(node),
      );
      runtimes.set(key, runtime);
    }
    return runtime;
  };
  const newPod = async (): Promise<Attachment & { short: string }> => {
    const short = `p${++podCount}`;
    const ns = await group.addNamespace(short);
    return {
      short,
      containerId: `cid-${group.prefix}-${short}`,
      ifname: 'eth0',
      podNetns: `/run/netns/${ns}`,
    };
  };
  const podIp = (result: Record<string, unknown>) =>
    ((result.ips as Array<{ address: string }>)[0]?.address ?? '').split('/')[0] as string;
  const hostVeths = async (node: string) =>
    (await group.exec(node, ['ip', '-o', 'link', 'show', 'type', 'veth'])).stdout
      .split('\n')
      .filter((l) => / vwf[0-9a-f]{12}@/.test(l)).length;
  const allocations = async (node: string) =>
    (await cluster.status(node)).controlPlane?.ipam.allocations ?? -1;
  const ping = async (from: string, ip: string) =>
    (await group.exec(from, ['ping', '-c', '2', '-i', '0.2', '-W', '2', ip], { allowFail: true })).code === 0;

  beforeAll(async () => {
    group = await NetnsGroup.createAfterSweep('cni');
    cluster = await TestCluster.create(group, NODES.length);
    for (const n of NODES) cluster.startAgent(n);
    await cluster.waitUntilReady(NODES);
  }, 90_000);

  afterAll(async () => {
    await group?.destroy();
  });

  it('ADD puts the pod on the overlay, CHECK verifies it, DEL undoes it and is idempotent', async () => {
    const a = await newPod();
    const b = await newPod();
    const ra = await runtimeOn('n1').add(a);
    const rb = await runtimeOn('n2').add(b);
    expect(ra.cniVersion).toBe('1.0.0');
    const interfaces = ra.interfaces as Array<{ name: string; mac: string; sandbox?: string }>;
    expect(interfaces[1]).toMatchObject({ name: 'eth0', sandbox: a.podNetns });
    expect(interfaces[0]?.name).toMatch(/^vwf[0-9a-f]{12}$/);
    expect(ra.routes).toEqual([{ dst: '0.0.0.0/0', gw: (ra.ips as Array<{ gateway: string }>)[0]?.gateway }]);
    const route = (await group.exec(a.short, ['ip', 'route', 'show', 'default'])).stdout;
    expect(route).toContain(`via ${(ra.ips as Array<{ gateway: string }>)[0]?.gateway} dev eth0`);
    // One queue per direction on both ends, whatever the CPU count (the kernel's default is one per CPU).
    for (const [ns, ifname] of [
      [a.short, 'eth0'],
      ['n1', interfaces[0]?.name as string],
    ] as const) {
      const queues = await group.exec(ns, ['ip', '-d', '-j', 'link', 'show', ifname]);
      expect(JSON.parse(queues.stdout)[0]).toMatchObject({ num_tx_queues: 1, num_rx_queues: 1 });
    }

    expect(await ping(a.short, podIp(rb))).toBe(true);
    expect(await ping(b.short, podIp(ra))).toBe(true);
    await runtimeOn('n1').check(a, ra);

    // CHECK notices a broken pod link.
    await group.exec(a.short, ['ip', 'link', 'set', 'eth0', 'mtu', '1280']);
    const broken = await runtimeOn('n1')
      .check(a, ra)
      .catch((e: CniFailure) => e);
    expect(broken).toBeInstanceOf(CniFailure);
    expect((broken as CniFailure).outcome.json).toMatchObject({ code: 100 });
    expect(String((broken as CniFailure).outcome.json?.msg)).toContain('MTU 1280');

    const before = await allocations('n1');
    await runtimeOn('n1').del(a, ra);
    expect(await allocations('n1')).toBe(before - 1);
    expect((await group.exec(a.short, ['ip', '-o', 'link'])).stdout).not.toContain('eth0');
    await runtimeOn('n1').del(a, ra); // repeated
    await runtimeOn('n1').del(a, ra, ''); // containerd's second DEL, no netns
    await runtimeOn('n1').del({ ...a, containerId: 'never-added' }); // unknown container
    expect(await allocations('n1')).toBe(before - 1);
    await runtimeOn('n2').del(b, rb);
  });

  it('a repeated ADD (a runtime retrying) gets the same address and leaves one working link', async () => {
    const pod = await newPod();
    const runtime = runtimeOn('n1');
    const first = await runtime.add(pod);
    const again = await runtime.add(pod);
    expect(podIp(again)).toBe(podIp(first));
    expect((await group.exec(pod.short, ['ip', '-o', 'link', 'show', 'eth0'])).stdout).toContain('eth0');
    await runtime.check(pod, again);
    expect(await ping(pod.short, (first.ips as Array<{ gateway: string }>)[0]?.gateway as string)).toBe(true);
    await runtime.del(pod, again);
    expect(await hostVeths('n1')).toBe(0);
  });

  it('answers in the configuration version: 0.4.0, 1.0.0 and 1.1.0', async () => {
    for (const version of ['0.4.0', '1.0.0', '1.1.0']) {
      const pod = await newPod();
      const base = runtimeOn('n1');
      const runtime = new CniRuntime(
        { ...base.conflist, cniVersion: version },
        { weft: weftExecutable() },
        base.netns,
      );
      const result = await runtime.add(pod);
      expect(result.cniVersion).toBe(version);
      const ip = (result.ips as Array<Record<string, unknown>>)[0];
      if (version === '0.4.0') expect(ip?.version).toBe('4');
      else expect(ip?.version).toBeUndefined();
      await runtime.check(pod, result);
      await runtime.del(pod, result);
    }
  });

  it('chains portmap after weft: a host port reaches the pod, and DEL removes the mapping', async () => {
    const pod = await newPod();
    const www = join(cluster.workDir, 'www');
    await group.exec(pod.short, ['mkdir', '-p', www]);
    await group.exec(pod.short, ['sh', '-c', `echo hello-from-weft-pod > ${www}/index.html`]);
    const runtime = runtimeOn('n1', true);
    const attachment = {
      ...pod,
      runtimeConfig: { portMappings: [{ hostPort: 18080, containerPort: 80, protocol: 'tcp' }] },
    };
    const result = await runtime.add(attachment);
    const httpd = group.spawn(pod.short, ['busybox', 'httpd', '-f', '-p', '80', '-h', www]);
    try {
      const url = `http://${cluster.node('n1').underlayIp}:18080/index.html`;
      let body = '';
      await waitFor(
        async () => {
          const r = await group.exec('n2', ['timeout', '3', 'busybox', 'wget', '-q', '-O-', url], {
            allowFail: true,
          });
          body = r.stdout;
          return r.code === 0;
        },
        10_000,
        `no answer from ${url}`,
        300,
      );
      expect(body).toContain('hello-from-weft-pod');
      // weft's CHECK with the chain's final result as prevResult. (portmap 1.1.1's own CHECK fails on
      // nodes without IPv6: it looks for an IPv6 DNAT chain it never created.)
      const weftOnly = { ...runtime.conflist, plugins: runtime.conflist.plugins.slice(0, 1) };
      await new CniRuntime(weftOnly, { weft: weftExecutable() }, runtime.netns).check(attachment, result);
    } finally {
      await group.stop(httpd);
    }
    await runtime.del(attachment, result);
    const nat = (await group.exec('n1', ['iptables-save', '-t', 'nat'])).stdout;
    expect(nat).not.toMatch(/CNI-DN-\S+ .*18080/);
  });

  it('50 concurrent ADDs on one node get 50 distinct addresses', async () => {
    const pods = await Promise.all(Array.from({ length: 50 }, () => newPod()));
    const runtime = runtimeOn('n1');
    const results = await Promise.all(pods.map((p) => runtime.add(p)));
    const addresses = new Set(results.map(podIp));
    expect(addresses.size).toBe(50);
    expect(await hostVeths('n1')).toBe(50);
    await Promise.all(pods.map((p, i) => runtime.del(p, results[i])));
    expect(await hostVeths('n1')).toBe(0);
    for (const p of pods) await group.exec(p.short, ['true']); // namespaces still exist, untouched
  }, 180_000);

  it('a DEL while the agent is down is queued and replayed when it starts', async () => {
    const pod = await newPod();
    const runtime = runtimeOn('n1');
    const result = await runtime.add(pod);
    const before = await allocations('n1');
    await cluster.stopAgent('n1');
    await runtime.del(pod, result); // must succeed: the runtime would otherwise retry forever
    const queued = readdirSync(delQueueOf('n1'));
    expect(queued.filter((f) => f.endsWith('.del.json'))).toHaveLength(1);
    expect(await hostVeths('n1')).toBe(1); // nothing could remove it yet

    cluster.startAgent('n1');
    await cluster.waitUntilReady(NODES);
    // Empty: no replay failed (kept as *.failed) and no temp file was left.
    expect(readdirSync(delQueueOf('n1'))).toEqual([]);
    expect(await allocations('n1')).toBe(before - 1);
    expect(await hostVeths('n1')).toBe(0);
  }, 90_000);

  it('a DEL queued while the agent runs (no socket at that moment) is replayed before the next request', async () => {
    const pod = await newPod();
    const result = await runtimeOn('n1').add(pod);
    const before = await allocations('n1');
    const noSocket = new CniRuntime(
      weftConflist('weftnet', {
        socket: join(cluster.node('n1').stateDir, 'gone.sock'),
        delQueueDir: delQueueOf('n1'),
      }),
      { weft: weftExecutable() },
      group.ns('n1'),
    );
    await noSocket.del(pod, result);
    expect(readdirSync(delQueueOf('n1')).filter((f) => f.endsWith('.del.json'))).toHaveLength(1);
    expect(await allocations('n1')).toBe(before);

    const next = await newPod();
    const nextResult = await runtimeOn('n1').add(next);
    // Empty: no replay failed (kept as *.failed) and no temp file was left.
    expect(readdirSync(delQueueOf('n1'))).toEqual([]);
    expect(await allocations('n1')).toBe(before);
    expect(await hostVeths('n1')).toBe(1);
    await runtimeOn('n1').del(next, nextResult);
  }, 60_000);

  it('after a restart the agent keeps existing pods and never hands their addresses out again', async () => {
    const old = await newPod();
    const remote = await newPod();
    const runtime = runtimeOn('n1');
    const oldResult = await runtime.add(old);
    const remoteResult = await runtimeOn('n2').add(remote);
    const masqBefore = (await group.exec('n1', ['iptables', '-t', 'nat', '-S'])).stdout;
    await cluster.stopAgent('n1', 'SIGKILL');
    cluster.startAgent('n1');
    await cluster.waitUntilReady(NODES);

    await runtime.check(old, oldResult);
    const fresh = await newPod();
    const freshResult = await runtime.add(fresh);
    expect(podIp(freshResult)).not.toBe(podIp(oldResult));
    expect(await ping(old.short, podIp(remoteResult))).toBe(true);
    expect(await ping(fresh.short, podIp(oldResult))).toBe(true);
    // Plumbing is idempotent: the restart added no second copy of the masquerade rules.
    expect((await group.exec('n1', ['iptables', '-t', 'nat', '-S'])).stdout).toBe(masqBefore);
    for (const [p, r] of [
      [old, oldResult],
      [fresh, freshResult],
    ] as const)
      await runtime.del(p, r);
    await runtimeOn('n2').del(remote, remoteResult);
  }, 90_000);

  it('masquerades pod traffic that leaves the cluster range', async () => {
    // A host on the underlay that runs no agent and has no route to the pods.
    const outside = await cluster.addNode();
    const pod = await newPod();
    const result = await runtimeOn('n1').add(pod);
    expect(await ping(pod.short, outside.underlayIp)).toBe(true);
    const masq = (await group.exec('n1', ['iptables', '-t', 'nat', '-S', 'WEFT-POSTROUTING'])).stdout;
    expect(masq).toContain('MASQUERADE');
    await runtimeOn('n1').del(pod, result);
  });

  it('GC releases attachments that are not in the valid list', async () => {
    const keep = await newPod();
    const drop = await newPod();
    const runtime = runtimeOn('n1');
    const keepResult = await runtime.add(keep);
    await runtime.add(drop);
    const before = await allocations('n1');
    const gc = await callPlugin({
      plugin: weftExecutable(),
      env: { CNI_COMMAND: 'GC', CNI_PATH: '/usr/lib/cni' },
      stdin: JSON.stringify({
        cniVersion: '1.1.0',
        name: 'weftnet',
        type: 'weft',
        socket: cluster.node('n1').socket,
        'cni.dev/valid-attachments': [{ containerID: keep.containerId, ifname: 'eth0' }],
      }),
    });
    expect(gc.code).toBe(0);
    expect(await allocations('n1')).toBe(before - 1);
    expect(await hostVeths('n1')).toBe(1);
    await runtime.check(keep, keepResult);
    await runtime.del(keep, keepResult);
  });

  it('codes from the agent: 3 for CHECK of an unknown container; STATUS 0 when ready, 50 and ADD 11 while not', async () => {
    const pod = await newPod();
    const unknown = await runtimeOn('n1')
      .check(pod, {})
      .catch((e: CniFailure) => e);
    expect((unknown as CniFailure).outcome.json).toMatchObject({ code: 3 });

    const statusOf = async (node: string) =>
      callPlugin({
        plugin: weftExecutable(),
        env: { CNI_COMMAND: 'STATUS' },
        stdin: JSON.stringify({
          cniVersion: '1.1.0',
          name: 'weftnet',
          type: 'weft',
          socket: cluster.node(node).socket,
        }),
      });
    // Ready once the bridge carries the gateway, which follows IPAM readiness closely.
    await waitFor(async () => (await statusOf('n1')).code === 0, 10_000, 'STATUS never succeeded on n1');
    expect((await statusOf('n1')).stdout).toBe('');

    // An agent alone that waits for a quorum of 3 cannot allocate.
    const lonely = await cluster.addNode();
    cluster.startAgent(lonely.name, ['--ipam-init', 'consensus=5'], []);
    await waitFor(
      () =>
        cluster.status(lonely.name).then(
          () => true,
          () => false,
        ),
      15_000,
      'lonely agent did not start',
    );
    const status = await statusOf(lonely.name);
    expect(status.code).toBe(1);
    expect(status.json).toMatchObject({ code: 50 });
    expect(String(status.json?.msg)).toContain('awaiting consensus');
    const add = await runtimeOn(lonely.name)
      .add(pod)
      .catch((e: CniFailure) => e);
    expect((add as CniFailure).outcome.json).toMatchObject({ code: 11 });
    await cluster.stopAgent(lonely.name);
  });

  it('leaves no queue behind: the queued DELs above were replayed, none failed or half-written', () => {
    expect(readdirSync(delQueueOf('n1'))).toEqual([]);
    expect(existsSync(delQueueOf('n2'))).toBe(false);
  });
});
