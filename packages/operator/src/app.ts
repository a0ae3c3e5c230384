/**
 * The operator process: leader elector, controller, webhook server, metrics/health server and the
 * (method-less) gRPC listener, with start-up and shutdown order.
 *
 * States: new → starting → running → stopping → stopped. `stop()` is idempotent; it stops
 * handing out work, releases the Lease (so another instance takes over at once), then closes the
 * informers and the servers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GrpcServer, type Logger } from '@hadron/core';
import { KubeClient, loadConnection, type KubeConnection } from '@hadron/k8s';
import type { OperatorConfig } from './config.js';
import { Controller } from './controller.js';
import { LeaderElector } from './leader.js';
import { OperatorMetrics } from './metrics.js';
import { PartitionLossProbe } from './partition-loss.js';
import { WebhookServer } from './webhook.js';

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface OperatorOptions {
  logger: Logger;
  /** Default: KUBECONFIG or in-cluster. */
  connection?: KubeConnection;
  /** Retry period of the leader elector in seconds (default 2). */
  leaseRetrySeconds?: number;
}

export class Operator {
  private state: State = 'new';
  readonly metrics: OperatorMetrics;
  readonly client: KubeClient;
  readonly elector: LeaderElector;
  readonly controller: Controller;
  private readonly webhooks: WebhookServer;
  private readonly partitionLoss: PartitionLossProbe;
  private readonly grpc: GrpcServer;
  private readonly http: http.Server;
  private stopping: Promise<void> | undefined;
  private readonly abort = new AbortController();
  ports = { client: 0, webhooks: 0, metrics: 0 };

  constructor(
    readonly config: Readonly<OperatorConfig>,
    private readonly opts: OperatorOptions,
  ) {
    const log = opts.logger;
    this.metrics = new OperatorMetrics({ namespace: config.namespace, pod: config.podName });
    this.client = new KubeClient(opts.connection ?? loadConnection(), { userAgent: `hadron-operator/${config.podName}` });
    this.elector = new LeaderElector({
      client: this.client,
      namespace: config.namespace,
      identity: config.podName,
      leaseDurationSeconds: config.leaseDurationSeconds,
      renewSeconds: config.leaseRenewSeconds,
      ...(opts.leaseRetrySeconds ? { retrySeconds: opts.leaseRetrySeconds } : {}),
      logger: log,
      onObserved: (_holder, transitions) => {
        this.metrics.leadershipChanges.inc();
        this.metrics.numLeadershipChanges.set(transitions);
      },
    });
    this.controller = new Controller({ client: this.client, namespace: config.namespace, fence: this.elector, logger: log, metrics: this.metrics, partitionLoss: (s, from, to) => this.partitionLoss.check(s, from, to) });
    // Informers run on every instance, so a webhook call to a non-leader finds Tokens and Secrets.
    this.partitionLoss = new PartitionLossProbe({
      client: this.client,
      namespace: config.namespace,
      informers: this.controller.informers,
      urlTemplate: config.partitionUrlTemplate,
      ...(config.partitionPortBase === undefined ? {} : { portBase: config.partitionPortBase }),
      logger: log,
    });
    this.metrics.setWorkSource(() => this.controller.queue.pending);
    this.elector.on('state', (s) => {
      this.metrics.isLeader.set(s.kind === 'leading' ? 1 : 0);
      if (s.kind === 'leading') {
        void this.controller.lead(this.abort.signal).catch((err: unknown) => {
          if (!this.abort.signal.aborted) log.error({ err }, 'starting reconciliation as leader failed');
        });
      } else this.controller.follow();
    });
    this.webhooks = new WebhookServer({
      cert: config.webhookCert,
      key: config.webhookKey,
      logger: log,
      metrics: this.metrics,
      partitionLoss: { probe: this.partitionLoss, streamOf: (name) => this.controller.informers.streams.get(name) },
    });
    this.grpc = new GrpcServer({ logger: log, methods: {} });
    this.http = http.createServer((req, res) => void this.serveHttp(req, res));
  }

  get isLeader(): boolean {
    return this.elector.isLeader;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`Operator.start() called in state ${this.state}`);
    this.state = 'starting';
    const cfg = this.config;
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(cfg.metricsPort, cfg.host, () => resolve());
    });
    this.ports.metrics = (this.http.address() as AddressInfo).port;
    this.ports.webhooks = await this.webhooks.listen(cfg.webhooksPort, cfg.host);
    this.ports.client = await this.grpc.listen(cfg.clientPort, cfg.host);
    this.controller.start();
    this.elector.start();
    this.state = 'running';
    this.opts.logger.info({ ...this.ports, namespace: cfg.namespace, pod: cfg.podName }, 'operator started');
  }

  private async serveHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (url === '/health') {
      const ok = this.state === 'running';
      res.writeHead(ok ? 200 : 503).end();
    } else if (url === '/metrics') {
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      res.end(await this.metrics.registry.metrics());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopping';
      this.abort.abort(new Error('operator stopping'));
      this.controller.follow();
      // Hand the Lease over before waiting for in-flight reconciles: the kubelet may SIGKILL
      // soon after SIGTERM (2 s for a forced delete), and an unreleased Lease makes the other
      // replica wait for its expiry. Writes still in flight are fenced (fence() needs this
      // elector to be leading, which stop() ends first).
      await this.elector.stop({ release: true });
      await this.controller.queue.idle();
      await this.controller.close();
      await this.webhooks.close();
      await this.grpc.close(1000);
      this.http.closeAllConnections();
      await new Promise<void>((r) => (this.http.listening ? this.http.close(() => r()) : r()));
      this.client.close();
      this.state = 'stopped';
      this.opts.logger.info('operator stopped');
    })();
    return this.stopping;
  }
}
