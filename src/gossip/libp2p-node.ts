import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { type GossipSub, gossipsub } from '@libp2p/gossipsub';
import { type Identify, identify } from '@libp2p/identify';
import type { PrivateKey } from '@libp2p/interface';
import { type Ping, ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { type TCPSocketOptions, tcp } from '@libp2p/tcp';
import { createLibp2p, type Libp2p } from 'libp2p';
import type { GossipConfig } from './config.js';
import { installEd25519KeyObjectCache } from './ed25519-key-objects.js';
import { gossipsubOptions } from './gossipsub-options.js';
import { tcpMultiaddr } from './peer-source.js';
import { installLazyYamuxWindowUpdates } from './yamux-window-updates.js';

export type GossipServices = { identify: Identify; ping: Ping; pubsub: GossipSub };
export type GossipLibp2p = Libp2p<GossipServices>;

/** The libp2p stack of one agent: TCP, optional pnet, noise, yamux, identify, ping and gossipsub. Started. */
export async function createGossipLibp2p(
  config: GossipConfig,
  privateKey: PrivateKey,
): Promise<GossipLibp2p> {
  // Outgoing connections leave from the listen address, so peers see the address they know us by.
  const dialOpts: TCPSocketOptions & { localAddress?: string } =
    config.listenAddress === '0.0.0.0' ? {} : { localAddress: config.listenAddress };
  const psk = config.clusterSecret;
  installLazyYamuxWindowUpdates();
  installEd25519KeyObjectCache(privateKey);
  return createLibp2p({
    privateKey,
    addresses: { listen: [tcpMultiaddr(config.listenAddress, config.listenPort)] },
    transports: [tcp({ dialOpts })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    ...(psk === undefined ? {} : { connectionProtector: preSharedKey({ psk }) }),
    connectionManager: { allow: config.connectionAllowList },
    // Pings every connection, records conn.rtt, and aborts a connection that stops answering.
    connectionMonitor: { pingInterval: config.pingIntervalMs },
    services: {
      identify: identify(),
      // Above the default of 1: under load the connection monitor's pings overlap, and a refused ping
      // stream counts as a ping failure, which aborts the whole connection.
      ping: ping({ maxInboundStreams: 4, maxOutboundStreams: 2 }),
      pubsub: gossipsub(gossipsubOptions(config.mesh)),
    },
  });
}
