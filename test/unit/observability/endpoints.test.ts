import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, test } from 'vitest';
import type { StatusReport } from '../../../src/api/status-report.js';
import { parseListenAddress } from '../../../src/config/listen-address.js';
import { ConfigError } from '../../../src/config/static-peers.js';
import { healthRoutes } from '../../../src/observability/health.js';
import { HttpEndpoint } from '../../../src/observability/http-endpoint.js';
import { closeNow, startListening } from '../../../src/util/http-server.js';
import { createLogger } from '../../../src/util/log.js';
import { awaitingConsensusReport, clusterReport } from '../api/fixtures.js';

describe('health endpoints over HTTP', () => {
  let endpoint: HttpEndpoint | undefined;
  afterEach(async () => endpoint?.stop());

  test('/healthz 200; /readyz 503 with the reason until ready, then 200; unknown paths 404', async () => {
    let report: StatusReport = awaitingConsensusReport();
    endpoint = new HttpEndpoint(
      { host: '127.0.0.1', port: 0 },
      healthRoutes(() => report),
      createLogger('fatal'),
    );
    await endpoint.start();
    const get = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${endpoint?.port}${path}`);
      return { status: response.status, body: await response.text() };
    };
    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await get('/readyz')).toEqual({
      status: 503,
      body: 'not ready: IPAM awaiting consensus: quorum 2, known 1\n',
    });
    report = clusterReport();
    expect(await get('/readyz')).toEqual({ status: 200, body: 'ready\n' });
    expect((await get('/nope')).status).toBe(404);
  });

  test('/healthz fails (500) when the agent cannot build its status', async () => {
    endpoint = new HttpEndpoint(
      { host: '127.0.0.1', port: 0 },
      healthRoutes(() => {
        throw new Error('IPAM state unreadable');
      }),
      createLogger('fatal'),
    );
    await endpoint.start();
    const response = await fetch(`http://127.0.0.1:${endpoint.port}/healthz`);
    expect(response.status).toBe(500);
  });
});

describe('--health-listen / --metrics-listen values', () => {
  test('IP:PORT, :PORT (every interface) and off', () => {
    expect(parseListenAddress('--health-listen', '127.0.0.1:6784')).toEqual({
      host: '127.0.0.1',
      port: 6784,
    });
    expect(parseListenAddress('--metrics-listen', ':9100')).toEqual({ host: '0.0.0.0', port: 9100 });
    expect(parseListenAddress('--metrics-listen', 'off')).toBeNull();
  });

  test('anything else is a configuration error naming the flag', () => {
    for (const bad of ['6784', 'localhost:6784', '127.0.0.1:0', '127.0.0.1:70000', '1.2.3:80', ''])
      expect(() => parseListenAddress('--health-listen', bad)).toThrow(ConfigError);
    expect(() => parseListenAddress('--health-listen', 'x')).toThrow(/--health-listen x must be IPV4:PORT/);
  });
});

describe('startListening', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await closeNow(server);
  });
  const logInto = (lines: string[]) =>
    pino({ level: 'error' }, { write: (line: string) => lines.push(line) });

  test('a listen failure rejects', async () => {
    const first = createServer();
    servers.push(first);
    await startListening(first, { host: '127.0.0.1', port: 0 }, logInto([]), 'first');
    const port = (first.address() as AddressInfo).port;
    const second = createServer();
    await expect(startListening(second, { host: '127.0.0.1', port }, logInto([]), 'second')).rejects.toThrow(
      /EADDRINUSE/,
    );
  });

  test('a server error after listening is logged, not swallowed', async () => {
    const lines: string[] = [];
    const server = createServer();
    servers.push(server);
    await startListening(server, { host: '127.0.0.1', port: 0 }, logInto(lines), 'health');
    expect(server.listenerCount('error')).toBe(1);
    server.emit('error', new Error('accept failed: EMFILE'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      msg: 'health server error',
      err: { message: 'accept failed: EMFILE' },
    });
  });
});
