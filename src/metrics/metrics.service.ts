import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Metric, Registry, collectDefaultMetrics } from 'prom-client';
import { BoundHistogram } from './bound-histogram';

/** Fills a metric at scrape time, from data its owning service holds. */
type Collector = () => void | Promise<void>;

/**
 * Every Prometheus metric of the service is declared here, and only here: the services increment, set or observe
 * them. A metric read from data at scrape time gets its collector from the service that owns the data
 * (`collectWith`, called once at start-up). One registry per app instance so tests can run several apps in one process.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly collectors = new Map<object, Collector>();

  readonly authFailures = new Counter({
    name: 'fleetpki_auth_failures_total',
    help: 'Requests refused with 401, by reason (missing, malformed, unknown, revoked key)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly stationAuthFailures = new Counter({
    name: 'fleetpki_station_auth_failures_total',
    help: 'Claim-certificate authentications refused before the claim certificate verified (bad, expired or replayed tokens; untrusted certificates), by reason',
    labelNames: ['method', 'reason'] as const,
    registers: [this.registry],
  });

  readonly exchanges = new Counter({
    name: 'fleetpki_provisioning_exchanges_total',
    help: 'Exchanges by authenticated stations, by outcome (issued, replayed, or the refusal code)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly rateLimited = new Counter({
    name: 'fleetpki_rate_limited_total',
    help: 'Requests refused with 429 RATE_LIMITED, by limit (source, api-key, claim, station; docs/limits.md)',
    labelNames: ['dimension'] as const,
    registers: [this.registry],
  });

  readonly authDenied = new Counter({
    name: 'fleetpki_auth_denied_total',
    help: 'Authenticated requests refused with 403, by role',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });

  readonly certificatesIssued = new Counter({
    name: 'fleetpki_certificates_issued_total',
    help: 'Certificates issued, by profile',
    labelNames: ['profile'] as const,
    registers: [this.registry],
  });

  readonly certificatesRevoked = new Counter({
    name: 'fleetpki_certificates_revoked_total',
    help: 'Certificates revoked, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly outboxJobs = new Counter({
    name: 'fleetpki_outbox_jobs_total',
    help: 'Outbox job runs, by kind and outcome (done, retry, overdue = past OUTBOX_MAX_ATTEMPTS but retried forever, dead)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly crlsGenerated = new Counter({
    name: 'fleetpki_crls_generated_total',
    help: 'CRLs signed',
    registers: [this.registry],
  });

  /** Observed on every request, the OCSP responder's included: a histogram whose series are bound once. */
  readonly groupCommitSize = new Histogram({
    name: 'fleetpki_group_commit_size',
    help: 'Issuances and revocations committed together in one transaction (group commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  readonly httpDuration = new BoundHistogram(
    'fleetpki_http_request_duration_seconds',
    'HTTP request duration by route and status',
    ['method', 'route', 'status'] as const,
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    this.registry,
  );

  readonly ocspSignersCreated = new Counter({
    name: 'fleetpki_ocsp_signers_created_total',
    help: 'Delegated OCSP signing certificates made (each is one signature by the CA key)',
    registers: [],
  });

  /** Cache hits are added at scrape time (the hot path only counts them: OcspService). */
  readonly ocspResponses: Counter<'status' | 'cache'> = new Counter({
    name: 'fleetpki_ocsp_responses_total',
    help: 'OCSP responses by response status (successful, malformedRequest, …) and cache use (hit, miss, none; refresh: an answer kept in memory signed afresh in the background)',
    labelNames: ['status', 'cache'] as const,
    registers: [],
    collect: () => this.collectors.get(this.ocspResponses)?.(),
  });

  /** Read from the database at scrape time (CertificatesService). */
  readonly certificatesExpiring30d: Gauge<'authority_id'> = new Gauge({
    name: 'fleetpki_certificates_expiring_30d',
    help: 'Active certificates whose notAfter is within the next 30 days, per issuing authority',
    labelNames: ['authority_id'] as const,
    registers: [],
    collect: () => this.collectors.get(this.certificatesExpiring30d)?.(),
  });

  /** Read from the database at scrape time (OutboxService): alert when above 0 (docs/operations.md, "Dead jobs"). */
  readonly outboxDeadJobs: Gauge<'kind'> = new Gauge({
    name: 'fleetpki_outbox_dead_jobs',
    help: 'Outbox jobs dead-lettered and not retried (GET /v1/jobs?state=dead), by kind',
    labelNames: ['kind'] as const,
    registers: [],
    collect: () => this.collectors.get(this.outboxDeadJobs)?.(),
  });

  readonly fleetAuditFindings = new Gauge({
    name: 'fleetpki_fleet_audit_findings',
    help: 'Findings of the latest finished fleet audit, by type and severity',
    labelNames: ['type', 'severity'] as const,
    registers: [],
  });

  /** Which process answered the scrape: with WORKERS > 1 each worker answers /metrics for itself (docs/architecture.md, "Workers"). */
  readonly workerInfo = new Gauge({
    name: 'fleetpki_worker_info',
    help: 'Always 1: the worker (1 to WORKERS; 0 when the service is one process) and process id that answered this scrape, whose other metrics are that process’s own',
    labelNames: ['worker', 'pid'] as const,
    registers: [],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fleetpki_' });
    // /metrics lists families in the order they were registered: these follow Node's own metrics.
    const listedLast: Metric[] = [this.ocspSignersCreated, this.ocspResponses, this.certificatesExpiring30d, this.outboxDeadJobs, this.fleetAuditFindings, this.workerInfo];
    for (const metric of listedLast) this.registry.registerMetric(metric);
  }

  /** Has `collect` run at each scrape before `metric` is read; for the service that owns the metric's data. */
  collectWith<T extends string>(metric: Counter<T> | Gauge<T>, collect: Collector): void {
    this.collectors.set(metric, collect);
  }
}
