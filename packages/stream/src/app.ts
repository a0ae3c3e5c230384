/**
 * The partition server process: wires config, control plane, storage, subscriptions, retention,
 * the gRPC service and the metrics/health endpoint, and owns start-up and shutdown order.
 *
 * States: new → starting → running → stopping → stopped. `stop()` is idempotent: it refuses new
 * calls, lets in-flight publishes finish, ends subscriptions, flushes and closes storage.
 * A fatal storage error triggers the same stop and `onFatal`, and the process exits non-zero.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GrpcServer, HadronError, LocalManifests, type ControlPlaneSource, type ControlPlaneView, type Logger } from '@hadron/core';
import { KubernetesControlPlane } from '@hadron/k8s';
import { Authenticator } from './auth.js';
import { advertisedAddress, serverAddress, type StreamConfig } from './config.js';
import { Replication } from './replication/replication.js';
import { WRITE_ACK } from './replication/placement.js';
import { externalAddress } from './external.js';
import { StreamMetrics } from './metrics.js';
import { Retention } from './retention.js';
import { streamControllerMethods } from './service.js';
import { inspectionMethods } from './inspection.js';
import { FileStore } from './storage/partition-store.js';
import { Subscriptions } from './subscriptions.js';
import { PipelineManager } from './pipelines/manager.js';
import { ViewFeed } from './view-feed.js';
import { TlsReloader, readTlsFiles } from './tls-files.js';
import { HttpIngress } from './http/ingress.js';
import { PartitionForwarder } from './http/forwarder.js';
import { DeadLetters } from './dead-letter.js';
import { TriggerManager } from './sinks/trigger-manager.js';
import { OutboundTlsSource, readOutboundTls } from './outbound-tls.js';

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface StreamServerOptions {
  logger: Logger;
  /** Defaults to LocalManifests over `config.manifests`, or the Kubernetes watches when that is empty. */
  controlPlane?: ControlPlaneSource;
  /** Called once after a fatal error has stopped the server. */
  onFatal?: (err: unknown) => void;
}

export class StreamServer {
  private state: State = 'new';
  private store!: FileStore;
  private controlPlane!: ControlPlaneSource;
  private subscriptions!: Subscriptions;
  private retention!: Retention;
  private pipelines!: PipelineManager;
  private grpc!: GrpcServer;
  private http!: http.Server;
  private tlsReloader: TlsReloader | undefined;
  private outbound!: OutboundTlsSource;
  private ingress: HttpIngress | undefined;
  private forwarder: PartitionForwarder | undefined;
  private deadLetters: DeadLetters | undefined;
  private triggers: TriggerManager | undefined;
  private replication: Replication | undefined;
  readonly metrics: StreamMetrics;
  private stopping: Promise<void> | undefined;
  /** Bound ports (useful when configured as 0). */
  ports = { client: 0, metrics: 0, http: 0, server: 0 };

  constructor(
    readonly config: Readonly<StreamConfig>,
    private readonly opts: StreamServerOptions,
  ) {
    this.metrics = new StreamMetrics({
      namespace: config.namespace,
      stream: config.stream,
      statefulset: config.statefulset,
      pod: config.podName,
      partition: config.partition,
    });
  }

  private get log(): Logger {
    return this.opts.logger;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`StreamServer.start() called in state ${this.state}`);
    this.state = 'starting';
    const cfg = this.config;
    // Unusable TLS files are a configuration error: fail before touching storage.
    const tls = cfg.tls ? await readTlsFiles(cfg.tls) : undefined;
    this.outbound = new OutboundTlsSource({ config: cfg, initial: await readOutboundTls(cfg, tls?.cert), intervalMs: cfg.tlsReloadIntervalMs, logger: this.log });
    const outbound = this.outbound;
    const external = () => ({ version: outbound.current().version, material: outbound.current().tls.external });
    outbound.start();
    await fs.mkdir(cfg.dataDir, { recursive: true });
    this.store = await FileStore.open(cfg.dataDir, {
      logger: this.log,
      segmentBytes: cfg.segmentBytes,
      flushIntervalMs: cfg.flushIntervalMs,
      tailCacheBytes: cfg.tailCacheBytes,
      onFatal: (err) => this.fatal(err),
      onSync: (seconds) => this.metrics.fsyncLatency.observe(seconds),
    });
    const m = this.metrics;
    m.currentOffset.set(this.store.lastOffset);
    m.firstOffset.set(this.store.firstOffset);
    m.lastCompactedOffset.set(this.store.firstOffset - 1);
    m.storageBytes.set(this.store.sizeBytes);
    m.recoveryTruncatedBytes.set(this.store.recovery.truncatedBytes);
    m.recoveryClampedProgress.set(this.store.recovery.clampedProgress);
    this.log.info({ dataDir: cfg.dataDir, firstOffset: this.store.firstOffset, lastOffset: this.store.lastOffset }, 'storage opened');

    this.controlPlane =
      this.opts.controlPlane ??
      (cfg.manifests.length > 0
        ? new LocalManifests({ paths: cfg.manifests, namespace: cfg.namespace, logger: this.log })
        : new KubernetesControlPlane({ namespace: cfg.namespace, stream: cfg.stream, logger: this.log, onWatchError: (kind) => m.watcherErrors[kind].inc() }));
    await this.controlPlane.start();
    await this.startReplication();
    const auth = new Authenticator(() => this.controlPlane.view());
    this.controlPlane.on('change', () => auth.reset());

    const view = (): ControlPlaneView => this.controlPlane.view();
    this.deadLetters = new DeadLetters({
      stream: cfg.stream,
      namespace: cfg.namespace,
      partition: cfg.partition,
      view,
      urls: cfg.streamUrls,
      urlTemplate: cfg.streamUrlTemplate,
      tls: external,
      registry: m.registry,
      logger: this.log,
    });
    this.subscriptions = new Subscriptions({
      deadLetter: this.deadLetters,
      store: this.store,
      metrics: m,
      logger: this.log,
      ackDeadlineMs: cfg.ackDeadlineMs,
      nackBackoff: { baseMs: cfg.nackBackoffBaseMs, maxMs: cfg.nackBackoffMaxMs },
      maxDeliveryBytes: cfg.maxDeliveryBytes,
      maxBufferBytes: cfg.maxSubscriberBufferBytes,
      onFatal: (err) => this.fatal(err),
    });
    const subscriptions = this.subscriptions;
    m.subscriberBuffered = () => subscriptions.bufferedBytes;
    this.retention = new Retention({
      store: this.store,
      subscriptions: this.subscriptions,
      metrics: m,
      logger: this.log,
      policy: () => this.retentionPolicy(),
      maxBytes: cfg.retentionMaxBytes,
      intervalSeconds: cfg.compactionIntervalSeconds,
    });
    this.retention.start();
    this.pipelines = new PipelineManager({
      deadLetter: this.deadLetters,
      stream: cfg.stream,
      store: this.store,
      controlPlane: this.controlPlane,
      logger: this.log,
      metrics: m,
      ackDeadlineMs: cfg.ackDeadlineMs,
      nackBackoff: { baseMs: cfg.nackBackoffBaseMs, maxMs: cfg.nackBackoffMaxMs },
      onFatal: (err) => this.fatal(err),
    });
    await this.pipelines.start();
    this.triggers = new TriggerManager({
      stream: cfg.stream,
      namespace: cfg.namespace,
      controlPlane: this.controlPlane,
      subscriptions: this.subscriptions,
      deadLetters: this.deadLetters,
      registry: m.registry,
      logger: this.log,
      maxReplyBytes: cfg.maxMessageBytes,
      meta: this.store.meta,
      sinkTls: external,
      onFatal: (err) => this.fatal(err),
    });
    await this.triggers.start();

    this.grpc = new GrpcServer({
      logger: this.log,
      maxMessageBytes: cfg.maxMessageBytes,
      limits: {
        maxConnections: cfg.maxConnections,
        handshakeTimeoutMs: cfg.handshakeTimeoutMs,
        idleTimeoutMs: cfg.idleTimeoutMs,
        requestBodyTimeoutMs: cfg.requestBodyTimeoutMs,
        maxInflightRequestBytes: cfg.maxInflightRequestBytes,
      },
      observer: m,
      ...(tls ? { tls } : {}),
      methods: {
        ...inspectionMethods({ stream: cfg.stream, partition: cfg.partition, store: this.store, subscriptions: this.subscriptions, retention: this.retention, auth, view, replication: this.replication }),
        ...streamControllerMethods({
        stream: cfg.stream,
        partition: cfg.partition,
        store: this.store,
        subscriptions: this.subscriptions,
        auth,
        metrics: m,
        logger: this.log,
        feed: new ViewFeed(this.controlPlane),
        pipelines: this.pipelines,
        partitions: (v) => this.partitions(v),
        maxEventsPerRequest: cfg.maxEventsPerRequest,
        replication: this.replication,
        }),
      },
    });
    const grpc = this.grpc;
    m.serverStats = () => grpc.stats();
    this.http = http.createServer((req, res) => void this.serveHttp(req, res));
    this.ports.client = await this.grpc.listen(cfg.clientPort, cfg.host);
    if (cfg.tls && tls) {
      const grpc = this.grpc;
      this.tlsReloader = new TlsReloader({
        config: cfg.tls,
        initial: tls,
        apply: (t) => {
          grpc.setSecureContext(t);
          this.ingress?.setSecureContext(t);
        },
        logger: this.log,
        registry: m.registry,
        labels: {},
        intervalMs: cfg.tlsReloadIntervalMs,
      });
      this.tlsReloader.start();
    }
    if (cfg.httpPort !== undefined) await this.startIngress(cfg.httpPort, auth, tls);
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(cfg.metricsPort, cfg.host, () => resolve());
    });
    this.ports.metrics = (this.http.address() as AddressInfo).port;
    this.state = 'running';
    this.log.info({ tls: cfg.tls !== undefined, serverPort: this.ports.server, replicationFactor: this.replication?.replicationFactor, clientPort: this.ports.client, httpPort: this.ports.http, metricsPort: this.ports.metrics, partition: cfg.partition, stream: cfg.stream }, 'partition server started');
  }

  /**
   * Replication (docs/replication.md): serves replicas on the server port, follows the Stream's
   * placement live, and takes back from the replicas what they hold beyond this log before
   * anything else is served.
   */
  private async startReplication(): Promise<void> {
    const cfg = this.config;
    const view = this.controlPlane.view();
    Replication.checkKey(view, cfg.stream, cfg.replicationKey);
    const replication = new Replication({
      stream: cfg.stream,
      partition: cfg.partition,
      dataDir: cfg.dataDir,
      store: this.store,
      key: cfg.replicationKey,
      address: (n) => serverAddress(cfg, n),
      timeoutMs: cfg.replicationTimeoutMs,
      recoveryTimeoutMs: cfg.replicationRecoveryTimeoutMs,
      pollMs: cfg.replicationPollMs,
      maxMessageBytes: cfg.maxMessageBytes,
      storeOptions: { segmentBytes: cfg.segmentBytes, flushIntervalMs: cfg.flushIntervalMs, tailCacheBytes: Math.min(cfg.tailCacheBytes, 16 * 1024 * 1024), onFatal: (err) => this.fatal(err) },
      logger: this.log,
      registry: this.metrics.registry,
    });
    this.replication = replication;
    this.ports.server = await replication.listen(cfg.serverPort, cfg.host);
    await replication.apply(view);
    this.controlPlane.on('change', () => {
      const v = this.controlPlane.view();
      const s = v.streams.get(cfg.stream);
      if (s && s.spec.replicationFactor > 1 && cfg.replicationKey === undefined) {
        this.log.error({ replicationFactor: s.spec.replicationFactor }, 'replicationFactor > 1 but HADRON_REPLICATION_KEY is not set: this partition keeps no replicas');
      }
      void replication.apply(v);
    });
    await replication.recover();
    this.metrics.currentOffset.set(this.store.lastOffset);
    this.metrics.firstOffset.set(this.store.firstOffset);
  }

  /** The CloudEvents HTTP ingress (docs/http.md), forwarding keyed events to their partition. */
  private async startIngress(port: number, auth: Authenticator, tls: Awaited<ReturnType<typeof readTlsFiles>> | undefined): Promise<void> {
    const cfg = this.config;
    this.forwarder = new PartitionForwarder({
      address: (p) => {
        const a = advertisedAddress(cfg, p);
        return a.includes('://') ? a : `${cfg.tls ? 'https' : 'http'}://${a}`;
      },
      ...(tls ? { tls: () => ({ version: this.outbound.current().version, material: this.outbound.current().tls.forwarding }) } : {}),
      maxMessageBytes: cfg.maxMessageBytes,
      timeoutMs: cfg.requestBodyTimeoutMs || 30_000,
    });
    this.ingress = new HttpIngress({
      stream: cfg.stream,
      partition: cfg.partition,
      partitionCount: () => this.controlPlane.view().streams.get(cfg.stream)?.spec.partitions,
      auth,
      store: this.store,
      metrics: this.metrics,
      forwarder: this.forwarder,
      logger: this.log,
      maxBodyBytes: cfg.maxMessageBytes,
      maxEventsPerRequest: cfg.maxEventsPerRequest,
      maxInflight: cfg.httpMaxInflight,
      requestBodyTimeoutMs: cfg.requestBodyTimeoutMs || 30_000,
      ...(tls ? { tls } : {}),
      replicate: (last) => this.replication!.waitCopies(last, WRITE_ACK.ALL, new AbortController().signal),
    });
    this.ports.http = await this.ingress.listen(port, cfg.host);
  }

  /** Retention from the Stream spec once known, else from the environment. */
  private retentionPolicy(): { strategy: 'time' | 'retain'; retentionSeconds: number } {
    const s = this.controlPlane.view().streams.get(this.config.stream);
    if (!s) return this.config.retention;
    return { strategy: s.spec.retentionPolicy.strategy, retentionSeconds: s.spec.retentionPolicy.retentionSeconds ?? this.config.retention.retentionSeconds };
  }

  private partitions(v: ControlPlaneView): Array<{ partition: number; internal: string; external: string }> | undefined {
    const s = v.streams.get(this.config.stream);
    if (!s) return undefined;
    // With TLS the addresses carry https:// so clients know to (and must) verify the partitions.
    const scheme = this.config.tls ? 'https://' : '';
    return Array.from({ length: s.spec.partitions }, (_, i) => {
      const a = advertisedAddress(this.config, i);
      const e = externalAddress(this.config.external, this.config, i);
      return { partition: i, internal: scheme && !a.includes('://') ? `${scheme}${a}` : a, external: scheme && e && !e.includes('://') ? `${scheme}${e}` : e };
    });
  }

  /** True when this partition should receive traffic. */
  get ready(): { ok: boolean; reason: string } {
    if (this.state !== 'running') return { ok: false, reason: `server is ${this.state}` };
    const s = this.controlPlane.view().streams.get(this.config.stream);
    if (!s) return { ok: false, reason: `Stream ${this.config.stream} is not known yet` };
    if (this.config.partition >= s.spec.partitions) return { ok: false, reason: `partition ${this.config.partition} is beyond the Stream's ${s.spec.partitions} partitions` };
    return { ok: true, reason: 'ready' };
  }

  private async serveHttp(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (url === '/metrics') {
      await this.replication?.leader.updateMetrics().catch(() => undefined);
      this.metrics.corruptRecords.set(this.store.recovery.corruptReads);
      this.metrics.storageBytes.set(this.store.sizeBytes);
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      res.end(await this.metrics.registry.metrics());
    } else if (url === '/health') {
      const ok = this.state === 'running' || this.state === 'starting';
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : `${this.state}\n`);
    } else if (url === '/ready') {
      const r = this.ready;
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain' }).end(`${r.reason}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  }

  /** Graceful shutdown. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const was = this.state;
    this.state = 'stopping';
    this.log.info('partition server stopping');
    if (was !== 'new') {
      await this.tlsReloader?.stop();
      await this.outbound?.stop();
      this.subscriptions?.stopping();
      await this.ingress?.close();
      await this.forwarder?.close();
      await this.grpc?.close(this.config.shutdownGraceMs).catch((err: unknown) => this.log.error({ err }, 'closing gRPC server'));
      await this.triggers?.close();
      this.subscriptions?.close();
      await this.pipelines?.close();
      await this.retention?.stop();
      await this.deadLetters?.close();
      await this.replication?.close(this.config.shutdownGraceMs);
      await this.store?.close().catch((err: unknown) => this.log.error({ err }, 'closing storage'));
      await this.controlPlane?.close();
      if (this.http?.listening) await new Promise<void>((r) => this.http.close(() => r()));
    }
    this.state = 'stopped';
    this.log.info('partition server stopped');
  }

  private fatal(err: unknown): void {
    this.log.fatal({ err }, 'fatal error; shutting down');
    void this.stop().finally(() => this.opts.onFatal?.(err instanceof HadronError ? err : new HadronError('INTERNAL', String(err))));
  }
}
