/**
 * Masquerade of pod traffic leaving the cluster range, as flannel's ipMasq does: one jump from
 * nat POSTROUTING for sources in the cluster range into weft's own chain, which returns for
 * destinations inside the range and multicast and masquerades the rest. The chain is rewritten
 * whole by iptables-restore --noflush (atomic, touches no other chain), and the jump is added only
 * if missing, so running it again after a restart changes nothing.
 */
import { run } from '../util/exec.js';
import { canonicalCidr } from './cidr.js';

export const MASQ_CHAIN = 'WEFT-POSTROUTING';

export function masqueradeRules(clusterCidr: string): string {
  const cidr = canonicalCidr(clusterCidr);
  return [
    '*nat',
    `:${MASQ_CHAIN} - [0:0]`,
    `-A ${MASQ_CHAIN} -d ${cidr} -j RETURN`,
    `-A ${MASQ_CHAIN} -d 224.0.0.0/4 -j RETURN`,
    `-A ${MASQ_CHAIN} -j MASQUERADE --random-fully`,
    'COMMIT',
    '',
  ].join('\n');
}

function jumpRule(clusterCidr: string): string[] {
  return ['POSTROUTING', '-s', canonicalCidr(clusterCidr), '-j', MASQ_CHAIN];
}

export async function ensureMasquerade(clusterCidr: string): Promise<void> {
  await run(['iptables-restore', '--noflush', '-w'], { input: masqueradeRules(clusterCidr) });
  const check = await run(['iptables', '-w', '-t', 'nat', '-C', ...jumpRule(clusterCidr)], {
    allowFail: true,
  });
  if (check.code !== 0) await run(['iptables', '-w', '-t', 'nat', '-A', ...jumpRule(clusterCidr)]);
}
