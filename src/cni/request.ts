/**
 * A CNI invocation (CNI_* environment + the network configuration on stdin) parsed and checked
 * against spec 1.1.0, by the agent on what the plugin forwarded. The plugin (cni-shim/weft-cni.c)
 * checks only what it needs to get there (CNI_COMMAND, well-formed JSON, the socket and DEL-queue
 * paths, DEL's attachment) and answers VERSION itself: keep its copies of the constants and rules
 * it shares with this module in step.
 */
import { CniCode, CniError } from './errors.js';

export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export const PLUGIN_TYPE = 'weft';
export const DEFAULT_SOCKET = '/run/weft/weft.sock';
/** The admin API paths of the CNI commands: `${CNI_API_PREFIX}/add`, `/del`, … */
export const CNI_API_PREFIX = '/v1/cni';
/** Where the shim queues DELs while the agent is down; the agent replays them on start. */
export const DEFAULT_DEL_QUEUE_DIR = '/var/lib/weft/cni-del-queue';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof COMMANDS)[number];
/** Commands that act on one attachment and need CNI_CONTAINERID and CNI_IFNAME. */
const ATTACHMENT_COMMANDS: ReadonlySet<CniCommand> = new Set(['ADD', 'DEL', 'CHECK']);

export type CniEnv = Readonly<Record<string, string | undefined>>;

export interface Attachment {
  containerId: string;
  ifname: string;
}

export interface NetworkConfig {
  cniVersion: string;
  name: string;
  type: string;
  socket: string;
  delQueueDir: string;
  /** Pod MTU; the agent's overlay MTU when absent. */
  mtu: number | undefined;
  prevResult: Record<string, unknown> | undefined;
  dns: Record<string, unknown> | undefined;
  /** GC only: the attachments the runtime still uses (`cni.dev/valid-attachments`). */
  validAttachments: Attachment[] | undefined;
}

export interface CniRequest {
  command: CniCommand;
  /** Empty for VERSION, STATUS and GC. */
  containerId: string;
  ifname: string;
  /** May be empty for DEL (containerd's second DEL after the sandbox's netns is gone). */
  netns: string;
  args: Record<string, string>;
  config: NetworkConfig;
}

const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const NETWORK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const MAX_CONTAINER_ID = 200;
export const MIN_MTU = 576;
export const MAX_MTU = 9000;

export function isValidMtu(mtu: unknown): mtu is number {
  return Number.isInteger(mtu) && (mtu as number) >= MIN_MTU && (mtu as number) <= MAX_MTU;
}

/** Linux interface names: 1–15 bytes, no '/', ':' or whitespace, not '.' or '..'. */
export function isValidIfname(name: string): boolean {
  return name.length > 0 && name.length <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name);
}

function parseCommand(env: CniEnv): CniCommand {
  const command = env.CNI_COMMAND;
  if (command === undefined || command === '')
    throw new CniError(CniCode.invalidEnvironment, 'CNI_COMMAND is not set');
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new CniError(
      CniCode.invalidEnvironment,
      `CNI_COMMAND ${JSON.stringify(command)} is not one of ${COMMANDS.join(', ')}`,
    );
  }
  return command as CniCommand;
}

function invalidConfig(message: string): CniError {
  return new CniError(CniCode.invalidNetworkConfig, message);
}

function optionalString(raw: Record<string, unknown>, key: string): string | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw invalidConfig(`"${key}" must be a non-empty string`);
  return value;
}

function optionalAbsolutePath(raw: Record<string, unknown>, key: string): string | undefined {
  const value = optionalString(raw, key);
  if (value !== undefined && !value.startsWith('/')) throw invalidConfig(`"${key}" must be an absolute path`);
  return value;
}

function optionalObject(raw: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidConfig(`"${key}" must be a JSON object`);
  return value as Record<string, unknown>;
}

function parseValidAttachments(raw: Record<string, unknown>): Attachment[] | undefined {
  const value = raw['cni.dev/valid-attachments'];
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw invalidConfig('"cni.dev/valid-attachments" must be an array');
  return value.map((entry, i) => {
    const { containerID, ifname } = (entry ?? {}) as { containerID?: unknown; ifname?: unknown };
    if (typeof containerID !== 'string' || typeof ifname !== 'string')
      throw invalidConfig(`"cni.dev/valid-attachments"[${i}] needs string "containerID" and "ifname"`);
    return { containerId: containerID, ifname };
  });
}

/** The network configuration: codes 1 (version), 2 (unsupported field) and 7 (invalid). */
export function parseNetworkConfig(raw: Record<string, unknown>): NetworkConfig {
  const cniVersion = raw.cniVersion;
  if (typeof cniVersion !== 'string' || cniVersion === '')
    throw invalidConfig('"cniVersion" is missing from the network configuration');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(cniVersion)) {
    throw new CniError(
      CniCode.incompatibleVersion,
      `cniVersion ${cniVersion} is not supported; use one of ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }
  const name = raw.name;
  if (typeof name !== 'string' || !NETWORK_NAME.test(name))
    throw invalidConfig('"name" must be a network name of letters, digits, "_", "." and "-"');
  const type = raw.type;
  if (typeof type !== 'string' || type === '') throw invalidConfig('"type" is missing');
  if (raw.ipam !== undefined) {
    throw new CniError(
      CniCode.unsupportedField,
      'weft allocates pod addresses itself: remove the "ipam" section from the network configuration',
    );
  }
  const mtu = raw.mtu;
  if (mtu !== undefined && !isValidMtu(mtu))
    throw invalidConfig(`"mtu" must be an integer in ${MIN_MTU}..${MAX_MTU}`);
  return {
    cniVersion,
    name,
    type,
    socket: optionalAbsolutePath(raw, 'socket') ?? DEFAULT_SOCKET,
    delQueueDir: optionalAbsolutePath(raw, 'delQueueDir') ?? DEFAULT_DEL_QUEUE_DIR,
    mtu,
    prevResult: optionalObject(raw, 'prevResult'),
    dns: optionalObject(raw, 'dns'),
    validAttachments: parseValidAttachments(raw),
  };
}

function invalidEnv(message: string): CniError {
  return new CniError(CniCode.invalidEnvironment, message);
}

function parseArgs(text: string | undefined): Record<string, string> {
  const args: Record<string, string> = {};
  if (text === undefined || text === '') return args;
  for (const pair of text.split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalidEnv(`CNI_ARGS ${JSON.stringify(text)} is not KEY=VALUE pairs separated by ";"`);
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}

/** The whole invocation (not VERSION): environment codes 4, then the configuration's. */
export function parseCniRequest(env: CniEnv, raw: Record<string, unknown>): CniRequest {
  const command = parseCommand(env);
  const config = parseNetworkConfig(raw);
  let containerId = '';
  let ifname = '';
  if (ATTACHMENT_COMMANDS.has(command)) {
    containerId = env.CNI_CONTAINERID ?? '';
    if (containerId === '') throw invalidEnv('CNI_CONTAINERID is not set');
    if (containerId.length > MAX_CONTAINER_ID || !CONTAINER_ID.test(containerId))
      throw invalidEnv(
        `CNI_CONTAINERID ${JSON.stringify(containerId)} is not letters, digits, "_", "." and "-"`,
      );
    ifname = env.CNI_IFNAME ?? '';
    if (ifname === '') throw invalidEnv('CNI_IFNAME is not set');
    if (!isValidIfname(ifname))
      throw invalidEnv(`CNI_IFNAME ${JSON.stringify(ifname)} is not a valid interface name (1..15 chars)`);
  }
  const netns = env.CNI_NETNS ?? '';
  if (command === 'ADD' || command === 'CHECK') {
    if (netns === '') throw invalidEnv('CNI_NETNS is not set');
    if (!netns.startsWith('/') || /\s/.test(netns))
      throw invalidEnv(`CNI_NETNS ${JSON.stringify(netns)} is not an absolute path without spaces`);
  }
  return { command, containerId, ifname, netns, args: parseArgs(env.CNI_ARGS), config };
}

/** The key IPAM allocations of CNI attachments have: CNI container IDs contain no ':'. */
export function attachmentKey(attachment: Attachment): string {
  return `${attachment.containerId}:${attachment.ifname}`;
}

export function isAttachmentKey(allocationId: string): boolean {
  return allocationId.includes(':') && !allocationId.startsWith('weft:');
}
