/**
 * The control-plane seam (DESIGN.md): a live, changing view of the Streams, Pipelines, Tokens
 * and token Secrets of one namespace. Two implementations feed it: `LocalManifests` (YAML files
 * on disk, used by `hadron dev` and `HADRON_MANIFESTS`) and the Kubernetes watchers. Everything
 * behind the seam is identical in both modes.
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Logger } from 'pino';
import type { Pipeline, Stream, Token, TokenSecret, Trigger } from './manifests/types.js';
import { parseDocument, validatePipelineUpdate, type AnyResource } from './manifests/validate.js';

export interface ControlPlaneView {
  readonly streams: ReadonlyMap<string, Stream>;
  readonly pipelines: ReadonlyMap<string, Pipeline>;
  readonly tokens: ReadonlyMap<string, Token>;
  readonly secrets: ReadonlyMap<string, TokenSecret>;
  /** Triggers (push delivery to HTTP sinks); absent from sources that do not read them. */
  readonly triggers?: ReadonlyMap<string, Trigger>;
}

export const EMPTY_VIEW: ControlPlaneView = Object.freeze({
  streams: new Map(),
  pipelines: new Map(),
  tokens: new Map(),
  secrets: new Map(),
});

export interface ControlPlaneSource extends EventEmitter<{ change: [ControlPlaneView] }> {
  /** Loads the first view; resolves when it is available. Idempotent. */
  start(): Promise<void>;
  view(): ControlPlaneView;
  close(): Promise<void>;
}

type Kind = AnyResource['kind'];

export interface LocalManifestsOptions {
  /** Files or directories (their *.yaml, *.yml, *.json files, not recursive). */
  paths: readonly string[];
  /** Documents with another `metadata.namespace` are ignored; none given = this namespace. */
  namespace: string;
  logger: Logger;
  /** Safety-net rescan interval in ms, on top of file-system notifications (default 1000). */
  pollMs?: number;
  /** Called when the list of problems changes, also to empty (so a fix can be reported). */
  onProblems?: (problems: readonly string[]) => void;
}

/**
 * Reads manifests from disk and re-reads them on change. An invalid document is reported with
 * its reason and ignored, and the last valid version of that object stays in force; a file that
 * fails to parse as YAML keeps all of its last valid objects.
 */
export class LocalManifests extends EventEmitter<{ change: [ControlPlaneView] }> implements ControlPlaneSource {
  private current: ControlPlaneView = EMPTY_VIEW;
  private lastByFile = new Map<string, AnyResource[]>();
  private fingerprint = '';
  private watchers: fs.FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private started = false;
  private reloading: Promise<void> | undefined;
  /** Errors reported by the last reload (for tests and `hadron dev` output). */
  lastErrors: string[] = [];
  /** The files (path, text) the current view was read from, in reading order. */
  private currentSources: ReadonlyArray<{ file: string; text: string }> = [];

  constructor(private readonly opts: LocalManifestsOptions) {
    super();
  }

  view(): ControlPlaneView {
    return this.current;
  }

  /**
   * The texts the current view was read from (set together with it): `hadron dev` hands exactly
   * these to its partitions once it has accepted the view (scale-down safety, issue 10).
   */
  sources(): ReadonlyArray<{ file: string; text: string }> {
    return this.currentSources;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.reload();
    const dirs = new Set<string>();
    for (const p of this.opts.paths) {
      const abs = path.resolve(p);
      const isDir = fs.existsSync(abs) && fs.statSync(abs).isDirectory();
      dirs.add(isDir ? abs : path.dirname(abs));
    }
    for (const d of dirs) {
      try {
        const w = fs.watch(d, () => this.schedule());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch (err) {
        this.opts.logger.warn({ err, dir: d }, 'cannot watch manifests directory; relying on polling');
      }
    }
    this.timer = setInterval(() => this.schedule(), this.opts.pollMs ?? 1000);
    this.timer.unref();
  }

  private schedule(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.reload();
    }, 50);
    this.debounce.unref();
  }

  /** Re-reads everything now; resolves when the new view (if any) is in force. */
  reload(): Promise<void> {
    const run = (this.reloading ?? Promise.resolve()).then(() => this.doReload());
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private listFiles(): string[] {
    const files: string[] = [];
    for (const p of this.opts.paths) {
      const abs = path.resolve(p);
      let st: fs.Stats;
      try {
        st = fs.statSync(abs);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        for (const f of fs.readdirSync(abs).sort()) {
          if (/\.(ya?ml|json)$/.test(f) && !f.startsWith('.')) files.push(path.join(abs, f));
        }
      } else files.push(abs);
    }
    return files;
  }

  private async doReload(): Promise<void> {
    const files = this.listFiles();
    const contents = files.map((f) => {
      try {
        return fs.readFileSync(f, 'utf8');
      } catch {
        return undefined;
      }
    });
    const fp = createHash('sha256')
      .update(files.map((f, i) => `${f}\0${contents[i] ?? ''}`).join('\0'))
      .digest('hex');
    if (fp === this.fingerprint) return;
    this.fingerprint = fp;

    const errors: string[] = [];
    const byFile = new Map<string, AnyResource[]>();
    const prev = this.current;
    const next = {
      streams: new Map<string, Stream>(),
      pipelines: new Map<string, Pipeline>(),
      tokens: new Map<string, Token>(),
      secrets: new Map<string, TokenSecret>(),
      triggers: new Map<string, Trigger>(),
    };
    const previousOf = (kind: Kind, name: string): AnyResource | undefined => {
      const v =
        kind === 'Stream'
          ? prev.streams.get(name)
          : kind === 'Pipeline'
            ? prev.pipelines.get(name)
            : kind === 'Token'
              ? prev.tokens.get(name)
              : kind === 'Trigger'
                ? prev.triggers?.get(name)
                : prev.secrets.get(name);
      return v === undefined ? undefined : ({ kind, value: v } as AnyResource);
    };
    files.forEach((file, i) => {
      const text = contents[i];
      if (text === undefined) return;
      const docs = parseAllDocuments(text);
      const yamlErrors = docs.flatMap((d) => d.errors.map((e) => e.message));
      if (yamlErrors.length) {
        errors.push(`${file}: YAML error: ${yamlErrors[0]}; keeping its last valid objects`);
        byFile.set(file, this.lastByFile.get(file) ?? []);
        return;
      }
      const out: AnyResource[] = [];
      docs.forEach((d, idx) => {
        const raw = d.toJS() as unknown;
        const ns = (raw as { metadata?: { namespace?: unknown } } | null)?.metadata?.namespace;
        if (typeof ns === 'string' && ns !== this.opts.namespace) return;
        const r = parseDocument(raw);
        if (r === null) return;
        const name = String((raw as { metadata?: { name?: unknown } }).metadata?.name ?? '?');
        const kind = String((raw as { kind?: unknown }).kind) as Kind;
        if (!r.ok) {
          const old = previousOf(kind, name);
          errors.push(`${file} (document ${idx + 1}): ${r.errors.join('; ')}${old ? '; keeping the previous valid version' : '; ignored'}`);
          if (old) out.push(old);
          return;
        }
        if (r.value.kind === 'Pipeline') {
          const old = prev.pipelines.get(r.value.value.metadata.name);
          const problems = old ? validatePipelineUpdate(old, r.value.value) : [];
          if (problems.length) {
            errors.push(`${file} (document ${idx + 1}): ${problems.join('; ')}; keeping the previous valid version`);
            out.push({ kind: 'Pipeline', value: old! });
            return;
          }
        }
        out.push(r.value);
      });
      byFile.set(file, out);
    });
    for (const list of byFile.values()) {
      for (const r of list) {
        const map = (
          r.kind === 'Stream' ? next.streams : r.kind === 'Pipeline' ? next.pipelines : r.kind === 'Token' ? next.tokens : r.kind === 'Trigger' ? next.triggers : next.secrets
        ) as Map<string, unknown>;
        const name = r.kind === 'Secret' ? r.value.name : r.value.metadata.name;
        if (map.has(name)) errors.push(`${r.kind} ${name} is defined more than once; the last definition wins`);
        map.set(name, r.value);
      }
    }
    this.lastByFile = byFile;
    const problemsChanged = JSON.stringify(errors) !== JSON.stringify(this.lastErrors);
    this.lastErrors = errors;
    if (problemsChanged) this.opts.onProblems?.(errors);
    for (const e of errors) this.opts.logger.warn({ problem: e }, 'invalid manifest');
    if (viewDigest(next) !== viewDigest(prev)) {
      this.current = next;
      this.currentSources = files.flatMap((file, i) => {
        const text = contents[i];
        return text === undefined ? [] : [{ file, text }];
      });
      this.emit('change', next);
    }
  }

  async close(): Promise<void> {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.timer) clearInterval(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
    await this.reloading;
  }
}

/** A stable digest of a view, to emit `change` only when something really changed. */
export function viewDigest(v: ControlPlaneView): string {
  const secrets = [...v.secrets.values()].map((s) => [s.name, s.hmacKey.toString('base64'), s.token ?? '']);
  return createHash('sha256')
    .update(JSON.stringify([[...v.streams.entries()], [...v.pipelines.entries()], [...v.tokens.entries()], secrets, [...(v.triggers?.entries() ?? [])]]))
    .digest('hex');
}
