import { createHash } from 'node:crypto';
import { invocationDeadline, LambdaContextLike, lambdaConfig } from './shared/config';
import { FleetPkiUnavailable, postToFleetPki } from './shared/fleet-pki-client';
import { log } from './shared/logger';

/**
 * The AWS IoT certificate provider Lambda (CreateCertificateProvider, docs/aws-fleet-provisioning.md): every
 * `CreateCertificateFromCsr` of fleet provisioning in the account comes here. The event is relayed as is to Fleet
 * PKI (POST /v1/provisioning/aws-certificate-provider), which runs the claim's exchange; its certificate is returned to
 * AWS IoT. Any refusal, or Fleet PKI being unreachable, throws: AWS IoT then answers the device on the `rejected` topic
 * and no certificate exists.
 */

/** The input AWS IoT gives the certificate provider Lambda (developer guide, "Certificate provider Lambda function input"). */
export interface CertificateProviderEvent {
  certificateSigningRequest: string;
  principalId: string;
  clientId: string;
}

/** Its return value: the signed certificate, PEM. */
export interface CertificateProviderResult {
  certificatePem: string;
}

/** A refusal by Fleet PKI: its problem code and detail, which the failed invocation carries. */
export class CertificateRefused extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = 'CertificateRefused';
  }
}

const HANDLER = 'certificate-provider';

export async function handler(event: CertificateProviderEvent, context?: LambdaContextLike): Promise<CertificateProviderResult> {
  const started = Date.now();
  if (!event || typeof event.certificateSigningRequest !== 'string' || typeof event.principalId !== 'string' || typeof event.clientId !== 'string') {
    log('error', HANDLER, 'event is not a certificate provider input (certificateSigningRequest, principalId, clientId)');
    throw new CertificateRefused('INVALID_EVENT', 400, 'the event lacks certificateSigningRequest, principalId or clientId');
  }
  const fields = { principalId: event.principalId, clientId: event.clientId, csrSha256: createHash('sha256').update(event.certificateSigningRequest).digest('hex') };
  const config = lambdaConfig();
  let res;
  try {
    res = await postToFleetPki(config, '/v1/provisioning/aws-certificate-provider', {
      certificateSigningRequest: event.certificateSigningRequest,
      principalId: event.principalId,
      clientId: event.clientId,
    }, invocationDeadline(config, context));
  } catch (err) {
    const message = err instanceof FleetPkiUnavailable ? err.message : `unexpected: ${(err as Error).message}`;
    log('error', HANDLER, `no certificate: ${message}`, { ...fields, ms: Date.now() - started });
    throw err;
  }
  if ((res.status === 201 || res.status === 200) && typeof res.body.certificatePem === 'string') {
    log('info', HANDLER, res.status === 200 ? 'certificate returned again (retry of the same claim and CSR)' : 'certificate issued', {
      ...fields,
      certificateId: res.body.certificateId,
      deviceSerial: res.body.deviceSerial,
      ms: Date.now() - started,
    });
    return { certificatePem: res.body.certificatePem };
  }
  const code = typeof res.body.code === 'string' ? res.body.code : `HTTP_${res.status}`;
  const detail = typeof res.body.detail === 'string' ? res.body.detail : 'refused';
  log('warn', HANDLER, `refused: ${code}`, { ...fields, status: res.status, detail, ms: Date.now() - started });
  throw new CertificateRefused(code, res.status, detail);
}
