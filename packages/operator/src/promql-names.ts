/**
 * Metric names named by a PromQL expression or a Grafana `label_values(…)` query, for the checks
 * that the chart's dashboard and alert rules only query metrics that exist (alerts.test.ts). A
 * lexical reading, not a parser: enough for the expressions the chart ships (selectors,
 * functions, aggregations with `by`/`without`, vector matching, ranges, Grafana variables).
 */

/** Words that stand where a metric name could but are PromQL keywords. */
const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan']);

/** The distinct metric names `expr` selects, in order of first appearance. */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    // Label values and matchers, ranges (also `$__rate_interval`), grouping label lists: none of
    // them names a metric.
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    // Grafana's label_values(metric, label): the second argument is a label.
    .replace(/\blabel_values\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{\})?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)/g, '($1)');
  const names: string[] = [];
  for (const m of bare.matchAll(/(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const name = m[1]!;
    // Followed by "(": a function or an aggregation.
    if (m[2] !== undefined || KEYWORDS.has(name.toLowerCase()) || names.includes(name)) continue;
    names.push(name);
  }
  return names;
}
