import { createHash, X509Certificate } from 'node:crypto';
import { AwsCall } from '../http/standin-server';

/** One AWS IoT call as the stand-in received it, with the device certificate it is about (when it names one). */
export interface IotRequestRecord {
  /** Milliseconds since the epoch, when the call arrived. */
  at: number;
  operation: string;
  /** The certificate id (SHA-256 of the DER) the call is about: from the path, the principal ARN, or the PEM sent. */
  certificateId: string | null;
  /** The status the call asks for: UpdateCertificate's newStatus, RegisterCertificate's status. */
  status: string | null;
  /** 'ok', the AWS error it was refused with, or 'dropped'. */
  outcome: string;
}

/** At most this many calls are kept (the oldest are forgotten): a long `npm run dev:iot` session stays bounded. */
const KEPT = 200_000;

/**
 * The request log of the IoT stand-in: every AWS call, in arrival order, with the certificate it names. Tests count
 * calls per certificate and operation with it, e.g. to show that each outbox job reached AWS IoT once
 * (test/e2e/replicas.e2e.ts): `calls` alone counts per operation, not per certificate.
 */
export class IotRequestLog {
  private readonly records: IotRequestRecord[] = [];

  record(call: AwsCall, outcome: string): void {
    if (this.records.length >= KEPT) this.records.splice(0, this.records.length - KEPT + 1);
    this.records.push({ at: Date.now(), operation: call.operation, certificateId: certificateIdOf(call), status: statusOf(call), outcome });
  }

  list(): IotRequestRecord[] {
    return [...this.records];
  }
}

const CERTIFICATE_PATH = /^\/certificates\/([0-9a-fA-F]{64})$/;
const CERTIFICATE_ARN = /:cert\/([0-9a-fA-F]{64})$/;

function certificateIdOf({ url, request, raw }: AwsCall): string | null {
  const inPath = CERTIFICATE_PATH.exec(url.pathname)?.[1];
  if (inPath) return inPath.toLowerCase();
  const principal = request.headers['x-amzn-principal'];
  const fromPrincipal = typeof principal === 'string' ? CERTIFICATE_ARN.exec(principal)?.[1] : undefined;
  if (fromPrincipal) return fromPrincipal.toLowerCase();
  const body = jsonBody(raw);
  const fromTarget = typeof body.target === 'string' ? CERTIFICATE_ARN.exec(body.target)?.[1] : undefined;
  if (fromTarget) return fromTarget.toLowerCase();
  if (typeof body.certificatePem === 'string') {
    try {
      return createHash('sha256').update(new X509Certificate(body.certificatePem).raw).digest('hex');
    } catch {
      return null; // not a certificate: the call itself is refused
    }
  }
  return null;
}

function statusOf({ url, raw }: AwsCall): string | null {
  const newStatus = url.searchParams.get('newStatus');
  if (newStatus) return newStatus;
  const status = jsonBody(raw).status;
  return typeof status === 'string' ? status : null;
}

function jsonBody(raw: string): Record<string, unknown> {
  try {
    const body: unknown = JSON.parse(raw || '{}');
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
