/**
 * `hadron dev`: a whole local cluster from the same manifests you apply to Kubernetes (see
 * dev/cluster.ts). Runs until Ctrl-C, then stops every partition cleanly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, intOption, type CommandSpec } from '../args.js';
import { DevCluster } from '../dev/cluster.js';
import { ensureDevCertificates } from '../dev/certs.js';

/**
 * The reference example (reference §7), used when no -f is given: the copy shipped in the
 * installed package (copied at `npm pack`), else the repository's.
 */
export const DEFAULT_MANIFESTS = [new URL('../../examples/full.yaml', import.meta.url), new URL('../../../../examples/full.yaml', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((f) => fs.existsSync(f)) ?? fileURLToPath(new URL('../../../../examples/full.yaml', import.meta.url));

/** `packages/stream/bin/hadron-stream.js`, found through the @hadron/stream package. */
export function streamBin(): string {
  const entry = fileURLToPath(import.meta.resolve('@hadron/stream'));
  return path.join(path.dirname(entry), '..', 'bin', 'hadron-stream.js');
}

export const dev: CommandSpec = {
  path: ['dev'],
  summary: 'Run every Stream of the manifests as local partition processes, following edits live.',
  description:
    'Each partition is its own hadron-stream process on 127.0.0.1 with its own data directory, so one\n' +
    'can be killed without the others; a crashed partition is restarted. Tokens get their Secrets and\n' +
    'JWTs as the operator makes them (in <data>/secrets and <data>/tokens/<name>). Editing the\n' +
    'manifests (scaling a Stream, adding or removing Pipelines and Tokens) takes effect without a\n' +
    'restart; an invalid manifest is reported and the last valid state keeps running. State survives\n' +
    'restarts of hadron dev with the same --data. Without -f, runs examples/full.yaml.\n' +
    'With --tls, partitions serve TLS: a local CA and a server certificate for 127.0.0.1, ::1 and\n' +
    'localhost are made in <data>/tls/ (the CA is kept across runs); clients use the https:// URL\n' +
    'and --ca <data>/tls/ca.crt (or HADRON_CA_FILE).\n' +
    'spec.replicationFactor is honoured: partitions replicate to each other on BASE+5000+100k+N with a\n' +
    'key minted once into <data>/replication/<stream>.key; each partition keeps its whole volume (its\n' +
    'log, state and the replicas it holds) in <data>/partitions/<stream>-<N>.',
  positionals: [],
  options: {
    file: { type: 'string', short: 'f', multiple: true, value: 'FILE_OR_DIR', help: 'manifests: a YAML file or a directory of them (default: examples/full.yaml)' },
    data: { type: 'string', value: 'DIR', help: 'state directory (default .hadron)' },
    port: { type: 'string', value: 'BASE', help: 'first port: stream k, partition N listens on BASE+100k+N (metrics +50, replication +5000; default 7000)' },
    namespace: { type: 'string', value: 'NS', help: 'namespace of the manifests to run (default "default")' },
    tls: { type: 'boolean', help: 'serve TLS with a generated local CA and certificate (in <data>/tls/)' },
  },
  async run(ctx) {
    const v = ctx.values;
    const files = ((v.file as string[] | undefined) ?? [DEFAULT_MANIFESTS]).map((f) => path.resolve(f));
    const dataDir = path.resolve((v.data as string | undefined) ?? '.hadron');
    const basePort = intOption(v, 'port', this, { min: 1, max: 65535 - 5100 }) ?? 7000;
    const namespace = (v.namespace as string | undefined) ?? 'default';
    if (namespace === '') throw new UsageError('--namespace may not be empty', this.path);
    let tls;
    if (v.tls) {
      const made = ensureDevCertificates(dataDir);
      for (const f of made.created) ctx.out(`hadron dev: created ${f}\n`);
      tls = { caFile: made.caFile, certFile: made.certFile, keyFile: made.keyFile };
    }
    const cluster = new DevCluster({
      ...(tls ? { tls } : {}),
      manifests: files,
      dataDir,
      basePort,
      namespace,
      streamBin: streamBin(),
      print: (line) => ctx.out(`hadron dev: ${line}\n`),
    });
    const stopped = new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      await Promise.race([cluster.start(), stopped]);
      await stopped;
    } finally {
      ctx.out('hadron dev: stopping\n');
      await cluster.stop();
      ctx.out('hadron dev: stopped\n');
    }
    return 0;
  },
};
