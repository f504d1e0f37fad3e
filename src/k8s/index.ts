export { KubeIntegration, type KubeOptions } from './kube-integration.js';
export { gossipAddresses, KubePeerSource } from './kube-peer-source.js';
export { type NodeInfo, nodeInfo } from './node-addresses.js';
export { NodeWatcher } from './node-watcher.js';
export * from './peer-registry.js';
export { Reclaimer, type ReclaimTarget } from './reclaimer.js';
export { DEFAULT_REGISTRY_NAME, RegistryStore } from './registry-store.js';
