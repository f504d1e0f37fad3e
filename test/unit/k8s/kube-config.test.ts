import { afterEach, describe, expect, it } from 'vitest';
import { buildCommonSettings } from '../../../src/config/agent-config.js';
import { buildClusterConfig } from '../../../src/config/cluster-config.js';
import { ConfigError } from '../../../src/config/static-peers.js';

const common = buildCommonSettings({});
const base = { underlayAddress: '192.168.1.10' };

afterEach(() => {
  delete process.env.NODE_NAME;
});

describe('agent run --kube-peers configuration', () => {
  it('takes the node name from --name, else NODE_NAME (the downward API), else the host name', () => {
    process.env.NODE_NAME = 'kind-worker2';
    expect(buildClusterConfig(base, common).nodeName).toBe('kind-worker2');
    expect(buildClusterConfig({ ...base, name: 'n1' }, common).nodeName).toBe('n1');
    process.env.NODE_NAME = 'Not_A_Node';
    expect(() => buildClusterConfig(base, common)).toThrow(ConfigError);
  });

  it('seeds from the peer registry unless --ipam-init is given', () => {
    const kube = buildClusterConfig({ ...base, kubePeers: true }, common).kube;
    expect(kube).toEqual({ kubeconfig: undefined, reclaimLeaseMs: 30_000, explicitSeeding: false });
    const explicit = buildClusterConfig({ ...base, kubePeers: true, ipamInit: 'consensus' }, common).kube;
    expect(explicit?.explicitSeeding).toBe(true);
    expect(buildClusterConfig(base, common).kube).toBeUndefined();
  });

  it('leaves plain --ipam-init consensus to the Node count with --kube-peers, not the --peers count', () => {
    const withKube = buildClusterConfig({ ...base, kubePeers: true, ipamInit: 'consensus' }, common);
    expect(withKube.seeding).toEqual({ kind: 'consensus' });
    const fixed = buildClusterConfig({ ...base, kubePeers: true, ipamInit: 'consensus=5' }, common);
    expect(fixed.seeding).toEqual({ kind: 'consensus', expectedPeers: 5 });
    const withoutKube = buildClusterConfig({ ...base, peers: '192.168.1.11,192.168.1.12' }, common);
    expect(withoutKube.seeding).toEqual({ kind: 'consensus', expectedPeers: 3 });
  });

  it('rejects a kubeconfig without --kube-peers and a lease out of range', () => {
    expect(() => buildClusterConfig({ ...base, kubeconfig: '/k' }, common)).toThrow(
      /--kubeconfig needs --kube-peers/,
    );
    expect(() => buildClusterConfig({ ...base, kubePeers: true, kubeReclaimLeaseMs: '10' }, common)).toThrow(
      /--kube-reclaim-lease-ms/,
    );
  });
});
