import { Injectable } from '@nestjs/common';
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { BoundHistogram } from './bound-histogram';

/** Prometheus metrics. One registry per app instance so tests can run several apps in one process. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

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
  readonly httpDuration = new BoundHistogram(
    'fleetpki_http_request_duration_seconds',
    'HTTP request duration by route and status',
    ['method', 'route', 'status'] as const,
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    this.registry,
  );

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'fleetpki_' });
  }
}
