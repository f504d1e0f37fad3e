import { describe, expect, it } from 'vitest';
import type { NativePodLink, WeftDpAddon } from '../../../src/native/addon.js';
import { NetlinkPodLinks } from '../../../src/plumbing/pod-links.js';

const spec: NativePodLink = {
  bridge: 'weave',
  hostIf: 'vwf0123456789ab',
  hostMac: '0e:01:02:03:04:05',
  netns: '/run/netns/pod',
  ifname: 'eth0',
  podMac: '0a:58:0a:20:01:05',
  address: '10.32.1.5',
  gateway: '10.32.1.1',
  mtu: 1400,
};

function netlinkError(step: string, code: string): Error {
  return Object.assign(new Error(`${step}: ${code}`), { step, code, errno: -1 });
}

/** An addon whose podAttach fails with the given errors in turn, recording every call. */
function scriptedAddon(attachFailures: Array<Error | undefined>) {
  const calls: string[] = [];
  const addon: Pick<WeftDpAddon, 'podAttach' | 'podDetach'> = {
    podAttach: async (s) => {
      calls.push(`attach ${s.hostIf}`);
      const failure = attachFailures.shift();
      if (failure) throw failure;
    },
    podDetach: async (hostIf, route) => {
      calls.push(route ? `detach ${hostIf} ${route.address} ${route.bridge}` : `detach ${hostIf}`);
      return true;
    },
  };
  return { links: new NetlinkPodLinks(() => addon), calls };
}

describe('NetlinkPodLinks', () => {
  it('attaches with one call when nothing is in the way', async () => {
    const { links, calls } = scriptedAddon([]);
    await links.attach(spec);
    expect(calls).toEqual(['attach vwf0123456789ab']);
  });

  it('replaces a left-over veth of a half-done ADD (create-veth EEXIST): remove it, attach again', async () => {
    const { links, calls } = scriptedAddon([netlinkError('create-veth', 'EEXIST')]);
    await links.attach(spec);
    expect(calls).toEqual(['attach vwf0123456789ab', 'detach vwf0123456789ab', 'attach vwf0123456789ab']);
  });

  it('undoes veth and host route when a later step fails, and rethrows the step error', async () => {
    const failure = netlinkError('pod-address', 'EEXIST');
    const { links, calls } = scriptedAddon([failure]);
    await expect(links.attach(spec)).rejects.toBe(failure);
    expect(calls).toEqual(['attach vwf0123456789ab', 'detach vwf0123456789ab 10.32.1.5 weave']);
  });

  it('undoes and gives up when the second attempt fails too (the pod already has that interface)', async () => {
    const second = netlinkError('create-veth', 'EEXIST');
    const { links, calls } = scriptedAddon([netlinkError('create-veth', 'EEXIST'), second]);
    await expect(links.attach(spec)).rejects.toBe(second);
    expect(calls).toEqual([
      'attach vwf0123456789ab',
      'detach vwf0123456789ab',
      'attach vwf0123456789ab',
      'detach vwf0123456789ab 10.32.1.5 weave',
    ]);
  });
});
