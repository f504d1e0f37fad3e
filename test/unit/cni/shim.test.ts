/**
 * The plugin executable (cni-shim/weft-cni.c, built by `npm run build:shim`) run as a runtime runs
 * it (environment + stdin), against a fake agent on a unix socket, against the agent's real CNI
 * endpoints (src/cni/endpoints.ts with a node that has no bridge, so every request stops at
 * validation or readiness), and with no agent at all. Codes that need a node's network (3 unknown
 * container, 100 plumbing) are in test/integration/cni/cni.test.ts.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer } from '../../../src/api/admin-server.js';
import { type ForwardedRequest, replayDelQueue } from '../../../src/cni/del-queue.js';
import { cniEndpoints } from '../../../src/cni/endpoints.js';
import { SUPPORTED_VERSIONS } from '../../../src/cni/request.js';
import { type CniIpam, CniService } from '../../../src/cni/service.js';
import { createLogger } from '../../../src/util/log.js';
import { SHIM_EXECUTABLE } from '../../helpers/cni.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-shim-'));
const nobodyListens = join(dir, 'nobody-listens.sock');
beforeAll(() => {
  if (!existsSync(SHIM_EXECUTABLE))
    throw new Error(`${SHIM_EXECUTABLE} is missing: run "npm run build" first`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  /** null when the plugin died of a signal. */
  status: number | null;
  stdout: string;
  json: { cniVersion?: string; code?: number; msg?: string; details?: string; supportedVersions?: string[] };
}

/** Runs the plugin without blocking this process, which may be serving its agent. */
function shim(env: Record<string, string>, stdin: string | Buffer | number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(SHIM_EXECUTABLE, [], {
      env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', ...env },
      stdio: [typeof stdin === 'number' ? stdin : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.on('error', reject);
    child.on('close', (status) => {
      const stdout = Buffer.concat(out).toString('utf8');
      resolve({ status, stdout, json: stdout === '' ? {} : JSON.parse(stdout) });
    });
    if (typeof stdin !== 'number') {
      child.stdin?.on('error', () => undefined); // the plugin may fail before it reads stdin
      child.stdin?.end(stdin);
    }
  });
}

const attachmentEnv = (command: string) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: 'abc123',
  CNI_IFNAME: 'eth0',
  CNI_NETNS: '/var/run/netns/x',
  CNI_PATH: '/usr/lib/cni',
});
const config = (socket: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: '1.0.0',
    name: 'weftnet',
    type: 'weft',
    socket,
    delQueueDir: join(dir, 'queue'),
    ...extra,
  });

interface Seen {
  method: string;
  url: string;
  body: string;
}
type Answer = { status: number; body: string; chunks?: string[] };

/** A node:http server on a unix socket that records requests and answers as told. */
async function fakeAgent(answer: (seen: Seen) => Answer): Promise<{ socket: string; seen: Seen[] }> {
  const socket = join(dir, `agent-${randomBytes(4).toString('hex')}.sock`);
  const seen: Seen[] = [];
  const server = createHttpServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const entry: Seen = {
        method: request.method ?? '',
        url: request.url ?? '',
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(entry);
      const { status, body, chunks: parts } = answer(entry);
      response.writeHead(status, { 'content-type': 'application/json' });
      for (const part of parts ?? []) response.write(part); // no Content-Length: chunked
      response.end(body);
    });
  });
  await listen(server, socket);
  return { socket, seen };
}

/** A server that answers every connection with raw bytes (or nothing), then closes. */
async function rawAgent(reply: Buffer | string | undefined): Promise<string> {
  const socket = join(dir, `raw-${randomBytes(4).toString('hex')}.sock`);
  const server = createNetServer((connection) => {
    connection.once('data', () => {
      if (reply === undefined) connection.destroy();
      else connection.end(reply);
    });
    connection.on('error', () => undefined);
  });
  await listen(server, socket);
  return socket;
}

const servers: Array<HttpServer | NetServer> = [];
function listen(server: HttpServer | NetServer, socket: string): Promise<void> {
  servers.push(server);
  return new Promise((resolve) => server.listen(socket, resolve));
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

const OK = (body = '{}'): Answer => ({ status: 200, body });

describe('weft CNI plugin: what it decides alone', () => {
  it('answers VERSION from stdin alone, with dummy environment values and no agent', async () => {
    const out = await shim(
      { CNI_COMMAND: 'VERSION', CNI_PATH: 'dummy', CNI_NETNS: 'dummy' },
      '{"cniVersion":"0.4.0"}',
    );
    expect(out.status).toBe(0);
    expect(out.json).toEqual({ cniVersion: '0.4.0', supportedVersions: [...SUPPORTED_VERSIONS] });
    const garbled = await shim({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":');
    expect(garbled.json).toEqual({ cniVersion: '1.1.0', supportedVersions: [...SUPPORTED_VERSIONS] });
  });

  it.each([
    ['4 no CNI_COMMAND', {}, config(nobodyListens), 4, 'CNI_COMMAND is not set'],
    ['4 unknown command', { CNI_COMMAND: 'FROB' }, config(nobodyListens), 4, '"FROB" is not one of'],
    [
      '4 DEL without container ID',
      { ...attachmentEnv('DEL'), CNI_CONTAINERID: '' },
      config(nobodyListens),
      4,
      'CNI_CONTAINERID is not set',
    ],
    [
      '4 DEL with a path as container ID',
      { ...attachmentEnv('DEL'), CNI_CONTAINERID: '../x' },
      config(nobodyListens),
      4,
      'CNI_CONTAINERID "../x"',
    ],
    [
      '4 DEL without ifname',
      { ...attachmentEnv('DEL'), CNI_IFNAME: '' },
      config(nobodyListens),
      4,
      'CNI_IFNAME is not set',
    ],
    [
      '4 DEL ifname too long',
      { ...attachmentEnv('DEL'), CNI_IFNAME: 'x'.repeat(16) },
      config(nobodyListens),
      4,
      'CNI_IFNAME',
    ],
    [
      '6 not JSON, with the offset',
      attachmentEnv('ADD'),
      '{"cniVersion": "1.0.0",',
      6,
      'not valid JSON: unexpected end of input at byte 23',
    ],
    ['6 a bad token', attachmentEnv('ADD'), '{"cniVersion": 1.0.0}', 6, "expected ',' or '}' at byte 18"],
    ['6 trailing text', attachmentEnv('ADD'), '{} {}', 6, 'after the JSON value at byte 3'],
    [
      '6 invalid UTF-8 in a string',
      attachmentEnv('ADD'),
      Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]),
      6,
      'invalid UTF-8 in a string at byte 2',
    ],
    ['6 a control character in a string', attachmentEnv('ADD'), '{"a\nb":1}', 6, 'control character'],
    ['6 nested 100,000 deep', attachmentEnv('ADD'), `{"a":${'['.repeat(100_000)}`, 6, 'nested too deeply'],
    ['6 not an object', attachmentEnv('ADD'), '["weft"]', 6, 'not a JSON object'],
    ['6 empty stdin', attachmentEnv('DEL'), ' \n', 6, 'no network configuration'],
    ['7 relative socket', attachmentEnv('ADD'), config('weft.sock'), 7, '"socket" must be an absolute path'],
    ['7 empty socket', attachmentEnv('ADD'), config(''), 7, '"socket" must be a non-empty string'],
    ['7 escaped empty DEL queue', attachmentEnv('DEL'), '{"delQueueDir":"\\u0000"}', 7, 'absolute path'],
    [
      '7 socket not a string',
      attachmentEnv('ADD'),
      config(nobodyListens, { socket: 7 }),
      7,
      '"socket" must be a non-empty string',
    ],
    [
      '7 relative DEL queue',
      attachmentEnv('DEL'),
      config(nobodyListens, { delQueueDir: 'q' }),
      7,
      '"delQueueDir"',
    ],
    [
      '7 socket path too long',
      attachmentEnv('ADD'),
      config(`/${'s'.repeat(120)}`),
      7,
      'longer than 107 bytes',
    ],
    [
      '11 agent not running (ADD)',
      attachmentEnv('ADD'),
      config(nobodyListens),
      11,
      `no admin socket at ${nobodyListens}`,
    ],
    ['11 agent not running (CHECK)', attachmentEnv('CHECK'), config(nobodyListens), 11, 'not reachable'],
    ['11 agent not running (GC)', { CNI_COMMAND: 'GC' }, config(nobodyListens), 11, 'not reachable'],
    ['51 agent not running (STATUS)', { CNI_COMMAND: 'STATUS' }, config(nobodyListens), 51, 'not reachable'],
  ])('error %s', async (_name, env, stdin, code, text) => {
    const out = await shim(env, stdin);
    expect(out.status).toBe(1);
    expect(out.json.code).toBe(code);
    expect(out.json.msg).toContain(text);
  });

  it('agrees with JSON.parse on what is JSON (valid documents and mutated ones), and never crashes', async () => {
    const mutated = fc
      .tuple(
        fc.json(),
        fc.nat(),
        fc.constantFrom('', '"', '\\', ',', ':', '{', '}', '[', ']', '-', 'e', '0', ' ', '\u00e9'),
      )
      .map(([json, at, insert]) => {
        const i = at % (json.length + 1);
        return at % 3 === 0 ? json : `${json.slice(0, i)}${insert}${json.slice(i + (at % 2))}`;
      });
    await fc.assert(
      fc.asyncProperty(mutated, async (value) => {
        const stdin = `{"socket":${JSON.stringify(nobodyListens)},"value":${value}}`;
        let valid = true;
        try {
          JSON.parse(stdin);
        } catch {
          valid = false;
        }
        const out = await shim(attachmentEnv('ADD'), stdin);
        expect(out.status).toBe(1);
        expect(out.json.code).toBe(valid ? 11 : 6);
      }),
      { numRuns: 300 },
    );
  });

  it('error 5 when stdin cannot be read', async () => {
    const fd = openSync(dir, 'r'); // a directory: read() fails with EISDIR
    try {
      const out = await shim(attachmentEnv('ADD'), fd);
      expect(out.status).toBe(1);
      expect(out.json).toMatchObject({ code: 5, msg: expect.stringContaining('stdin') });
    } finally {
      closeSync(fd);
    }
  });

  it('answers errors in the configuration version, or the newest when it has none it speaks', async () => {
    const v040 = await shim(attachmentEnv('ADD'), config('weft.sock', { cniVersion: '0.4.0' }));
    expect(v040.json).toMatchObject({ cniVersion: '0.4.0', code: 7 });
    const unknown = await shim(attachmentEnv('ADD'), config('weft.sock', { cniVersion: '9.9.9' }));
    expect(unknown.json).toMatchObject({ cniVersion: '1.1.0', code: 7 });
  });

  it('queues a DEL on disk when the agent is down, and the agent replays exactly the request', async () => {
    const queueDir = join(dir, 'queue-a', 'nested');
    const stdin = config(nobodyListens, { delQueueDir: queueDir, prevResult: { cniVersion: '1.0.0' } });
    const env = { ...attachmentEnv('DEL'), CNI_NETNS: '' };
    const out = await shim(env, stdin);
    expect(out.status).toBe(0);
    expect(out.stdout).toBe('');
    expect(readdirSync(queueDir)).toEqual(['abc123:eth0.del.json']);
    expect(statSync(queueDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(queueDir, 'abc123:eth0.del.json')).mode & 0o777).toBe(0o600);
    const replayed: ForwardedRequest[] = [];
    const outcome = await replayDelQueue(queueDir, async (request) => void replayed.push(request));
    expect(outcome.failed).toEqual([]);
    expect(replayed).toEqual([{ env, config: JSON.parse(stdin) }]);
    expect(readdirSync(queueDir)).toEqual([]);
  });

  it('queues a DEL for a stale socket (an agent that died) too', async () => {
    const stale = join(dir, 'stale.sock');
    const queueDir = join(dir, 'queue-stale');
    // A process that exits while listening leaves its socket file behind: connecting is refused.
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.exit(0))`,
      ]);
      child.on('error', reject);
      child.on('exit', () => resolve());
    });
    expect(existsSync(stale)).toBe(true);
    const add = await shim(attachmentEnv('ADD'), config(stale));
    expect(add.json).toMatchObject({ code: 11, msg: expect.stringContaining('a stale socket') });
    const del = await shim(attachmentEnv('DEL'), config(stale, { delQueueDir: queueDir }));
    expect(del.status).toBe(0);
    expect(readdirSync(queueDir)).toEqual(['abc123:eth0.del.json']);
  });

  it('error 5 when the DEL cannot be queued', async () => {
    const notADir = join(dir, 'plain-file');
    closeSync(openSync(notADir, 'w'));
    const out = await shim(attachmentEnv('DEL'), config(nobodyListens, { delQueueDir: join(notADir, 'q') }));
    expect(out.status).toBe(1);
    expect(out.json).toMatchObject({ code: 5, msg: expect.stringContaining('cannot queue the DEL') });
  });
});

describe('weft CNI plugin: forwarding to the agent', () => {
  it('posts the CNI_* environment and stdin verbatim to /v1/cni/<command>, and prints ADD results as they are', async () => {
    const result =
      '{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}],"ips":[]}';
    const agent = await fakeAgent(() => OK(result));
    // Escapes that must reach the agent as written; the socket path only decodes to the agent's.
    const stdin = ` {"cniVersion" : "1.0.0", "name":"n\\u00e9t","type":"weft", "n": 1.50e0,
      "socket": "/nonexistent", "socket":${JSON.stringify(agent.socket).replaceAll('/', '\\/')}} `;
    const env = {
      ...attachmentEnv('ADD'),
      CNI_ARGS: 'K8S_POD_NAME="a\\b";X=\n\u00e9\u0001',
      NOT_CNI: 'secret',
      XCNI_THING: 'no',
    };
    const out = await shim(env, stdin);
    expect(out.status).toBe(0);
    expect(out.stdout).toBe(`${result}\n`);
    expect(agent.seen).toHaveLength(1);
    const [seen] = agent.seen as [Seen];
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/v1/cni/add');
    expect(seen.body.endsWith(`,"config":${stdin}}`)).toBe(true);
    const { NOT_CNI: _, XCNI_THING: __, ...cniEnv } = env;
    expect(JSON.parse(seen.body)).toEqual({ env: cniEnv, config: JSON.parse(stdin) });
  });

  it.each(['DEL', 'CHECK', 'GC', 'STATUS'])(
    '%s: posts to its path and prints nothing on success',
    async (command) => {
      const agent = await fakeAgent(() => OK('{"ignored":true}'));
      const out = await shim(attachmentEnv(command), config(agent.socket));
      expect(out.status).toBe(0);
      expect(out.stdout).toBe('');
      expect(agent.seen.map((s) => s.url)).toEqual([`/v1/cni/${command.toLowerCase()}`]);
    },
  );

  it('forwards a 16 MiB configuration whole (a large prevResult)', async () => {
    const agent = await fakeAgent(() => OK('{"cniVersion":"1.0.0"}'));
    const big = 'x'.repeat(16 * 1024 * 1024);
    const out = await shim(attachmentEnv('ADD'), config(agent.socket, { prevResult: { big } }));
    expect(out.json).toEqual({ cniVersion: '1.0.0' });
    expect(out.status).toBe(0);
    const forwarded = JSON.parse((agent.seen[0] as Seen).body) as ForwardedRequest;
    expect((forwarded.config.prevResult as { big: string }).big).toBe(big);
  });

  it('reads a chunked reply', async () => {
    const agent = await fakeAgent(() => ({
      status: 200,
      chunks: ['{"cniVersion":', '"1.0.0",'],
      body: '"ips":[]}',
    }));
    const out = await shim(attachmentEnv('ADD'), config(agent.socket));
    expect(out.status).toBe(0);
    expect(out.stdout).toBe('{"cniVersion":"1.0.0","ips":[]}\n');
  });

  it.each([
    [
      'the agent code, message and details, in the config version',
      { status: 404, body: '{"cniCode":3,"error":"no container abc123","details":"it was \\"gone\\""}' },
      { cniVersion: '0.4.0', code: 3, msg: 'no container abc123', details: 'it was "gone"' },
    ],
    [
      '503 without a code is 11',
      { status: 503, body: '{"error":"starting"}' },
      { code: 11, msg: 'starting' },
    ],
    ['500 without a code is 999', { status: 500, body: '{"error":"boom"}' }, { code: 999, msg: 'boom' }],
    ['no message: the HTTP status', { status: 400, body: '{"cniCode":7}' }, { code: 7, msg: 'HTTP 400' }],
    [
      'an error that is not JSON is 11',
      { status: 500, body: '<html>' },
      { code: 11, msg: expect.stringContaining('not JSON: <html>') },
    ],
    [
      'a success that is not JSON is 11',
      { status: 200, body: 'ok' },
      { code: 11, msg: expect.stringContaining('not JSON: ok') },
    ],
  ])('agent answers: %s', async (_name, answer, expected) => {
    const agent = await fakeAgent(() => answer);
    const out = await shim(attachmentEnv('ADD'), config(agent.socket, { cniVersion: '0.4.0' }));
    expect(out.status).toBe(1);
    expect(out.json).toEqual({ cniVersion: '0.4.0', ...expected });
  });

  it.each([
    ['not HTTP', 'garbage\r\n\r\n', 'not HTTP: "garbage\\r\\n\\r\\n"'],
    ['a bad status line', 'HTTP/1.1 2x0 OK\r\n\r\n{}', 'malformed HTTP status line'],
    ['cut short', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"cniVersion"', 'cut short'],
    ['headers cut short', 'HTTP/1.1 200 OK\r\nContent-Le', 'in the middle of its reply'],
    ['a bad Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n{}', 'malformed Content-Length'],
    ['a bad chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 'malformed chunked'],
    ['nothing at all', undefined, 'without a reply'],
    ['random bytes', randomBytes(64 * 1024), 'not HTTP'],
  ])('a garbled reply (%s) is a clear error 11, or 51 for STATUS', async (_name, reply, text) => {
    const socket = await rawAgent(reply);
    const add = await shim(attachmentEnv('ADD'), config(socket));
    expect(add.status).toBe(1);
    expect(add.json).toMatchObject({ code: 11, msg: expect.stringContaining(text) });
    const status = await shim({ CNI_COMMAND: 'STATUS' }, config(socket));
    expect(status.json).toMatchObject({ code: 51 });
  });
});

describe('weft CNI plugin: codes the agent decides (its real CNI endpoints)', () => {
  let admin: AdminServer;
  const socket = join(dir, 'admin.sock');
  const unused = () => {
    throw new Error('IPAM and links are not reached by requests that fail validation');
  };
  beforeAll(async () => {
    const ipam: CniIpam = {
      allocate: unused,
      release: unused,
      gc: unused,
      addressOf: unused,
      allocationIds: unused,
    };
    const service = new CniService({
      ipam,
      bridge: 'weave',
      links: { attach: unused, detach: unused },
      node: async () => ({ ready: false, reason: 'the test node has no bridge' }),
      log: createLogger('silent'),
    });
    admin = new AdminServer(socket, { get: {}, post: cniEndpoints(service) }, createLogger('silent'));
    await admin.start();
  });
  afterAll(() => admin.stop());

  it.each([
    ['1 incompatible version', attachmentEnv('ADD'), { cniVersion: '0.3.1' }, 1, 'cniVersion 0.3.1'],
    ['2 unsupported field', attachmentEnv('ADD'), { ipam: { type: 'host-local' } }, 2, '"ipam"'],
    ['4 no container ID', { ...attachmentEnv('ADD'), CNI_CONTAINERID: '' }, {}, 4, 'CNI_CONTAINERID'],
    ['4 bad container ID', { ...attachmentEnv('CHECK'), CNI_CONTAINERID: '../x' }, {}, 4, 'CNI_CONTAINERID'],
    ['4 bad ifname', { ...attachmentEnv('ADD'), CNI_IFNAME: 'a/b' }, {}, 4, 'CNI_IFNAME'],
    ['4 ADD without netns', { ...attachmentEnv('ADD'), CNI_NETNS: '' }, {}, 4, 'CNI_NETNS is not set'],
    ['4 netns with a space', { ...attachmentEnv('ADD'), CNI_NETNS: '/run/netns/a b' }, {}, 4, 'CNI_NETNS'],
    ['4 relative netns', { ...attachmentEnv('CHECK'), CNI_NETNS: 'netns/x' }, {}, 4, 'absolute'],
    ['4 malformed CNI_ARGS', { ...attachmentEnv('ADD'), CNI_ARGS: 'IgnoreUnknown' }, {}, 4, 'CNI_ARGS'],
    ['7 no cniVersion', attachmentEnv('ADD'), { cniVersion: undefined }, 7, '"cniVersion"'],
    ['7 bad name', attachmentEnv('ADD'), { name: 'has space' }, 7, '"name"'],
    ['7 no type', attachmentEnv('ADD'), { type: undefined }, 7, '"type"'],
    ['7 bad mtu', attachmentEnv('ADD'), { mtu: 100 }, 7, '"mtu"'],
    ['7 bad prevResult', attachmentEnv('CHECK'), { prevResult: 'x' }, 7, '"prevResult"'],
    ['7 bad valid-attachments', { CNI_COMMAND: 'GC' }, { 'cni.dev/valid-attachments': {} }, 7, 'valid'],
    ['11 ADD while the node is not ready', attachmentEnv('ADD'), {}, 11, 'cannot add pods yet'],
    ['50 STATUS while the node is not ready', { CNI_COMMAND: 'STATUS' }, {}, 50, 'cannot add pods yet'],
  ])('error %s', async (_name, env, extra, code, text) => {
    const out = await shim(env, config(socket, extra));
    expect(out.status).toBe(1);
    expect(out.json.code).toBe(code);
    expect(out.json.msg).toContain(text);
  });

  it('an oversized request is refused by the agent while it is still being sent: its answer, not EPIPE', async () => {
    const out = await shim(
      attachmentEnv('ADD'),
      config(socket, { prevResult: { big: 'x'.repeat(4 << 20) } }),
    );
    expect(out.status).toBe(1);
    expect(out.json).toMatchObject({ code: 999, msg: 'request body too large' });
  });
});
