/**
 * The chart's observability: the alert rules (charts/hadron-operator/files/prometheus-rules.yaml)
 * pass `promtool check rules` and their unit tests (`promtool test rules`, series that fire and
 * series that must not), every alert has a test and a runbook section in docs/operations.md, the
 * chart renders exactly that file as a PrometheusRule, and the Grafana dashboard ConfigMap
 * holds valid dashboard JSON whose queries (and the alerts') name only metrics the code exports
 * (the stream's and operator's metric-name constants) and the docs describe. promtool is built from Go
 * modules by `scripts/go-tool.sh promtool` (.ci/run runs it); when it is missing this test fails and says
 * how to build it.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { CHART_DIR, REPO_ROOT, k8sBinDir, run } from './test-support.js';
import { METRIC } from '@hadron/stream/metrics';
import { STREAM_METRIC_NAMES } from '@hadron/stream/metric-names';
import { REPLICATION_METRIC } from '@hadron/stream/replication/metrics';
import { OPERATOR_METRIC } from './metrics.js';
import { metricNamesIn } from './promql-names.js';

const RULES = path.join(CHART_DIR, 'files', 'prometheus-rules.yaml');
const RULE_TESTS = path.join(CHART_DIR, 'files', 'prometheus-rules.test.yaml');
const DASHBOARD = path.join(CHART_DIR, 'files', 'grafana-dashboard.json');

/** Metrics from outside Hadron the chart queries: scrape health, kubelet volume stats, API server. */
const EXTERNAL_METRICS = ['up', 'kubelet_volume_stats_available_bytes', 'kubelet_volume_stats_capacity_bytes', 'apiserver_admission_webhook_rejection_count'];
const KNOWN_METRICS = new Set([...STREAM_METRIC_NAMES, ...Object.values(OPERATOR_METRIC), ...EXTERNAL_METRICS]);
/** docs/metrics.md (partition servers) and docs/operator.md (the operator), `hadron_{a,b}_x` rows expanded. */
const METRICS_DOCS = [path.join(REPO_ROOT, 'docs', 'metrics.md'), path.join(REPO_ROOT, 'docs', 'operator.md')]
  .map((f) => fs.readFileSync(f, 'utf8'))
  .join('\n')
  .replace(/`([a-z_]*)\{([a-z_,]+)\}([a-z_]+)`/g, (_all, pre: string, alts: string, post: string) => alts.split(',').map((a) => `\`${pre}${a}${post}\``).join(' '));

/** A histogram's series name without its `_bucket`/`_sum`/`_count` suffix. */
function baseName(m: string): string {
  return KNOWN_METRICS.has(m) ? m : m.replace(/_(bucket|sum|count)$/, '');
}
/** Documented as `name` or `name{labels}`. */
function isDocumented(m: string): boolean {
  return METRICS_DOCS.includes(`\`${m}\``) || METRICS_DOCS.includes(`\`${m}{`);
}
function isKnownMetric(m: string): boolean {
  return KNOWN_METRICS.has(baseName(m));
}

type Dashboard = {
  panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
  templating: { list: Array<{ query?: string | { query: string } }> };
};
/** Every PromQL (and label_values) query of the dashboard: panel targets and template variables. */
function dashboardQueries(d: Dashboard): string[] {
  const vars = d.templating.list.map((v) => (typeof v.query === 'object' ? v.query.query : undefined)).filter((q): q is string => q !== undefined);
  return [...d.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...vars];
}

type Rules = { groups: Array<{ name: string; rules: Array<{ alert: string; expr: string; annotations: Record<string, string> }> }> };

function promtool(): string {
  const r = spawnSync('bash', [path.join(REPO_ROOT, 'scripts', 'go-tool.sh'), 'promtool', '--where'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').pop()!;
}

describe('alerts and dashboard shipped with the chart', () => {
  let bin: string;
  const rules = parse(fs.readFileSync(RULES, 'utf8')) as Rules;
  const alerts = rules.groups.flatMap((g) => g.rules);

  before(() => {
    bin = promtool();
  });

  it('promtool check rules: the rule file is valid', () => {
    const r = spawnSync(bin, ['check', 'rules', RULES], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${alerts.length} rules found`));
  });

  it('promtool test rules: each alert fires on its series and stays quiet on the others', () => {
    const r = spawnSync(bin, ['test', 'rules', RULE_TESTS], { encoding: 'utf8', cwd: path.dirname(RULE_TESTS) });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /SUCCESS/);
  });

  /** Runs the rule tests against the rule file with `from` replaced by `to`; returns promtool's status and output. */
  function testMutatedRules(from: string, to: string): { status: number | null; out: string } {
    const text = fs.readFileSync(RULES, 'utf8');
    assert.ok(text.includes(from), `the rule file no longer contains ${from}`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hadron-promtool-'));
    try {
      fs.writeFileSync(path.join(dir, 'prometheus-rules.yaml'), text.replace(from, to));
      fs.copyFileSync(RULE_TESTS, path.join(dir, 'prometheus-rules.test.yaml'));
      const r = spawnSync(bin, ['test', 'rules', 'prometheus-rules.test.yaml'], { encoding: 'utf8', cwd: dir });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it('promtool test rules really checks: a rule that never fires fails its test', () => {
    const r = testMutatedRules('expr: up{container="hadron-stream"} == 0', 'expr: up{container="hadron-stream"} == 2');
    assert.notEqual(r.status, 0, 'a broken rule passed its unit test');
    assert.match(r.out, /HadronPartitionDown/);
  });

  it('promtool test rules really checks: "out of sync" alone would page for a busy replica a batch behind', () => {
    // Without the progress guard, a healthy replica under load (in_sync 0 at every scrape while
    // its durable offset advances) fires: the "must not fire" series of the test catches it.
    const r = testMutatedRules('hadron_stream_replica_in_sync == 0\n          and changes(hadron_stream_replica_durable_offset[5m]) == 0', 'hadron_stream_replica_in_sync == 0');
    assert.notEqual(r.status, 0, 'the unguarded rule passed its unit test');
    assert.match(r.out, /HadronReplicaOutOfSync/);
    assert.match(r.out, /replica="1"/, 'the busy replica is the unexpected alert');
  });

  it('every alert has unit tests and a runbook section in docs/operations.md', () => {
    const tests = fs.readFileSync(RULE_TESTS, 'utf8');
    const ops = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
    for (const a of alerts) {
      assert.match(tests, new RegExp(`alertname: ${a.alert}\\n`), `${a.alert} has no promtool test`);
      assert.match(ops, new RegExp(`^### ${a.alert}$`, 'm'), `${a.alert} has no runbook section`);
      assert.equal(a.annotations['runbook_url'], `docs/operations.md#${a.alert.toLowerCase()}`);
    }
  });

  it('the chart renders the rule file as PrometheusRule hadron and the dashboard as a sidecar ConfigMap', async () => {
    const helm = path.join(await k8sBinDir(), 'helm');
    const r = await run(helm, ['template', 'hadron', CHART_DIR, '--namespace', 'hadron', '--kube-version', '1.33.13', '--set', 'prometheusOperator.prometheusRule.enabled=true', '--set', 'grafanaDashboard.enabled=true']);
    assert.equal(r.code, 0, r.stderr);
    const objs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string; labels: Record<string, string> }; spec?: unknown; data?: Record<string, string> } | null).filter((o) => o !== null);
    const rule = objs.find((o) => o.kind === 'PrometheusRule' && o.metadata.name === 'hadron');
    assert.ok(rule, 'PrometheusRule rendered');
    assert.deepEqual(rule.spec, rules, 'the PrometheusRule holds exactly the tested rule file');
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'hadron-grafana-dashboard');
    assert.ok(cm, 'dashboard ConfigMap rendered');
    assert.equal(cm.metadata.labels['grafana_dashboard'], '1');
    assert.deepEqual(JSON.parse(cm.data!['hadron.json']!), JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')));
    // Off by default.
    const plain = await run(helm, ['template', 'hadron', CHART_DIR, '--namespace', 'hadron', '--kube-version', '1.33.13']);
    assert.doesNotMatch(plain.stdout, /kind: PrometheusRule|hadron-grafana-dashboard/);
  });

  it('dashboard and alerts only query metrics the code exports, documented (or the kubelet, API server and scrape metrics)', () => {
    const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as Dashboard;
    assert.ok(dashboard.panels.filter((p) => p.targets).length >= 25, 'dashboard panels');
    const exprs = [...dashboardQueries(dashboard), ...alerts.map((a) => a.expr)];
    const seen = new Set<string>();
    for (const e of exprs) {
      const names = metricNamesIn(e);
      assert.ok(names.length > 0, `no metric found in ${e}`);
      for (const m of names) {
        seen.add(m);
        assert.ok(isKnownMetric(m), `${m} (in ${e}) is not a metric Hadron exports (STREAM_METRIC_NAMES, OPERATOR_METRIC) nor one of ${EXTERNAL_METRICS.join(', ')}`);
        if (m.startsWith('hadron_')) assert.ok(isDocumented(baseName(m)), `${m} (in ${e}) is not documented in docs/metrics.md or docs/operator.md`);
      }
    }
    // What issue 12 asks the dashboard to cover, replication included, by the real names.
    for (const m of [REPLICATION_METRIC.replicaLagEvents, REPLICATION_METRIC.replicaLagSeconds, REPLICATION_METRIC.replicaInSync, REPLICATION_METRIC.replicaDurableOffset]) {
      assert.ok(dashboardQueries(dashboard).some((q) => metricNamesIn(q).includes(m)), `the dashboard has no panel on ${m}`);
    }
    assert.ok(seen.has(METRIC.groupLag) && seen.has(`${METRIC.publishLatency}_bucket`) && seen.has(OPERATOR_METRIC.isLeader));
  });

  it('the metric-name check catches a misspelt or made-up name, and reads functions, labels and ranges as such', () => {
    assert.deepEqual(
      metricNamesIn('histogram_quantile(0.99, sum by (pod, le) (rate(hadron_stream_publish_duration_seconds_bucket{pod=~"$pod", fsync="true"}[$__rate_interval]))) > 0.5 and on (pod) up == 1'),
      ['hadron_stream_publish_duration_seconds_bucket', 'up'],
    );
    assert.deepEqual(metricNamesIn('(max(hadron_operator_is_leader) or vector(0)) < 1'), ['hadron_operator_is_leader']);
    assert.deepEqual(metricNamesIn('label_values(hadron_stream_current_offset{namespace=~"$namespace"}, pod)'), ['hadron_stream_current_offset']);
    assert.deepEqual(metricNamesIn('hadron_tls_certificate_not_after_seconds - time() < 14 * 86400'), ['hadron_tls_certificate_not_after_seconds']);
    for (const wrong of ['hadron_stream_replica_insync', 'hadron_stream_replica_lag_seconds_total', 'kubelet_volume_stats_used_bytes']) {
      assert.equal(isKnownMetric(metricNamesIn(`${wrong}{pod="x"} > 0`)[0]!), false, wrong);
    }
  });

  it('every metric a partition server exports is documented in docs/metrics.md', () => {
    for (const m of STREAM_METRIC_NAMES) assert.ok(METRICS_DOCS.includes(`\`${m}\``), `${m} is not documented in docs/metrics.md`);
  });
});
