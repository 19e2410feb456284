import { KeyObject, randomInt, randomUUID } from 'node:crypto';
import { JwsAlgorithm } from '../../../src/pki/jws';
import { pemDecode } from '../../../tools/clients/pem';
import { signX5cJwt } from '../../../tools/clients/station-jwt';
import { buildCsr } from '../../../tools/csr-builder';
import { ServiceUnderTest } from './service-under-test';

/**
 * The load of the crash test (docs/crash-safety.md): issuance by API key, factory exchanges by stations (x5c JWT signed
 * with the claim key) and revocations, concurrently, and what the clients were told. A request whose answer never
 * arrived (the service died under it) is kept and sent again after the restart, as a station or an operator would:
 * its outcome then becomes known. Issuances are not sent again (without an idempotency key a retry is a new
 * certificate), so an unanswered issuance may or may not exist: the checks only hold the service to what it answered.
 */

/** Answers a service may legitimately give under load (shedding it), which are neither acknowledgements nor errors. */
const SHEDDING = new Set([429, 503]);
export const REVOCATION_REASONS = ['keyCompromise', 'superseded', 'cessationOfOperation', 'affiliationChanged'] as const;

/** A certificate the service acknowledged (201, or 200 for a replayed exchange). */
export interface AcknowledgedCertificate {
  id: string;
  serial: string;
  certificatePem: string;
  how: 'issued' | 'exchanged';
  round: number;
  claimId?: string;
  deviceSerial?: string;
  csr?: string;
}

export interface Station {
  claimId: string;
  maxDevices: number;
  certificateDer: Buffer;
  privateKey: KeyObject;
  alg: JwsAlgorithm;
  /** Set once the claim answered CLAIM_QUOTA_EXHAUSTED: its stations stop asking. */
  full: boolean;
}

interface PendingExchange {
  station: Station;
  deviceSerial: string;
  csr: string;
}

interface PendingRevocation {
  id: string;
  reason: string;
}

/** Everything the clients were told, across every round and restart. */
export class Ledger {
  readonly certificates = new Map<string, AcknowledgedCertificate>();
  /** Device serials acknowledged per claim (each must take exactly one slot of the claim's quota). */
  readonly exchangedSerials = new Map<string, Set<string>>();
  /** Acknowledged revocations: certificate id → reason. */
  readonly revocations = new Map<string, string>();
  readonly refused: string[] = [];
  pendingExchanges: PendingExchange[] = [];
  pendingRevocations: PendingRevocation[] = [];
  /** Acknowledged certificates not picked for revocation yet. */
  revocable: string[] = [];
  issuances = 0;
  exchanges = 0;
  /** Exchanges sent again after a restart and answered 200 (the first one had committed) or 201 (it had not). */
  retriedExchanges = { replayed: 0, issued: 0 };
  /** Revocations sent again after a restart: 200 (it had not committed) or 409 already revoked (it had). */
  retriedRevocations = { revoked: 0, alreadyRevoked: 0 };

  acknowledge(ack: AcknowledgedCertificate): void {
    const earlier = this.certificates.get(ack.id);
    if (earlier) return;
    this.certificates.set(ack.id, ack);
    this.revocable.push(ack.id);
    if (ack.how === 'issued') this.issuances++;
    else {
      this.exchanges++;
      const serials = this.exchangedSerials.get(ack.claimId!) ?? new Set<string>();
      serials.add(ack.deviceSerial!);
      this.exchangedSerials.set(ack.claimId!, serials);
    }
  }
}

/** A fresh single-use station token for the exchange (test/support/station.ts makes the same for an in-process app). */
function stationToken(station: Station, audience: string): string {
  const now = Math.floor(Date.now() / 1000);
  return signX5cJwt({
    alg: station.alg,
    privateKey: station.privateKey,
    chainDer: [station.certificateDer],
    payload: { aud: audience, iat: now, exp: now + 120, jti: randomUUID(), sub: 'crash-station' },
  });
}

export function stationOf(claim: { id: string; maxDevices: number; claimCertificate: { certificatePem: string } }, privateKey: KeyObject): Station {
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  return {
    claimId: claim.id,
    maxDevices: claim.maxDevices,
    certificateDer: pemDecode(claim.claimCertificate.certificatePem, ['CERTIFICATE'])!,
    privateKey,
    alg: privateKey.asymmetricKeyType === 'rsa' ? 'RS256' : curve === 'secp384r1' ? 'ES384' : 'ES256',
    full: false,
  };
}

type Outcome = { status: number; body: Record<string, unknown> } | 'no answer';

async function send(service: ServiceUnderTest, route: string, body: unknown, authorization: string): Promise<Outcome> {
  try {
    const res = await fetch(`${service.baseUrl}${route}`, {
      method: 'POST',
      headers: { Authorization: authorization, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    // An answer whose body never arrived whole is no answer the client could act on.
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  } catch {
    return 'no answer';
  }
}

/** The settings of one crash test: the service, its CAs and claims, and where the clients write down what they were told. */
export interface LoadTarget {
  service: ServiceUnderTest;
  ledger: Ledger;
  deviceAuthorityId: string;
  stations: Station[];
  /** PUBLIC_BASE_URL + the exchange path: the `aud` of station tokens. */
  exchangeAudience: string;
}

/** One exchange; true when it got an answer (acknowledged, refused for quota, or an error recorded). */
async function exchange(target: LoadTarget, pending: PendingExchange, round: number, retry: boolean): Promise<boolean> {
  const { station, deviceSerial, csr } = pending;
  const res = await send(target.service, '/v1/provisioning/exchange', { deviceSerial, csr }, `Bearer ${stationToken(station, target.exchangeAudience)}`);
  if (res === 'no answer' || SHEDDING.has(res.status)) {
    target.ledger.pendingExchanges.push(pending);
    return false;
  }
  if (res.status === 201 || res.status === 200) {
    const body = res.body as { id: string; serial: string; certificatePem: string };
    target.ledger.acknowledge({ id: body.id, serial: body.serial, certificatePem: body.certificatePem, how: 'exchanged', round, claimId: station.claimId, deviceSerial, csr });
    if (retry) target.ledger.retriedExchanges[res.status === 200 ? 'replayed' : 'issued']++;
    else if (res.status !== 201) target.ledger.refused.push(`round ${round}: first exchange of ${deviceSerial} answered ${res.status}, not 201`);
  } else if (res.status === 409 && res.body.code === 'CLAIM_QUOTA_EXHAUSTED') {
    station.full = true;
  } else {
    target.ledger.refused.push(`round ${round}: exchange ${deviceSerial}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  }
  return true;
}

async function revoke(target: LoadTarget, pending: PendingRevocation, round: number, retry: boolean): Promise<void> {
  const res = await send(target.service, `/v1/certificates/${pending.id}/revoke`, { reason: pending.reason }, `Bearer ${target.service.adminKey}`);
  if (res === 'no answer' || SHEDDING.has(res.status)) {
    target.ledger.pendingRevocations.push(pending);
    return;
  }
  // After a restart, 409 CERTIFICATE_ALREADY_REVOKED says the unanswered first request had committed: acknowledged too.
  const alreadyRevoked = retry && res.status === 409 && res.body.code === 'CERTIFICATE_ALREADY_REVOKED';
  if (res.status === 200 || alreadyRevoked) {
    target.ledger.revocations.set(pending.id, pending.reason);
    if (retry) target.ledger.retriedRevocations[alreadyRevoked ? 'alreadyRevoked' : 'revoked']++;
  } else {
    target.ledger.refused.push(`round ${round}: revoke ${pending.id}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  }
}

/**
 * After a restart: every request left unanswered by the kill is sent again (exchanges with the same serial and CSR,
 * revocations with the same reason), and a few acknowledged exchanges are replayed, which must answer 200 with the
 * certificate acknowledged before (never a second certificate, never a second slot of the quota).
 */
export async function retryUnanswered(target: LoadTarget, round: number, replays = 5): Promise<void> {
  const { ledger } = target;
  const exchanges = ledger.pendingExchanges;
  const revocations = ledger.pendingRevocations;
  ledger.pendingExchanges = [];
  ledger.pendingRevocations = [];
  await Promise.all([...exchanges.map((p) => exchange(target, p, round, true)), ...revocations.map((p) => revoke(target, p, round, true))]);
  const exchanged = [...ledger.certificates.values()].filter((c) => c.how === 'exchanged');
  for (let i = 0; i < Math.min(replays, exchanged.length); i++) {
    const ack = exchanged[randomInt(exchanged.length)];
    const station = target.stations.find((s) => s.claimId === ack.claimId)!;
    const res = await send(target.service, '/v1/provisioning/exchange', { deviceSerial: ack.deviceSerial, csr: ack.csr }, `Bearer ${stationToken(station, target.exchangeAudience)}`);
    if (res === 'no answer' || res.status !== 200 || res.body.id !== ack.id) {
      ledger.refused.push(`round ${round}: replay of exchange ${ack.deviceSerial} gave ${res === 'no answer' ? res : `${res.status} ${JSON.stringify(res.body).slice(0, 200)}`}, not 200 with ${ack.id}`);
    }
  }
  if (ledger.pendingExchanges.length || ledger.pendingRevocations.length) {
    ledger.refused.push(`round ${round}: ${ledger.pendingExchanges.length} exchanges and ${ledger.pendingRevocations.length} revocations unanswered by the restarted service`);
  }
}

export interface RoundCounts {
  issued: number;
  exchanged: number;
  revoked: number;
}

/**
 * One round: closed-loop clients (issuance, exchange, revocation) run until the service dies under them. The kill
 * comes a random 0.5-2 s after the round's first acknowledgement, so it lands in the middle of the mixed load (and of
 * the outbox's AWS IoT jobs, which run meanwhile).
 */
export async function loadAndKill(target: LoadTarget, round: number, clients: { issuers: number; stations: number; revokers: number }): Promise<RoundCounts> {
  const { service, ledger } = target;
  const before = { issued: ledger.issuances, exchanged: ledger.exchanges, revoked: ledger.revocations.size };
  let killed = false;
  let firstAck: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (firstAck = resolve));
  let sequence = 0;

  const issuer = async (c: number) => {
    while (!killed) {
      const thingName = `crash-r${round}-i${c}-${sequence++}`;
      const res = await send(service, '/v1/certificates', { authorityId: target.deviceAuthorityId, csr: buildCsr({ commonName: thingName }), profile: 'device', thingName }, `Bearer ${service.adminKey}`);
      if (res === 'no answer') {
        if (!killed) await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if (res.status === 201) {
        const body = res.body as { id: string; serial: string; certificatePem: string };
        ledger.acknowledge({ id: body.id, serial: body.serial, certificatePem: body.certificatePem, how: 'issued', round });
        firstAck();
      } else if (!SHEDDING.has(res.status)) {
        ledger.refused.push(`round ${round}: issue ${thingName}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      }
    }
  };
  const station = async (c: number) => {
    while (!killed) {
      const open = target.stations.filter((s) => !s.full);
      if (open.length === 0) return;
      const chosen = open[(c + sequence) % open.length];
      const deviceSerial = `SN-r${round}-s${c}-${sequence++}`;
      if (!(await exchange(target, { station: chosen, deviceSerial, csr: buildCsr({ commonName: deviceSerial }) }, round, false)) && !killed) {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  const revoker = async () => {
    while (!killed) {
      if (ledger.revocable.length === 0) {
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      const [id] = ledger.revocable.splice(randomInt(ledger.revocable.length), 1);
      await revoke(target, { id, reason: REVOCATION_REASONS[randomInt(REVOCATION_REASONS.length)] }, round, false);
    }
  };

  const running = [
    ...Array.from({ length: clients.issuers }, (_, c) => issuer(c)),
    ...Array.from({ length: clients.stations }, (_, c) => station(c)),
    ...Array.from({ length: clients.revokers }, () => revoker()),
  ];
  const firstAckTimeout = setTimeout(() => firstAck(), 30_000);
  await started;
  clearTimeout(firstAckTimeout);
  await new Promise((r) => setTimeout(r, randomInt(500, 2001)));
  // Clients stop starting requests now; those in flight die with the service, unanswered (sent again after the restart).
  killed = true;
  await service.kill9();
  await Promise.all(running);
  return { issued: ledger.issuances - before.issued, exchanged: ledger.exchanges - before.exchanged, revoked: ledger.revocations.size - before.revoked };
}
