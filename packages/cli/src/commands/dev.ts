/**
 * `hadron dev`: a whole local cluster from the same manifests you apply to Kubernetes (see
 * dev/cluster.ts). Runs until Ctrl-C, then stops every partition cleanly.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, intOption, type CommandSpec } from '../args.js';
import { DevCluster } from '../dev/cluster.js';
import { cliLogger } from '../connect.js';
import { startDevConsole } from '../dev/console.js';
import type { ConsoleServer } from '../console/server.js';
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
    'Every partition also accepts CloudEvents over HTTP (binary, structured, batched; docs/http.md) on\n' +
    'its own port from --http-port; the printed HTTP URL is partition 0\'s, which forwards keyed events\n' +
    'to the partition that owns their key.\n' +
    'With --tls, partitions serve TLS: a local CA and a server certificate for 127.0.0.1, ::1 and\n' +
    'localhost are made in <data>/tls/ (the CA is kept across runs); clients use the https:// URL\n' +
    'and --ca <data>/tls/ca.crt (or HADRON_CA_FILE).\n' +
    'A web console for the first Stream is served on 127.0.0.1:7900 (--console-port, --no-console).\n' +
    'Removing partitions that hold undelivered events is refused unless the Stream has the\n' +
    'annotation hadron.rs/allow-partition-loss.\n' +
    'Output: stdout has only what a script would parse (bootstrap URLs, token export lines, the\n' +
    'console URL, the ready line); everything else (partitions, manifest problems, …) goes to stderr.' +
    '\n' +
    'spec.replicationFactor is honoured: partitions replicate to each other on BASE+6000+100k+N with a\n' +
    'key minted once into <data>/replication/<stream>.key; each partition keeps its whole volume (its\n' +
    'log, state and the replicas it holds) in <data>/partitions/<stream>-<N>.',
  positionals: [],
  options: {
    file: { type: 'string', short: 'f', multiple: true, value: 'FILE_OR_DIR', help: 'manifests: a YAML file or a directory of them (default: examples/full.yaml)' },
    data: { type: 'string', value: 'DIR', help: 'state directory (default .hadron)' },
    port: { type: 'string', value: 'BASE', help: 'first port: stream k, partition N listens on BASE+100k+N (metrics +50, replication +6000; default 7000)' },
    'http-port': { type: 'string', value: 'BASE', help: 'first CloudEvents HTTP port: stream k, partition N on BASE+100k+N (default: --port + 5000)' },
    namespace: { type: 'string', value: 'NS', help: 'namespace of the manifests to run (default "default")' },
    tls: { type: 'boolean', help: 'serve TLS with a generated local CA and certificate (in <data>/tls/)' },
    'console-port': { type: 'string', value: 'PORT', help: 'port of the web console on 127.0.0.1 (default 7900; 0 = any free port)' },
    'no-console': { type: 'boolean', help: 'do not start the web console' },
  },
  async run(ctx) {
    const v = ctx.values;
    const files = ((v.file as string[] | undefined) ?? [DEFAULT_MANIFESTS]).map((f) => path.resolve(f));
    const dataDir = path.resolve((v.data as string | undefined) ?? '.hadron');
    const basePort = intOption(v, 'port', this, { min: 1, max: 65535 - 6100 }) ?? 7000;
    const httpBasePort = intOption(v, 'http-port', this, { min: 1, max: 65535 - 100 }) ?? basePort + 5000;
    const namespace = (v.namespace as string | undefined) ?? 'default';
    const consolePort = intOption(v, 'console-port', this, { max: 65535 }) ?? 7900;
    if (v['no-console'] && v['console-port'] !== undefined) throw new UsageError('give --console-port or --no-console, not both', this.path);
    let webConsole: ConsoleServer | undefined;
    if (namespace === '') throw new UsageError('--namespace may not be empty', this.path);
    let tls: { caFile: string; certFile: string; keyFile: string } | undefined;
    if (v.tls) {
      const made = ensureDevCertificates(dataDir);
      for (const f of made.created) ctx.err(`hadron dev: created ${f}\n`);
      tls = { caFile: made.caFile, certFile: made.certFile, keyFile: made.keyFile };
    }
    const cluster = new DevCluster({
      ...(tls ? { tls } : {}),
      manifests: files,
      dataDir,
      basePort,
      httpBasePort,
      namespace,
      streamBin: streamBin(),
      print: (line) => ctx.out(`hadron dev: ${line}\n`),
      note: (line) => ctx.err(`hadron dev: ${line}\n`),
      ...(v['no-console'] ? {} : { beforeReady: async (c: DevCluster) => {
        const r = await startDevConsole(c, { port: consolePort, logger: cliLogger(ctx), ...(tls ? { caFile: tls.caFile } : {}) });
        webConsole = r.server;
        // Its URL on stdout with the other addresses; a console that did not start on stderr.
        if (!r.server) ctx.err(`hadron dev: ${r.line}\n`);
        return r.server ? [r.line] : [];
      } }),
    });
    const stopped = new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    try {
      await Promise.race([cluster.start(), stopped]);
      await stopped;
    } finally {
      ctx.err('hadron dev: stopping\n');
      await webConsole?.close();
      await cluster.stop();
      ctx.err('hadron dev: stopped\n');
    }
    return 0;
  },
};
