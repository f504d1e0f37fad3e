/**
 * Runs attachPod inside the network namespace this process was started in, the way the agent's CNI
 * service does: `node … pod-network-driver.ts <PodLinkSpec json>`. A failure exits non-zero.
 */
import { attachPod, type PodLinkSpec } from '../../../src/plumbing/pod-network.js';

await attachPod(JSON.parse(process.argv[2] ?? '') as PodLinkSpec);
