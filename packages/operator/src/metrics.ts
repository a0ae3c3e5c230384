/**
 * Operator metrics (reference §3.7), with the global labels `namespace` and `pod`, plus the
 * default process metrics. Names are exported constants.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export const OPERATOR_METRIC = {
  isLeader: 'hadron_operator_is_leader',
  leadershipChanges: 'hadron_operator_leadership_changes_total',
  numLeadershipChanges: 'hadron_operator_num_leadership_changes',
  watcherErrors: 'hadron_operator_watcher_errors',
  mutations: 'hadron_operator_mutations_total',
  fencedMutations: 'hadron_operator_fenced_mutations_total',
  reconciles: 'hadron_operator_reconciles_total',
  reconcileErrors: 'hadron_operator_reconcile_errors_total',
  admissions: 'hadron_operator_admission_reviews_total',
  workInProgress: 'hadron_operator_work_in_progress',
} as const;

export class OperatorMetrics {
  readonly registry = new Registry();
  /** 1 while this instance holds the Lease, else 0. */
  readonly isLeader: Gauge;
  /** Changes of the Lease holder observed by this instance (its own acquisitions included). */
  readonly leadershipChanges: Counter;
  /** `spec.leaseTransitions` of the Lease, as the original reported it (a gauge). */
  readonly numLeadershipChanges: Gauge;
  /** List/watch failures of the operator's informers, by resource. */
  readonly watcherErrors: Counter<'resource'>;
  /** Writes to the API (create/apply/patch/delete), by verb and resource. */
  readonly mutations: Counter<'verb' | 'resource'>;
  /** Writes refused because this instance was not (or no longer) the leader. */
  readonly fencedMutations: Counter;
  readonly reconciles: Counter<'kind'>;
  readonly reconcileErrors: Counter<'kind'>;
  readonly admissions: Counter<'resource' | 'allowed'>;
  /** Keys queued or being reconciled (0 = the operator has caught up). */
  readonly workInProgress: Gauge;
  private workSource: () => number = () => 0;

  constructor(labels: { namespace: string; pod: string }) {
    const r = this.registry;
    r.setDefaultLabels(labels);
    collectDefaultMetrics({ register: r });
    this.isLeader = new Gauge({ name: OPERATOR_METRIC.isLeader, help: '1 while this operator instance is the leader.', registers: [r] });
    this.leadershipChanges = new Counter({ name: OPERATOR_METRIC.leadershipChanges, help: 'Lease holder changes observed by this instance.', registers: [r] });
    this.numLeadershipChanges = new Gauge({ name: OPERATOR_METRIC.numLeadershipChanges, help: 'leaseTransitions of the hadron-operator Lease.', registers: [r] });
    this.watcherErrors = new Counter({ name: OPERATOR_METRIC.watcherErrors, help: 'Kubernetes list/watch errors.', labelNames: ['resource'], registers: [r] });
    this.mutations = new Counter({ name: OPERATOR_METRIC.mutations, help: 'Writes to the Kubernetes API.', labelNames: ['verb', 'resource'], registers: [r] });
    this.fencedMutations = new Counter({ name: OPERATOR_METRIC.fencedMutations, help: 'Writes refused because this instance is not the leader.', registers: [r] });
    this.reconciles = new Counter({ name: OPERATOR_METRIC.reconciles, help: 'Reconciliations run.', labelNames: ['kind'], registers: [r] });
    this.reconcileErrors = new Counter({ name: OPERATOR_METRIC.reconcileErrors, help: 'Reconciliations that failed (and were retried).', labelNames: ['kind'], registers: [r] });
    this.admissions = new Counter({ name: OPERATOR_METRIC.admissions, help: 'Admission reviews answered.', labelNames: ['resource', 'allowed'], registers: [r] });
    const self = this;
    this.workInProgress = new Gauge({
      name: OPERATOR_METRIC.workInProgress,
      help: 'Work queue keys queued or being reconciled.',
      registers: [r],
      collect() {
        this.set(self.workSource());
      },
    });
    this.isLeader.set(0);
  }

  /** Where `hadron_operator_work_in_progress` reads its value. */
  setWorkSource(fn: () => number): void {
    this.workSource = fn;
  }
}
