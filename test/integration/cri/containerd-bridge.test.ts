/**
 * The CRI harness against Debian's reference plugins (bridge + host-local): containerd started
 * by the test in a node namespace, driven over runtime.v1 as kubelet does. It is the reference
 * the weft runs are compared with, and proves the harness itself.
 */
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Containerd } from '../../helpers/containerd.js';
import { CniCallRecorder } from '../../helpers/cri/cni-recorder.js';
import { freshCriGroup, startBridgeNode } from '../../helpers/cri/networks.js';
import type { NetnsGroup } from '../../helpers/netns.js';
import { describeAsRoot } from '../../helpers/privileges.js';

const SUBNET = '10.250.7.0/24';

describeAsRoot('containerd CRI with bridge + host-local', () => {
  let group: NetnsGroup;
  let containerd: Containerd;
  let ipamDir: string;
  let recorder: CniCallRecorder;

  beforeAll(async () => {
    group = await freshCriGroup('crib');
    ({ containerd, ipamDir } = await startBridgeNode(group, 'node', SUBNET));
    recorder = CniCallRecorder.install(containerd, 'bridge');
  });

  afterAll(async () => {
    await containerd?.stop();
    await group?.destroy();
  });

  const allocated = () =>
    existsSync(ipamDir) ? readdirSync(ipamDir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];

  it('answers Version and reports the runtime and the network ready', async () => {
    const version = await containerd.cri.version();
    expect(version.runtimeName).toBe('containerd');
    expect(version.runtimeApiVersion).toBe('v1');
    const conditions = await containerd.cri.conditions();
    expect(conditions.find((c) => c.type === 'RuntimeReady')?.status).toBe(true);
    expect(conditions.find((c) => c.type === 'NetworkReady')?.status).toBe(true);
  });

  it('runs a sandbox on the bridge network; stop + remove release it with two DELs, the second without netns', async () => {
    const cri = containerd.cri;
    const id = await cri.runPodSandbox(containerd.sandboxConfig('ref-pod'));
    const status = await cri.podSandboxStatus(id);
    expect(status.state).toBe('SANDBOX_READY');
    const ip = status.network?.ip ?? '';
    expect(ip).toMatch(/^10\.250\.7\.\d+$/);
    expect(allocated()).toEqual([ip]);

    const info = await cri.sandboxInfo(id);
    expect(info.netnsPath).toMatch(/^\/var\/run\/netns\/cni-/);
    const inPod = await containerd.execInSandbox(info.netnsPath, ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
    expect(inPod.stdout).toContain(`${ip}/24`);
    const ping = await group.exec('node', ['ping', '-c', '1', '-W', '2', ip], { allowFail: true });
    expect(ping.code).toBe(0);

    expect(recorder.trace(id)).toEqual([['ADD', info.netnsPath, 0]]);

    await cri.stopPodSandbox(id);
    expect(allocated()).toEqual([]);
    await cri.removePodSandbox(id);
    expect(await cri.listPodSandbox()).toEqual([]);
    expect(existsSync(info.netnsPath)).toBe(false);
    expect(recorder.trace(id)).toEqual([
      ['ADD', info.netnsPath, 0],
      ['DEL', info.netnsPath, 0],
      ['DEL', '', 0],
    ]);
  });
});
