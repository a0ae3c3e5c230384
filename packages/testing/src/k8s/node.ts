/**
 * A real Kubernetes node for the test tier: containerd + runc (Debian packages), CNI bridge
 * networking (Debian containernetworking-plugins) and a kubelet built from the same Kubernetes
 * module as the control plane (scripts/k8s-bins.sh). Pods really run, from images imported into
 * containerd (no registry). See docs/k8s-test-tier.md.
 *
 * Must run inside a network namespace the test created ({@link inPrivateNetns}): the node's
 * address, the pod bridge and every pod address exist only there. The kubelet insists on setting
 * a few sysctls (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops); containerd and the
 * kubelet therefore run in a private mount namespace where files are bind-mounted over those
 * /proc/sys entries, so the host's settings are never changed. The same mount namespace hides
 * /run, /var/log and /var/lib/cni behind tmpfs, so pod network namespaces, pod logs and CNI state
 * vanish with it.
 *
 * Depends only on Node built-ins.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { ControlPlane, KubectlResult } from './control-plane.js';

/** Address of the node inside the test's network namespace (on its loopback interface). */
export const NODE_IP = '10.200.0.1';
/** Service ClusterIP range (the control plane's --service-cluster-ip-range). */
export const SERVICE_CIDR = '10.0.0.0/24';
/** Pod network (CNI bridge `hadron-cni0`, host-local IPAM). */
export const POD_SUBNET = '10.244.0.0/24';
/** Reference of the sandbox image built from the static `pause` program of scripts/k8s-bins.sh. */
export const PAUSE_IMAGE = 'localhost/hadron-pause:1';

export interface NodeOptions {
  /** The control plane (started with `address: NODE_IP`, `withNodes: true`, `kwok: false`). */
  controlPlane: ControlPlane;
  /** OCI archives to import into containerd's k8s.io namespace before the kubelet starts. */
  images?: string[];
  /** Node name (default `node-0`). */
  name?: string;
  signal?: AbortSignal;
}

export interface RealNode {
  readonly name: string;
  readonly ip: string;
  readonly dataDir: string;
  /** Milliseconds from startNode() to the Node being Ready. */
  readonly readyMs: number;
  /** `ctr -n k8s.io <args>` against this node's containerd. */
  ctr(args: string[]): Promise<KubectlResult>;
  /** What this node started that still exists: processes (also through containerd) and cgroups. */
  leftovers(): string[];
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function run(cmd: string, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    c.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    c.once('error', reject);
    c.once('close', (code, sig) => resolve({ stdout, stderr, code: code ?? (sig ? 128 : -1) }));
    c.stdin.on('error', () => undefined);
    c.stdin.end(input ?? '');
  });
}

function must(r: KubectlResult, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

/** Inode of a namespace link of a process, e.g. `mnt:[4026532...]`; undefined when gone. */
function nsOf(pid: number | string, kind: 'mnt' | 'net'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}

function ppidOf(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 4, after the parenthesised command (which may contain spaces).
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * Processes in mount namespace `mnt` plus all their descendants (containers have their own
 * mount namespaces but are children of shims in ours).
 */
function processesOf(mnt: string): number[] {
  const all = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  const found = new Set<number>(all.filter((p) => nsOf(p, 'mnt') === mnt).map(Number));
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      const pp = ppidOf(p);
      if (pp !== undefined && found.has(pp) && !found.has(Number(p))) {
        found.add(Number(p));
        grew = true;
      }
    }
  }
  return [...found].filter((p) => p !== process.pid);
}

async function waitUntil<T>(what: string, ms: number, check: () => Promise<T | undefined>, alive: () => string | undefined, signal?: AbortSignal): Promise<T> {
  const end = Date.now() + ms;
  let last = '';
  for (let i = 50; ; i = Math.min(i * 2, 500)) {
    signal?.throwIfAborted();
    const dead = alive();
    if (dead) throw new Error(`${what}: ${dead}`);
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what}${last ? ` (${last})` : ''}`);
    await delay(i);
  }
}

function tail(path: string, n = 30): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Cgroup directories containerd creates for pods (cgroupfs driver: `<hierarchy>/k8s.io/<id>`),
 * with the `k8s.io` parents themselves.
 */
function cgroupDirs(): string[] {
  const out: string[] = [];
  let hierarchies: string[];
  try {
    hierarchies = readdirSync('/sys/fs/cgroup');
  } catch {
    return out;
  }
  for (const h of hierarchies) {
    const parent = join('/sys/fs/cgroup', h, 'k8s.io');
    try {
      for (const e of readdirSync(parent, { withFileTypes: true })) if (e.isDirectory()) out.push(join(parent, e.name));
      out.push(parent);
    } catch {
      /* not there */
    }
  }
  return out;
}

/** Packs the static pause binary into an OCI archive with umoci + skopeo (as scripts/images.mjs). */
async function pauseArchive(binDir: string, dir: string): Promise<string> {
  const pause = join(binDir, 'pause');
  if (!existsSync(pause)) throw new Error(`missing ${pause} (re-run scripts/k8s-bins.sh)`);
  const layout = join(dir, 'pause-oci');
  const root = join(dir, 'pause-root');
  mkdirSync(root);
  must(await run('cp', [pause, join(root, 'pause')]), 'cp pause');
  must(await run('umoci', ['init', '--layout', layout]), 'umoci init');
  must(await run('umoci', ['new', '--image', `${layout}:pause`]), 'umoci new');
  must(await run('umoci', ['insert', '--rootless', '--image', `${layout}:pause`, root, '/']), 'umoci insert');
  must(await run('umoci', ['config', '--image', `${layout}:pause`, '--config.entrypoint=/pause', '--config.user=65535:65535']), 'umoci config');
  const archive = join(dir, 'pause.tar');
  must(await run('skopeo', ['copy', '--quiet', `oci:${layout}:pause`, `oci-archive:${archive}:${PAUSE_IMAGE}`]), 'skopeo copy');
  return archive;
}

/**
 * Puts {@link NODE_IP} on the loopback interface of the current (private) network namespace, so that
 * the control plane can bind to it before the node starts. Idempotent.
 */
export async function ensureNodeAddress(): Promise<void> {
  if (nsOf('self', 'net') === nsOf(1, 'net')) throw new Error('refusing to add an address to the host network namespace');
  const ipr = spawnSync('ip', ['-o', 'addr', 'show'], { encoding: 'utf8' });
  if (ipr.stdout.includes(`${NODE_IP}/`)) return;
  // On lo: CI kernels may lack the dummy module; any local address works for the node.
  must(await run('ip', ['addr', 'add', `${NODE_IP}/32`, 'dev', 'lo']), `ip addr add ${NODE_IP}/32 dev lo`);
  // Service ClusterIPs need a route for the first lookup (this netns has no default route);
  // kube-proxy's nat OUTPUT rules then rewrite them to pod addresses and the packet is re-routed.
  must(await run('ip', ['route', 'add', SERVICE_CIDR, 'dev', 'lo']), `ip route add ${SERVICE_CIDR} dev lo`);
}

/** Values the kubelet wants for the sysctls it would otherwise write on the host. */
const KUBELET_SYSCTLS: Record<string, string> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

/**
 * Starts containerd and a kubelet registered with `controlPlane`, waits for the Node to be Ready.
 * Call from inside a private network namespace only.
 */
export async function startNode(opts: NodeOptions): Promise<RealNode> {
  const t0 = Date.now();
  const { controlPlane: cp, signal } = opts;
  const name = opts.name ?? 'node-0';
  if (nsOf('self', 'net') === nsOf(1, 'net')) {
    throw new Error('startNode() must run inside a private network namespace (see inPrivateNetns)');
  }
  const dir = await mkdtemp(join(tmpdir(), 'hadron-node-'));
  const logs = join(dir, 'logs');
  mkdirSync(logs);
  const procs: { name: string; child: ChildProcess; log: string }[] = [];
  let holderMnt: string | undefined;
  let stopped: Promise<void> | undefined;

  const spawnLogged = (pname: string, cmd: string, args: string[]): ChildProcess => {
    const log = join(logs, `${pname}.log`);
    const fd = openSync(log, 'a');
    try {
      const child = spawn(cmd, args, { stdio: ['ignore', fd, fd] });
      procs.push({ name: pname, child, log });
      return child;
    } finally {
      closeSync(fd);
    }
  };
  const dead = (): string | undefined => {
    const d = procs.find((p) => p.child.exitCode !== null || p.child.signalCode !== null);
    return d ? `${d.name} exited (${d.child.exitCode ?? d.child.signalCode})\n${tail(d.log)}` : undefined;
  };

  const cgroupsBefore = new Set(cgroupDirs());
  /** Ids of the containers (and sandboxes) of this node's containerd, which name their cgroups. */
  const containerIds = new Set<string>();
  const ours = (d: string): boolean => !cgroupsBefore.has(d) && (d.endsWith('/k8s.io') || containerIds.has(d.slice(d.lastIndexOf('/') + 1)));
  /** What this node left behind: live processes and cgroups (none after stop()). */
  const leftovers = (): string[] => [
    ...(holderMnt ? processesOf(holderMnt).map((p) => `process ${p}`) : []),
    ...cgroupDirs().filter(ours).map((d) => `cgroup ${d}`),
  ];
  let ctrSock: string | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      // The kubelet first (else it restarts what is stopped), then every container through
      // containerd (so runc removes their cgroups), then whatever is left in the mount namespace
      // and below it: containerd, shims, containers. All were started by this node.
      const kubelet = procs.find((p) => p.name === 'kubelet');
      kubelet?.child.kill('SIGKILL');
      if (ctrSock !== undefined && procs.some((p) => p.name === 'containerd' && p.child.exitCode === null && p.child.signalCode === null)) {
        const ctrArgs = ['--address', ctrSock, '--namespace', 'k8s.io', '--timeout', '20s'];
        for (const id of (await run('ctr', [...ctrArgs, 'containers', 'ls', '-q'])).stdout.split('\n')) if (id) containerIds.add(id);
        const tasks = await run('ctr', [...ctrArgs, 'tasks', 'ls', '-q']);
        for (const id of tasks.stdout.split('\n').filter(Boolean)) await run('ctr', [...ctrArgs, 'tasks', 'delete', '--force', id]);
      }
      for (let i = 0; i < 3 && holderMnt !== undefined && processesOf(holderMnt).length > 0; i++) {
        for (const pid of processesOf(holderMnt)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        const end = Date.now() + 5000;
        while (processesOf(holderMnt).length > 0 && Date.now() < end) await delay(50);
      }
      await Promise.all(procs.map((p) => (p.child.exitCode !== null || p.child.signalCode !== null ? undefined : new Promise((r) => p.child.once('exit', r)))));
      // Cgroups of containers killed without containerd (deepest first); empty once they are dead.
      for (const d of cgroupDirs().filter(ours).sort((a, b) => b.length - a.length)) {
        try {
          rmdirSync(d);
        } catch {
          /* still busy, or (the k8s.io parent) used by another containerd: see leftovers() */
        }
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    await ensureNodeAddress();

    // Files for the sysctls the kubelet would otherwise write on the host.
    const sysctlDir = join(dir, 'sysctl');
    const binds: string[] = [];
    for (const [k, v] of Object.entries(KUBELET_SYSCTLS)) {
      const f = join(sysctlDir, k.replace(/\//g, '.'));
      mkdirSync(sysctlDir, { recursive: true });
      writeFileSync(f, `${v}\n`);
      binds.push(`mount --bind ${f} /proc/sys/${k}`);
    }
    const kubeletRoot = join(dir, 'kubelet');
    mkdirSync(kubeletRoot);
    const holderScript = [
      'set -e',
      ...binds,
      // Pod netns bind mounts (/run/netns), runc state, pod logs and CNI state stay in here.
      'mount -t tmpfs tmpfs /run',
      'mount -t tmpfs tmpfs /var/log',
      'mount -t tmpfs tmpfs /var/lib/cni',
      // The kubelet mounts volumes under its root dir; containers must see them.
      `mount --bind ${kubeletRoot} ${kubeletRoot}`,
      `mount --make-rshared ${kubeletRoot}`,
      'echo ready',
      'exec sleep infinity',
    ].join('\n');
    const holder = spawnLogged('mount-ns', 'unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', holderScript]);
    await waitUntil('private mount namespace', 10_000, async () => (tail(join(logs, 'mount-ns.log')).includes('ready') ? true : undefined), dead, signal);
    holderMnt = nsOf(holder.pid!, 'mnt');
    const inNs = (pname: string, cmd: string, args: string[]): ChildProcess =>
      spawnLogged(pname, 'nsenter', [`--target=${holder.pid}`, '--mount', '--', cmd, ...args]);

    // CNI: a bridge with host-local addresses; no masquerading (nothing leaves this netns).
    const cniConf = join(dir, 'cni');
    mkdirSync(cniConf);
    writeFileSync(
      join(cniConf, '10-hadron.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'hadron',
        plugins: [
          {
            type: 'bridge',
            bridge: 'hadron-cni0',
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: POD_SUBNET }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'ipam') },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
    const sock = join(dir, 'containerd.sock');
    ctrSock = sock;
    writeFileSync(
      join(dir, 'containerd.toml'),
      [
        'version = 2',
        `root = ${JSON.stringify(join(dir, 'containerd-root'))}`,
        `state = ${JSON.stringify(join(dir, 'containerd-state'))}`,
        '[grpc]',
        `  address = ${JSON.stringify(sock)}`,
        '[plugins."io.containerd.grpc.v1.cri"]',
        `  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}`,
        // No CAP_SYS_RESOURCE here: never lower a process's oom_score_adj below its parent's.
        '  restrict_oom_score_adj = true',
        '  enable_selinux = false',
        '[plugins."io.containerd.grpc.v1.cri".containerd]',
        // overlay-on-overlay is not available on every CI VM; native copies, slower but works.
        '  snapshotter = "native"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '  runtime_type = "io.containerd.runc.v2"',
        '[plugins."io.containerd.grpc.v1.cri".cni]',
        '  bin_dir = "/usr/lib/cni"',
        `  conf_dir = ${JSON.stringify(cniConf)}`,
        '',
      ].join('\n'),
    );
    inNs('containerd', 'containerd', ['--config', join(dir, 'containerd.toml')]);
    await waitUntil('containerd socket', 30_000, async () => (tail(join(logs, 'containerd.log'), 200).includes('containerd successfully booted') ? true : undefined), dead, signal);
    const ctr = (args: string[]): Promise<KubectlResult> => run('ctr', ['--address', sock, '--namespace', 'k8s.io', ...args]);

    for (const archive of [await pauseArchive(cp.binDir, dir), ...(opts.images ?? [])]) {
      must(await ctr(['images', 'import', '--no-unpack', archive]), `ctr images import ${archive}`);
    }

    const resolv = join(dir, 'resolv.conf');
    writeFileSync(resolv, `nameserver ${NODE_IP}\n`);
    writeFileSync(
      join(dir, 'kubelet.yaml'),
      JSON.stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        // Reachable only inside the test's netns.
        authentication: { anonymous: { enabled: true }, webhook: { enabled: false }, x509: {} },
        authorization: { mode: 'AlwaysAllow' },
        address: NODE_IP,
        port: 10250,
        readOnlyPort: 0,
        healthzPort: 0,
        cgroupDriver: 'cgroupfs',
        cgroupsPerQOS: false,
        enforceNodeAllocatable: [],
        failSwapOn: false,
        // No CAP_SYS_RESOURCE: the kubelet may not lower its own oom_score_adj.
        oomScoreAdj: 0,
        containerRuntimeEndpoint: `unix://${sock}`,
        resolvConf: resolv,
        // CoreDNS runs on the node (like node-local DNS), at the node address.
        clusterDNS: [NODE_IP],
        clusterDomain: 'cluster.local',
        serializeImagePulls: false,
        imageGCHighThresholdPercent: 100,
        evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
        podLogsDir: join(dir, 'pod-logs'),
        localStorageCapacityIsolation: false,
        protectKernelDefaults: false,
        makeIPTablesUtilChains: false,
        nodeStatusUpdateFrequency: '2s',
        syncFrequency: '5s',
        fileCheckFrequency: '5s',
      }),
    );
    inNs('kubelet', join(cp.binDir, 'kubelet'), [
      `--config=${join(dir, 'kubelet.yaml')}`,
      `--kubeconfig=${cp.kubeconfigPath}`,
      `--root-dir=${kubeletRoot}`,
      `--hostname-override=${name}`,
      `--node-ip=${NODE_IP}`,
      '--v=1',
    ]);
    await waitUntil(
      `Node ${name} Ready`,
      120_000,
      async () => {
        const r = await cp.kubectl(['get', 'node', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
        return r.stdout.trim() === 'True' ? true : undefined;
      },
      dead,
      signal,
    );

    // Cluster DNS: CoreDNS's kubernetes plugin, serving cluster.local at the node address.
    writeFileSync(
      join(dir, 'Corefile'),
      [
        '.:53 {',
        `  bind ${NODE_IP}`,
        '  errors',
        '  ready 127.0.0.1:8181',
        '  kubernetes cluster.local in-addr.arpa ip6.arpa {',
        `    kubeconfig ${cp.kubeconfigPath} hadron-test`,
        '    pods insecure',
        '    ttl 1',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    inNs('coredns', join(cp.binDir, 'coredns'), ['-conf', join(dir, 'Corefile')]);
    // Services: kube-proxy (iptables mode) in this netns's own tables. Routed Service traffic
    // between pods on the bridge needs forwarding in this netns (its own setting, not the host's).
    writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
    writeFileSync(
      join(dir, 'kube-proxy.yaml'),
      JSON.stringify({
        apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
        kind: 'KubeProxyConfiguration',
        clientConnection: { kubeconfig: cp.kubeconfigPath },
        mode: 'iptables',
        clusterCIDR: '10.244.0.0/16',
        hostnameOverride: name,
        bindAddress: NODE_IP,
        healthzBindAddress: '127.0.0.1:10256',
        metricsBindAddress: '127.0.0.1:10249',
        // Pod -> Service -> pod on the same bridge: without br_netfilter the reply would bypass
        // the un-NAT; masquerading sends it back through this netns.
        iptables: { masqueradeAll: true, minSyncPeriod: '0s', syncPeriod: '10s' },
        // 0: leave the (host-wide) conntrack table settings alone.
        conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      }),
    );
    inNs('kube-proxy', join(cp.binDir, 'kube-proxy'), [`--config=${join(dir, 'kube-proxy.yaml')}`, '--v=1']);
    const dnsResolver = new Resolver({ timeout: 1000, tries: 1 });
    dnsResolver.setServers([NODE_IP]);
    await waitUntil('CoreDNS answers for kubernetes.default', 60_000, async () => ((await dnsResolver.resolve4('kubernetes.default.svc.cluster.local')).length > 0 ? true : undefined), dead, signal);
    await waitUntil('kube-proxy synced', 60_000, async () => {
      const r = await run('iptables', ['-t', 'nat', '-S', 'KUBE-SERVICES']);
      return r.code === 0 && r.stdout.includes('default/kubernetes:https') ? true : undefined;
    }, dead, signal);
    const readyMs = Date.now() - t0;
    return { name, ip: NODE_IP, dataDir: dir, readyMs, ctr, leftovers, stop, [Symbol.asyncDispose]: stop };
  } catch (err) {
    const logsText = procs.map((p) => `--- ${p.name}\n${tail(p.log)}`).join('\n');
    await stop();
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logsText}`);
  }
}

/** The StorageClass of {@link createHostPathVolumes}: the cluster's default, bound at scheduling. */
export const LOCAL_STORAGE_CLASS = 'hadron-local';

/**
 * `n` hostPath PersistentVolumes `pv-<first>` … (ReadWriteOnce, `size`, default 5Gi; reclaim
 * policy Retain) under the node's data dir, each a new empty directory writable by the images'
 * non-root user, for StatefulSet claims without a provisioner. A deleted claim leaves its volume
 * Released (never bound again), so a recreated claim needs a further one (`first`).
 *
 * They belong to StorageClass `hadron-local` (made default, so claims without a class get it):
 * no provisioner and `volumeBindingMode: WaitForFirstConsumer`, as Kubernetes recommends for
 * local volumes. With immediate binding (class `""`), a pod created together with its claim
 * (a StatefulSet recreating a pod whose claim was deleted) was refused by the scheduler ("pod has
 * unbound immediate PersistentVolumeClaims") and then sat unscheduled for 4 minutes after the
 * claim was bound; with WaitForFirstConsumer the scheduler binds the claim itself.
 */
export async function createHostPathVolumes(cp: ControlPlane, node: RealNode, n: number, opts: { size?: string; first?: number } = {}): Promise<void> {
  const size = opts.size ?? '5Gi';
  const first = opts.first ?? 0;
  const items = Array.from({ length: n }, (_, k) => {
    const i = first + k;
    const path = join(node.dataDir, 'volumes', `pv-${i}`);
    mkdirSync(path, { recursive: true, mode: 0o777 });
    spawnSync('chmod', ['0777', path]);
    return {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `pv-${i}` },
      spec: {
        capacity: { storage: size },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: LOCAL_STORAGE_CLASS,
        hostPath: { path, type: 'Directory' },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node.name] }] }] } },
      },
    };
  });
  const storageClass = {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: LOCAL_STORAGE_CLASS, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: 'kubernetes.io/no-provisioner',
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Retain',
  };
  must(await cp.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [storageClass, ...items] })), 'create PersistentVolumes');
}

/**
 * For a test file: when not yet in a private network namespace, re-runs `node --test <file>` in a
 * new one (`unshare --net`, loopback up) and returns its result; inside, returns undefined so the
 * file's tests run. The namespace has no bind mount anywhere, so it disappears with its last
 * process.
 */
export function inPrivateNetns(file: string, timeoutMs: number): { code: number | null; output: string; netns: string } | undefined {
  if (process.env['HADRON_IN_PRIVATE_NETNS'] === '1') return undefined;
  // Names resolve through the cluster DNS (CoreDNS at the node address) for the test's clients;
  // the bind mount exists only in the test's private mount namespace.
  const resolv = join(tmpdir(), `hadron-resolv-${process.pid}.conf`);
  writeFileSync(resolv, `nameserver ${NODE_IP}\nsearch hadron.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:2\n`);
  const script = 'set -e; ip link set lo up; mount --bind "$2" /etc/resolv.conf; readlink /proc/self/ns/net >&2; exec "$0" --test --test-force-exit --test-reporter=spec "$1"';
  try {
    const r = spawnSync('unshare', ['--net', '--mount', '--propagation', 'private', '--', 'bash', '-c', script, process.execPath, file, resolv], {
      // Without NODE_TEST_CONTEXT the child runs its tests itself instead of deferring to a parent.
      env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')), HADRON_IN_PRIVATE_NETNS: '1' },
      encoding: 'utf8',
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
      maxBuffer: 64 << 20,
    });
    const netns = /net:\[\d+\]/.exec(r.stderr)?.[0] ?? '';
    return { code: r.status, output: `${r.stdout}\n${r.stderr}`, netns };
  } finally {
    rmSync(resolv, { force: true });
  }
}

/** Pids of processes in network namespace `netns` (e.g. `net:[4026532...]`). */
export function processesInNetns(netns: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d) && nsOf(d, 'net') === netns)
    .map(Number);
}
