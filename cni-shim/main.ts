#!/usr/bin/env node
/**
 * weft's CNI plugin (type `weft`): parses CNI_* and the network configuration, forwards them to the
 * agent's admin socket and prints the agent's result or the spec's error JSON. It imports only node
 * builtins and small pure modules, so it starts fast and bundles into one file.
 */
import { readFileSync } from 'node:fs';
import { AgentRequestError, AgentUnreachableError, postToAgent } from '../src/api/admin-client.js';
import { type ForwardedRequest, queueDel } from '../src/cni/del-queue.js';
import { CniCode, CniError, cniErrorJson } from '../src/cni/errors.js';
import {
  answerVersion,
  CNI_API_PREFIX,
  type CniRequest,
  decodeConfig,
  parseCniRequest,
  parseCommand,
  versionReply,
} from '../src/cni/request.js';

/** Below the runtimes' own CNI timeouts, so the runtime sees our error rather than a kill. */
const AGENT_TIMEOUT_MS = 60_000;
/** Socket errors that mean nobody is listening (as opposed to a slow or failing agent). */
const AGENT_DOWN = new Set(['ENOENT', 'ECONNREFUSED']);

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch (error) {
    throw new CniError(
      CniCode.ioFailure,
      'cannot read the network configuration from stdin',
      (error as Error).message,
    );
  }
}

function forwardedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env))
    if (key.startsWith('CNI_') && value !== undefined) out[key] = value;
  return out;
}

async function forward(request: CniRequest, forwarded: ForwardedRequest): Promise<unknown> {
  const path = `${CNI_API_PREFIX}/${request.command.toLowerCase()}`;
  try {
    return await postToAgent(request.config.socket, path, forwarded, AGENT_TIMEOUT_MS);
  } catch (error) {
    if (error instanceof AgentRequestError) {
      const body = (error.body ?? {}) as { cniCode?: unknown; details?: unknown };
      const code =
        typeof body.cniCode === 'number' ? body.cniCode : error.status === 503 ? CniCode.tryAgainLater : 999;
      throw new CniError(code, error.message, typeof body.details === 'string' ? body.details : undefined);
    }
    if (!(error instanceof AgentUnreachableError)) throw error;
    if (request.command === 'DEL' && error.errno !== undefined && AGENT_DOWN.has(error.errno)) {
      // The agent is down: keep the release on disk; the agent replays it before serving again.
      await queueDel(request.config.delQueueDir, request, forwarded);
      return {};
    }
    const code = request.command === 'STATUS' ? CniCode.limitedConnectivity : CniCode.tryAgainLater;
    throw new CniError(code, `weft agent not reachable: ${error.message}`);
  }
}

async function main(): Promise<{ output: unknown; failed: boolean }> {
  let raw: Record<string, unknown> | undefined;
  try {
    const command = parseCommand(process.env);
    const stdin = readStdin();
    if (command === 'VERSION') {
      // Runtimes call VERSION with dummy CNI_* values and just {"cniVersion"}: answer from stdin alone.
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = decodeConfig(stdin);
      } catch {
        parsed = undefined;
      }
      return { output: versionReply(parsed), failed: false };
    }
    raw = decodeConfig(stdin);
    const request = parseCniRequest(process.env, raw);
    const result = await forward(request, { env: forwardedEnv(process.env), config: raw });
    return { output: request.command === 'ADD' ? result : undefined, failed: false };
  } catch (error) {
    const cniError =
      error instanceof CniError
        ? error
        : new CniError(999, `weft plugin failed: ${(error as Error).message}`);
    return { output: cniErrorJson(answerVersion(raw), cniError), failed: true };
  }
}

main().then(({ output, failed }) => {
  if (output !== undefined) process.stdout.write(`${JSON.stringify(output)}\n`);
  process.exitCode = failed ? 1 : 0;
});
