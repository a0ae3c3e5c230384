/**
 * The container images, run for real with podman (packages/testing `images`): `hadron-stream` with
 * a read-only root filesystem as UID 65532 serves publish and subscribe to our client on a loopback
 * port, keeps its data on the mounted volume across a restart, and stops cleanly on SIGTERM; the
 * `hadron` CLI image publishes to it. Also what the images are: user, entrypoint, ports, OCI labels,
 * size, and that no dev dependency or test file was packed. (The operator image: operator package.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient, type ReceivedEvent } from '@hadron/client';
import { REPO_ROOT, freePortRange, streamManifest, tokenManifest, tokenSecret, until } from '@hadron/testing';
import { Containerd, Podman, buildImages, type Container } from '@hadron/testing/images';

const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

test('container images hadron-stream and hadron (podman, read-only, UID 65532)', { timeout: 15 * 60_000 }, async (t) => {
  const images = await buildImages(['hadron-stream', 'hadron']);
  const stream = images['hadron-stream']!;
  const cli = images.hadron!;
  const podman = await Podman.create();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-image-test-'));
  t.after(async () => {
    await podman[Symbol.asyncDispose]();
    assert.deepEqual(podman.mountsUnder(), [], 'nothing left mounted');
    assert.equal(fs.existsSync(podman.dir), false, 'podman storage removed');
    fs.rmSync(root, { recursive: true, force: true });
  });
  assert.deepEqual(await podman.load(stream.archivePath), [`localhost/hadron-stream:${VERSION}`]);
  assert.deepEqual(await podman.load(cli.archivePath), [`localhost/hadron:${VERSION}`]);

  await t.test('image config: non-root, entrypoint is the program, ports, org.opencontainers.image labels', async () => {
    for (const [img, bin, ports] of [[stream, 'hadron-stream', ['7000/tcp', '7001/tcp', '7002/tcp']], [cli, 'hadron', []]] as const) {
      const { Config: c } = await podman.inspect(img.ref);
      assert.equal(c.User, '65532:65532');
      assert.deepEqual(c.Entrypoint, [`/bin/${bin}`]);
      assert.deepEqual(Object.keys(c.ExposedPorts ?? {}).sort(), ports);
      const l = c.Labels ?? {};
      assert.equal(l['org.opencontainers.image.title'], bin);
      assert.equal(l['org.opencontainers.image.version'], VERSION);
      assert.equal(l['org.opencontainers.image.licenses'], 'Apache-2.0');
      assert.match(l['org.opencontainers.image.revision'] ?? '', /^[0-9a-f]{40}(-dirty)?$/);
      assert.match(l['org.opencontainers.image.source'] ?? '', /^https:\/\//);
      assert.ok((l['org.opencontainers.image.description'] ?? '').length > 10);
    }
    // The entrypoint is the program: without its configuration it names what is missing, exit 2.
    const bare = await podman.runToEnd({ image: stream.ref });
    assert.equal(bare.code, 2, bare.stderr);
    assert.match(bare.stderr, /^hadron-stream: invalid configuration: \w+ is required but not set$/m);
    // The target: hadron-stream under 60 MB compressed (the archive holds gzip layers).
    assert.ok(stream.archiveBytes < 60e6, `hadron-stream archive is ${stream.archiveBytes} bytes`);
    assert.deepEqual(stream.layerBytes.length, 2, 'runtime layer + app layer');
  });

  await t.test('only production code: no dev dependency, test or TypeScript source; root filesystem read-only', async () => {
    // The image's own node, bypassing the entrypoint, inspects the image from inside.
    const probe = `
      const fs = require('node:fs');
      const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(d + '/' + e.name) : [d + '/' + e.name]);
      const files = walk('/app');
      let write = 'ok';
      try { fs.writeFileSync('/app/x', 'x'); } catch (e) { write = e.code; }
      // getaddrinfo through the image's glibc and nsswitch.conf (files: podman's /etc/hosts).
      require('node:dns').promises.lookup('localhost', { family: 4 }).then(({ address }) => console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), node: process.version, files, write, localhost: address,
        modules: fs.readdirSync('/app/node_modules').flatMap((m) => m.startsWith('@') ? fs.readdirSync('/app/node_modules/' + m).map((s) => m + '/' + s) : [m]) })));`;
    const c = await podman.runToEnd({ image: stream.ref, entrypoint: '/usr/local/bin/node', args: ['-e', probe] });
    assert.equal(c.code, 0, c.stderr);
    const info = JSON.parse(c.stdout) as { uid: number; gid: number; node: string; files: string[]; write: string; modules: string[]; localhost: string };
    assert.equal(info.localhost, '127.0.0.1');
    assert.deepEqual([info.uid, info.gid], [65532, 65532]);
    assert.equal(info.node, `v${stream.node}`);
    assert.equal(info.write, 'EROFS');
    for (const dev of ['typescript', 'eslint', '@hadron/testing', '@hadron/cli', '@grpc/grpc-js', '@types/node', 'typescript-eslint', '@bufbuild/buf', 'cloudevents']) {
      assert.ok(!info.modules.includes(dev), `${dev} is in the hadron-stream image`);
    }
    // @hadron/client: the partition server publishes to dead-letter Streams with it (docs/http.md).
    for (const need of ['@hadron/core', '@hadron/proto', '@hadron/k8s', '@hadron/client', 'pino', 'yaml', 'prom-client', '@bufbuild/protobuf']) {
      assert.ok(info.modules.includes(need), `${need} missing from the hadron-stream image`);
    }
    assert.ok(info.files.includes('/app/packages/stream/dist/main.js'));
    const junk = info.files.filter((f) => /\.test\.js$|\.ts$|\.map$|tsbuildinfo$/.test(f) && !f.includes('/node_modules/'));
    assert.deepEqual(junk, [], 'no tests, sources or maps of our packages');
  });

  await t.test('the archives import into containerd as kind load / k3s ctr import do, under the chart\'s names', async () => {
    const ctrd = await Containerd.start();
    try {
      for (const img of [stream, cli]) {
        // kind load image-archive runs exactly this (plus --snapshotter of the node).
        const r = await ctrd.ctr(['images', 'import', '--all-platforms', '--digests', '--snapshotter', 'native', img.archivePath]);
        assert.equal(r.code, 0, r.stderr);
      }
      const names = (await ctrd.ctr(['images', 'ls', '-q'])).stdout.split('\n');
      assert.ok(names.includes(`localhost/hadron-stream:${VERSION}`), names.join(' '));
      assert.ok(names.includes(`localhost/hadron:${VERSION}`), names.join(' '));
    } finally {
      await ctrd[Symbol.asyncDispose]();
    }
    assert.equal(fs.existsSync(ctrd.dir), false);
  });

  await t.test('a cold build into an empty directory writes the archive and a JSON describing it', async () => {
    const out = path.join(root, 'cold-build');
    const cold = (await buildImages(['hadron'], { outDir: out })).hadron!;
    assert.equal(cold.archivePath, path.join(out, 'hadron.tar'));
    assert.equal(cold.archiveBytes, fs.statSync(cold.archivePath).size);
    assert.deepEqual(fs.readdirSync(out).sort(), ['hadron.json', 'hadron.tar'], 'no work files left');
    const again = (await buildImages(['hadron'], { outDir: out })).hadron!;
    assert.deepEqual(again, cold, 'unchanged inputs: the archive is reused');
  });

  // One partition of stream `events`, as the operator's StatefulSet would run it, on loopback.
  const manifests = path.join(root, 'manifests');
  const data = path.join(root, 'data');
  fs.mkdirSync(manifests);
  fs.mkdirSync(data);
  fs.chmodSync(root, 0o755);
  fs.chmodSync(manifests, 0o755);
  fs.chownSync(data, 65532, 65532);
  const secret = tokenSecret('t-full');
  for (const [f, y] of [['stream.yaml', streamManifest('events', 1)], ['token.yaml', tokenManifest('t-full', { all: true })], ['secret.yaml', secret.yaml]] as const) {
    fs.writeFileSync(path.join(manifests, f), y, { mode: 0o644 });
  }
  const clientPort = await freePortRange(1);
  const metricsPort = await freePortRange(1);
  const url = `http://127.0.0.1:${clientPort}`;
  const startStream = async (): Promise<Container> => {
    const c = podman.run({
      image: stream.ref,
      user: '65532:65532',
      readOnly: true,
      mounts: [
        { host: manifests, container: '/etc/hadron/manifests', readOnly: true },
        { host: data, container: '/var/lib/hadron' },
      ],
      env: {
        CLIENT_PORT: String(clientPort),
        SERVER_PORT: '0',
        METRICS_PORT: String(metricsPort),
        NAMESPACE: 'default',
        STREAM: 'events',
        STATEFULSET: 'events',
        POD_NAME: 'events-0',
        STORAGE_DATA_PATH: '/var/lib/hadron',
        HADRON_MANIFESTS: '/etc/hadron/manifests',
        HADRON_BIND_HOST: '127.0.0.1',
        HADRON_ADVERTISE_TEMPLATE: '127.0.0.1:{port}',
        HADRON_PARTITION_PORT_BASE: String(clientPort),
        HADRON_LOG_LEVEL: 'info',
      },
    });
    await c.waitFor(/"partition server started"/);
    return c;
  };
  const readAll = async (n: number): Promise<Map<string, ReceivedEvent>> => {
    const client = createClient({ url, token: secret.token });
    try {
      const got = new Map<string, ReceivedEvent>();
      const sub = client.subscribe({ group: `check-${Date.now()}`, durable: false, batchSize: 50, startPoint: 'beginning' }, (d) => {
        for (const e of d.events) got.set(e.id, e);
      });
      await until(() => got.size >= n, 30_000, `${n} events from the container`);
      await sub.close();
      return got;
    } finally {
      await client.close();
    }
  };

  let server = await startStream();
  const acks: Array<{ partition: number; offset: number }> = [];

  await t.test('hadron-stream serves publish and subscribe (our client, gRPC over loopback)', async () => {
    const client = createClient({ url, token: secret.token });
    try {
      await client.ready();
      assert.equal(client.partitionCount, 1);
      acks.push(...(await client.publish(Array.from({ length: 20 }, (_, i) => ({ id: `img-${i}`, source: 'images.test', type: 't', data: `payload ${i}` })))));
    } finally {
      await client.close();
    }
    const got = await readAll(20);
    acks.forEach((a, i) => {
      const e = got.get(`img-${i}`);
      assert.ok(e, `img-${i} read back`);
      assert.deepEqual({ partition: e.partition, offset: e.offset }, a);
      assert.equal(Buffer.from(e.data).toString(), `payload ${i}`);
    });
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(metrics.status, 200);
  });

  await t.test('hadron CLI image: --help, and stream pub into the stream container', async () => {
    const help = await podman.runToEnd({ image: cli.ref, args: ['--help'] });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /Usage: hadron <command>/);
    const bad = await podman.runToEnd({ image: cli.ref, args: ['no-such-command'] });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown command `no-such-command`/);
    const pub = await podman.runToEnd({ image: cli.ref, args: ['stream', 'pub', '--id', 'from-cli', '--source', 'cli-image', '--type', 't', 'hello from the CLI image'], env: { HADRON_URL: url, HADRON_TOKEN: secret.token } });
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(pub.stdout, `partition=0 offset=${acks.at(-1)!.offset + 1} id=from-cli`);
    const got = await readAll(21);
    assert.equal(Buffer.from(got.get('from-cli')!.data).toString(), 'hello from the CLI image');
  });

  await t.test('SIGTERM stops it cleanly (exit 0); restarted on the same volume, every event is still there', async () => {
    assert.deepEqual(await podman.stop(server), { code: 0, signal: null });
    server = await startStream();
    const got = await readAll(21);
    assert.equal(got.size, 21);
    acks.forEach((a, i) => assert.deepEqual({ partition: got.get(`img-${i}`)!.partition, offset: got.get(`img-${i}`)!.offset }, a));
    assert.deepEqual(await podman.stop(server), { code: 0, signal: null });
  });
});
