import type { StatusReport } from '../../../src/api/status-report.js';

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const noDrops = {
  malformed: 0,
  wrong_vni: 0,
  unknown_sender: 0,
  spoofed_source: 0,
  no_route: 0,
  ttl_expired: 0,
  oversize: 0,
  send_failed: 0,
  tun_write_failed: 0,
};

/** A three-node cluster seen from n1: n2 healthy, n3 unreachable (its agent died), a failed dial. */
export function clusterReport(): StatusReport {
  return {
    schemaVersion: 1,
    version: '0.1.0',
    generatedAtMs: NOW,
    node: { name: 'n1', underlayAddress: '192.168.198.1', podCidrs: ['10.32.0.0/14', '10.44.0.0/16'] },
    clusterCidr: '10.32.0.0/12',
    readiness: { ready: true, dataplane: true, ipam: true, reasons: [] },
    controlPlane: {
      peerId: '12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz1111111111aaaa',
      encryption: true,
      gossipListen: '192.168.198.1:6783',
      peers: [
        {
          name: 'n3',
          peerId: '12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz3333333333cccc',
          underlayAddress: '192.168.198.3',
          dataPort: 4790,
          version: '0.1.0',
          state: 'unreachable',
          lastSeenMs: NOW - 95_000,
          rttMs: null,
          addressesInUse: null,
        },
        {
          name: 'n2',
          peerId: '12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz2222222222bbbb',
          underlayAddress: '192.168.198.2',
          dataPort: 4790,
          version: '0.1.0',
          state: 'reachable',
          lastSeenMs: NOW - 420,
          rttMs: 2,
          addressesInUse: 80,
        },
      ],
      connections: [
        {
          direction: 'outbound',
          address: '/ip4/192.168.198.3/tcp/6783',
          state: 'retrying',
          detail: 'connect ECONNREFUSED 192.168.198.3:6783; retry #4 in 7.5 s',
          peerName: 'n3',
          nextRetryAtMs: NOW + 7_500,
        },
        {
          direction: 'inbound',
          address: '/ip4/192.168.198.2/tcp/6783',
          state: 'established',
          detail: 'connected to n2 (they dialed us)',
          peerName: 'n2',
          nextRetryAtMs: null,
        },
      ],
      ipam: {
        state: 'ready',
        summary: 'ready',
        clusterRange: '10.32.0.0/12',
        totalAddresses: 1_048_576,
        seedId: 'seed-1',
        owners: [
          {
            peer: 'n1',
            addresses: 327_680,
            percent: 31.25,
            cidrs: ['10.32.0.0/14', '10.44.0.0/16'],
            reachable: true,
            reportedFree: 327_600,
          },
          {
            peer: 'n2',
            addresses: 327_680,
            percent: 31.25,
            cidrs: ['10.36.0.0/14', '10.45.0.0/16'],
            reachable: true,
            reportedFree: 327_600,
          },
          {
            peer: 'n3',
            addresses: 393_216,
            percent: 37.5,
            cidrs: ['10.40.0.0/14', '10.46.0.0/15'],
            reachable: false,
            reportedFree: 393_211,
          },
        ],
        allocations: 12,
        freeAddresses: 327_664,
        gateway: '10.32.0.1',
        conflicts: [],
      },
    },
    dataplane: {
      mode: 'userspace, batched (recvmmsg/sendmmsg)',
      running: true,
      tun: 'weft0',
      bridge: 'weave',
      mtu: 1464,
      vni: 1,
      listen: '192.168.198.1:4790',
      counters: {
        encapsulated: { packets: 123_456, bytes: 98_765_432 },
        decapsulated: { packets: 120_001, bytes: 87_654_321 },
        batches: { tunReads: 4_000, udpReceives: 3_500 },
        dropped: { ...noDrops, no_route: 3, spoofed_source: 1 },
        droppedTotal: 4,
      },
      peers: [
        {
          name: 'n2',
          underlayAddress: '192.168.198.2',
          port: 4790,
          cidrs: ['10.36.0.0/14', '10.45.0.0/16'],
          txPackets: 100_000,
          txBytes: 80_000_000,
          rxPackets: 99_000,
          rxBytes: 70_000_000,
        },
        {
          name: 'n3',
          underlayAddress: '192.168.198.3',
          port: 4790,
          cidrs: ['10.40.0.0/14', '10.46.0.0/15'],
          txPackets: 23_456,
          txBytes: 18_765_432,
          rxPackets: 21_001,
          rxBytes: 17_654_321,
        },
      ],
    },
    paths: [
      {
        address: '192.168.198.2',
        reachable: true,
        rttMs: 0.087,
        pmtu: 1500,
        probedAtMs: NOW - 3_000,
        error: null,
      },
      {
        address: '192.168.198.3',
        reachable: true,
        rttMs: 0.091,
        pmtu: 1400,
        probedAtMs: NOW - 3_000,
        error: null,
      },
    ],
  };
}

/** Static mode (`--peers-file`): no control plane, fixed ranges. */
export function staticReport(): StatusReport {
  const cluster = clusterReport();
  return {
    ...cluster,
    node: { name: 'n1', underlayAddress: '192.168.199.1', podCidrs: ['10.32.1.0/24'] },
    controlPlane: null,
    dataplane: {
      ...cluster.dataplane,
      listen: '192.168.199.1:4790',
      counters: { ...cluster.dataplane.counters, dropped: noDrops, droppedTotal: 0 },
      peers: [
        {
          name: 'n2',
          underlayAddress: '192.168.199.2',
          port: 4790,
          cidrs: ['10.32.2.0/24'],
          txPackets: 10,
          txBytes: 840,
          rxPackets: 9,
          rxBytes: 756,
        },
      ],
    },
    paths: [
      {
        address: '192.168.199.2',
        reachable: false,
        rttMs: null,
        pmtu: null,
        probedAtMs: NOW,
        error: 'no echo reply within 1000 ms',
      },
    ],
  };
}

/** n1 alone, waiting for a quorum, data plane up. */
export function awaitingConsensusReport(): StatusReport {
  const cluster = clusterReport();
  const cp = cluster.controlPlane as NonNullable<StatusReport['controlPlane']>;
  return {
    ...cluster,
    node: { ...cluster.node, podCidrs: [] },
    readiness: {
      ready: false,
      dataplane: true,
      ipam: false,
      reasons: ['IPAM awaiting consensus: quorum 2, known 1'],
    },
    controlPlane: {
      ...cp,
      peers: [],
      connections: [],
      ipam: {
        ...cp.ipam,
        state: 'awaiting-consensus',
        summary: 'awaiting consensus: quorum 2, known 1',
        seedId: null,
        owners: [],
        allocations: 0,
        freeAddresses: 0,
        gateway: null,
      },
    },
    dataplane: { ...cluster.dataplane, peers: [] },
    paths: [],
  };
}
