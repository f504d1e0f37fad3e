import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { validateManifests } from '../../helpers/manifest-validation.js';

const weftYaml = readFileSync('deploy/weft.yaml', 'utf8');

interface HttpProbe {
  httpGet: { host: string; port: number; path: string };
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  livenessProbe?: HttpProbe;
  readinessProbe?: HttpProbe;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  securityContext?: { privileged?: boolean; capabilities?: { add?: string[] } };
}

interface PodSpec {
  hostNetwork: boolean;
  tolerations: unknown[];
  initContainers: Container[];
  containers: Container[];
  volumes: Array<{ name: string; hostPath?: { path: string } }>;
}

type K8sObject = {
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
};

function find<T>(kind: string): K8sObject & T {
  const object = parseAllDocuments(weftYaml)
    .map((d) => d.toJS() as K8sObject | null)
    .find((o) => o?.kind === kind);
  if (!object) throw new Error(`no ${kind} in deploy/weft.yaml`);
  return object as K8sObject & T;
}

describe('deploy/weft.yaml (validated offline: no API server can run here)', () => {
  it('every object passes the Kubernetes schema and has no unknown field', async () => {
    const { kinds, problems } = await validateManifests(weftYaml);
    expect(problems).toEqual([]);
    expect(kinds).toEqual([
      'ServiceAccount/weft',
      'ClusterRole/weft',
      'ClusterRoleBinding/weft',
      'Role/weft',
      'RoleBinding/weft',
      'ConfigMap/weft-config',
      'DaemonSet/weft',
    ]);
  });

  it('catches a typo, a wrong type, a missing name and an unknown kind', async () => {
    const broken = weftYaml
      .replace('serviceAccountName: weft', 'serviceAcountName: weft')
      .replace('hostNetwork: true', 'hostNetwork: "yes"')
      .replace('        - name: agent\n', '        - nam: agent\n')
      .replace('kind: ClusterRoleBinding', 'kind: ClusterRoleBindin');
    const { problems } = await validateManifests(broken);
    const text = problems.map((p) => `${p.document}: ${p.message}`).join('\n');
    expect(text).toContain('DaemonSet.spec.template.spec.serviceAcountName: unknown field (in V1PodSpec)');
    expect(text).toContain('hostNetwork must be boolean');
    expect(text).toContain('containers/0 must have required property');
    expect(text).toContain('DaemonSet.spec.template.spec.containers[0].nam: unknown field (in V1Container)');
    expect(text).toContain('unknown kind rbac.authorization.k8s.io/v1 ClusterRoleBindin');
  });

  it('wires the agent as the rest of weft expects', () => {
    const ds = find<{ spec: { updateStrategy: { type: string }; template: { spec: PodSpec } } }>('DaemonSet');
    const pod = ds.spec.template.spec;
    expect(ds.metadata.namespace).toBe('kube-system');
    expect(pod.hostNetwork).toBe(true);
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    expect(ds.spec.updateStrategy.type).toBe('RollingUpdate');
    const init = pod.initContainers[0] as Container;
    expect(init.args).toEqual(
      expect.arrayContaining([
        'install-cni',
        '--bin-dir=/host/opt/cni/bin',
        '--conf-dir=/host/etc/cni/net.d',
      ]),
    );
    const agent = pod.containers[0] as Container;
    expect(agent.args?.slice(0, 2)).toEqual(['run', '--kube-peers']);
    expect(agent.args).toEqual(
      expect.arrayContaining(['--admin-socket=/run/weft/weft.sock', '--state-dir=/var/lib/weft']),
    );
    expect(agent.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe(
      'spec.nodeName',
    );
    expect(agent.livenessProbe?.httpGet).toEqual({ host: '127.0.0.1', port: 6784, path: '/healthz' });
    expect(agent.readinessProbe?.httpGet).toEqual({ host: '127.0.0.1', port: 6784, path: '/readyz' });
    expect(agent.securityContext?.capabilities?.add).toEqual(['NET_ADMIN', 'NET_RAW']);
    const mounts = Object.fromEntries((agent.volumeMounts ?? []).map((m) => [m.name, m.mountPath]));
    const hostPaths = Object.fromEntries(pod.volumes.map((v) => [v.name, v.hostPath?.path]));
    for (const [volume, path] of [
      ['state', '/var/lib/weft'],
      ['run', '/run/weft'],
      ['tun', '/dev/net/tun'],
    ] as const) {
      expect(mounts[volume]).toBe(path);
      expect(hostPaths[volume]).toBe(path);
    }
    // Every $(VAR) in the args is defined in the container's env (Kubernetes leaves unknown ones as is).
    for (const container of [init, agent]) {
      const defined = new Set((container.env ?? []).map((e) => e.name));
      for (const arg of container.args ?? []) {
        for (const [, name] of arg.matchAll(/\$\(([A-Z_]+)\)/g)) expect(defined).toContain(name);
      }
    }
    // The image deploy/image/build.sh tags and deploy/kind/e2e.sh loads.
    expect(agent.image).toBe('localhost/weft-agent:dev');
    expect(readFileSync('deploy/image/build.sh', 'utf8')).toContain('tag=localhost/weft-agent:dev');
  });

  it('grants what discovery and the reclaim use, and nothing broader', () => {
    expect(find<{ rules: unknown[] }>('ClusterRole').rules).toEqual([
      { apiGroups: [''], resources: ['nodes'], verbs: ['list', 'watch'] },
    ]);
    const role = find<{ rules: unknown[] }>('Role');
    expect(role.metadata.namespace).toBe('kube-system');
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['weft-peers'], verbs: ['get', 'update'] },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
    ]);
  });
});

describe('deploy/kind/cluster.yaml', () => {
  // kind's own config format (not a Kubernetes API object): checked strictly against the fields used.
  const schema = z.strictObject({
    kind: z.literal('Cluster'),
    apiVersion: z.literal('kind.x-k8s.io/v1alpha4'),
    name: z.string(),
    networking: z.strictObject({ disableDefaultCNI: z.boolean(), podSubnet: z.string() }),
    nodes: z.array(z.strictObject({ role: z.enum(['control-plane', 'worker']) })),
  });

  it('is 1 control-plane + 2 workers, without the default CNI, on weft’s range', () => {
    const config = schema.parse(parse(readFileSync('deploy/kind/cluster.yaml', 'utf8')));
    expect(config.nodes.map((n) => n.role)).toEqual(['control-plane', 'worker', 'worker']);
    const range = find<{ data: Record<string, string> }>('ConfigMap').data['cluster-cidr'];
    expect(config.networking).toEqual({ disableDefaultCNI: true, podSubnet: range });
    expect(() =>
      schema.parse({ ...config, networking: { ...config.networking, disableDefaultCni: true } }),
    ).toThrow();
  });
});
