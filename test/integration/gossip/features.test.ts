import { afterEach, expect, it } from 'vitest';
import { deriveRoutes } from '../../../src/control/routes.js';
import { DataplaneFeature } from '../../../src/dataplane/features.js';
import { parseAddress } from '../../../src/ipam/address.js';
import { seedRing } from '../../../src/ipam/ring.js';
import { freePorts, fullyConverged, TestCluster, waitFor } from './cluster.js';

let cluster: TestCluster;
afterEach(async () => {
  await cluster?.stopAll();
});

it('carries each node’s data-plane features in its record to the others’ routes (none from a node without)', async () => {
  cluster = new TestCluster();
  const ports = await freePorts(2);
  const [withFeature, without] = [
    await cluster.start({
      nodeName: 'with',
      listenPort: ports[0],
      stateDir: await cluster.stateDir(),
      peers: [],
      dataplaneFeatures: [DataplaneFeature.PartialChecksums],
    }),
    await cluster.start({
      nodeName: 'without',
      listenPort: ports[1],
      stateDir: await cluster.stateDir(),
      peers: [`127.0.0.1:${ports[0]}`],
    }),
  ];
  await waitFor('both nodes to know each other', () => fullyConverged(cluster.nodes), 5_000);
  expect(without?.peers().map((p) => [p.name, p.features])).toEqual([['with', ['partial-csum']]]);
  expect(withFeature?.peers().map((p) => [p.name, p.features])).toEqual([['without', []]]);

  // The route each node derives says whether the other takes partial checksums.
  const range = { start: parseAddress('10.32.0.0'), end: parseAddress('10.48.0.0') };
  const ring = seedRing(range, ['with', 'without'], 'seed', 16);
  const fromWithout = deriveRoutes('without', ring, without?.peers() ?? []);
  const fromWith = deriveRoutes('with', ring, withFeature?.peers() ?? []);
  expect(fromWithout.spec.peers.map((p) => p.partialChecksums)).toEqual([true]);
  expect(fromWith.spec.peers.map((p) => p.partialChecksums)).toEqual([false]);
});
