import { X509Certificate } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuthoritiesService } from '../authorities/authorities.service';
import { CertificateRecord } from '../certificates/certificate';
import { CertificatesService } from '../certificates/certificates.service';
import { CsrParser } from '../certificates/csr-parser';
import { RenewalService } from '../certificates/renewal.service';
import { ClaimsService } from '../claims/claims.service';
import { ExchangeService } from '../claims/exchange.service';
import { Errors } from '../common/errors';
import { certificateParts } from '../pki/certificate';
import { decodeSinglePem } from '../pki/der';
import { csrAttributeTypes, csrAttrs, csrPemOfEstBody, csrSubjectAttributes, KEY_ENCRYPTION_ATTRIBUTES, deviceSerialOf, generatedKeyAndCsr, nameAttributes, SERIAL_NUMBER_OID } from '../pki/est';
import { OID } from '../pki/oids';
import { certsOnlyPkcs7 } from '../pki/pkcs7';
import { pkcs12 } from '../pki/pkcs12';
import { EstCaller } from './est-authenticator';
import { EstLabel } from './est-label';

/** What an enrollment answers: the new certificate, and the key when the service made it (serverkeygen). */
export interface EstEnrollment {
  certificate: CertificateRecord;
  /** The certs-only PKCS#7 (DER) holding the new certificate. */
  pkcs7: Buffer;
  /** PKCS#8 DER of the key the service made: handed back once, never stored or logged. */
  privateKeyPkcs8?: Buffer;
}

/**
 * The EST operations (RFC 7030 §4) over the service's own paths: enrollment under a claim label is the factory
 * exchange (ExchangeService, every rule of the claim), under an authority label an issuance (CertificatesService),
 * re-enrollment a renewal (RenewalService). Nothing here decides a rule those services decide. See docs/est.md.
 */
@Injectable()
export class EstService {
  constructor(
    private readonly exchanges: ExchangeService,
    private readonly renewals: RenewalService,
    private readonly certificates: CertificatesService,
    private readonly claims: ClaimsService,
    private readonly authorities: AuthoritiesService,
    private readonly csrs: CsrParser,
  ) {}

  /** /cacerts: the label's issuing CA and each parent up to the root, as a certs-only PKCS#7 (RFC 7030 §4.1.3). */
  async caCertificates(label: EstLabel): Promise<Buffer> {
    const chainPem = await this.authorities.chainPemById(await this.issuingAuthorityId(label));
    const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    return certsOnlyPkcs7(blocks.map((block) => decodeSinglePem(block, ['CERTIFICATE'])));
  }

  /**
   * /csrattrs (RFC 7030 §4.5): the label's key type and signature algorithm, and the subject attributes it reads: a
   * claim label the device serial (serialNumber, else CN); an authority label the CN (device profile: the thing name).
   */
  csrAttributes(label: EstLabel): Buffer {
    return csrAttrs(label.keySpec, label.kind === 'claim' ? [SERIAL_NUMBER_OID, OID.commonName] : [OID.commonName]);
  }

  /** /simpleenroll (RFC 7030 §4.2.1) and /serverkeygen (§4.4): a certificate for the CSR under the label's rules. */
  async enroll(caller: EstCaller, body: string, serverKeygen: boolean): Promise<EstEnrollment> {
    if (caller.kind === 'device') throw new Error('a device re-enrolls; it does not enroll');
    const label = caller.label;
    if (label.attestation === 'tpm') {
      throw Errors.attestationRequired(`EST label "${label.label}" requires TPM attestation, which EST enrollment cannot carry: enroll through POST /v1/provisioning/attestations (docs/hardware-identity.md)`);
    }
    if (serverKeygen && !label.serverKeygen) throw Errors.serverKeygenNotAllowed(`EST label "${label.label}" does not allow serverkeygen`);
    const requestPem = csrPemOfEstBody(body);
    // The request is checked as any CSR (well-formed, signature = proof of possession, key policy), also when its key
    // is then replaced by one the service makes (RFC 7030 §4.4.1: the CSR's key is ignored; its subject is used).
    await this.csrs.parse(requestPem);
    if (serverKeygen) {
      // RFC 7030 §4.4.1.1/§4.4.1.2: a key the client asked to have encrypted must not go out in the clear.
      const asked = csrAttributeTypes(requestPem).find((type) => KEY_ENCRYPTION_ATTRIBUTES[type]);
      if (asked) throw Errors.keyEncryptionNotSupported(`the CSR asks for the key encrypted (${KEY_ENCRYPTION_ATTRIBUTES[asked]}); this service returns it unencrypted inside TLS only`);
    }
    const attributes = csrSubjectAttributes(requestPem);
    let csrPem = requestPem;
    let privateKeyPkcs8: Buffer | undefined;
    let certificate: CertificateRecord;
    if (caller.kind === 'station') {
      const deviceSerial = deviceSerialOf(attributes);
      if (deviceSerial === undefined) throw Errors.invalidSubject('name the device in the CSR subject: serialNumber (2.5.4.5), or the common name');
      if (serverKeygen) ({ csrPem, privateKeyPkcs8 } = await generatedKeyAndCsr(label.keySpec, deviceSerial));
      // The exchange, with every rule of the claim (quota, allow-list, serial pattern, window, idempotency, AWS IoT, audit).
      certificate = (await this.exchanges.exchange(caller.identity, { deviceSerial, csr: csrPem, allocation: label.allocation }, undefined)).certificate;
    } else {
      if (label.kind !== 'authority') throw new Error('an operator enrolls under an authority label only');
      if (serverKeygen) {
        const commonName = attributes.find((a) => a.type === OID.commonName)?.value;
        if (commonName === undefined) throw Errors.invalidSubject('name the certificate in the CSR subject: its common name');
        ({ csrPem, privateKeyPkcs8 } = await generatedKeyAndCsr(label.keySpec, commonName));
      }
      const input = {
        authorityId: label.authorityId,
        csr: csrPem,
        profile: label.profile,
        ...(label.validityDays !== null ? { validityDays: label.validityDays } : {}),
      };
      // The label's allocation, else the profile's (docs/iot-targets.md, "Allocation").
      const iotTargetId = this.certificates.iotTargetFor(input, label.allocation);
      certificate = await this.certificates.issue(caller.ctx, input, { iotTargetId, auditDetails: { est: { label: label.label, serverKeygen } } });
    }
    return { certificate, pkcs7: certsOnlyPkcs7([certificate.certificateDer]), privateKeyPkcs8 };
  }

  /** /serverkeygen?format=p12: the key the service made, its certificate and chain as one password-protected PKCS #12. */
  async pkcs12Of(enrollment: EstEnrollment, password: string): Promise<Buffer> {
    if (!enrollment.privateKeyPkcs8) throw new Error('a PKCS #12 file needs the key the service made (serverkeygen)');
    return pkcs12({
      privateKeyPkcs8Der: enrollment.privateKeyPkcs8,
      certificateDer: enrollment.certificate.certificateDer,
      chainDer: await this.certificates.chainDer(enrollment.certificate.authorityId),
      password,
      friendlyName: enrollment.certificate.thingName ?? enrollment.certificate.serial,
    });
  }

  /**
   * /simplereenroll (RFC 7030 §4.2.2): the renewal of POST /v1/certificates/renew (window, new key, lineage,
   * supersession). The CSR's subject and subjectAltName must be those of the certificate it renews (§4.2.2).
   */
  async reenroll(caller: EstCaller, body: string): Promise<EstEnrollment> {
    if (caller.kind !== 'device') throw new Error('only a device re-enrolls');
    const csrPem = csrPemOfEstBody(body);
    const csr = await this.csrs.parse(csrPem);
    const current = caller.identity.certificate;
    const certificateSubject = nameAttributes(certificateParts(current.certificateDer).subject);
    if (!sameAttributes(csrSubjectAttributes(csrPem), certificateSubject)) {
      throw Errors.invalidSubject('the CSR subject must be the subject of the certificate it renews (RFC 7030 §4.2.2)');
    }
    if (!sameNames([...csr.dnsNames.map((n) => `DNS:${n}`), ...csr.ipAddresses.map((n) => `IP:${n}`)], subjectAltNames(current.certificateDer))) {
      throw Errors.sanNotAllowed('the CSR subjectAltName must be that of the certificate it renews (RFC 7030 §4.2.2)');
    }
    const certificate = await this.renewals.renew(caller.identity, csrPem);
    return { certificate, pkcs7: certsOnlyPkcs7([certificate.certificateDer]) };
  }

  private async issuingAuthorityId(label: EstLabel): Promise<string> {
    return label.kind === 'claim' ? (await this.claims.get(label.claimId)).deviceAuthorityId : label.authorityId;
  }
}

function sameAttributes(a: readonly { type: string; value: string }[], b: readonly { type: string; value: string }[]): boolean {
  return a.length === b.length && a.every((attribute, i) => attribute.type === b[i].type && attribute.value === b[i].value);
}

function sameNames(a: string[], b: string[]): boolean {
  return a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
}

/** The DNS and IP subjectAltNames of a certificate, as "DNS:name" and "IP:address". */
function subjectAltNames(der: Buffer): string[] {
  const text = new X509Certificate(der).subjectAltName;
  if (!text) return [];
  return text.split(', ').flatMap((entry) => (entry.startsWith('DNS:') ? [entry] : entry.startsWith('IP Address:') ? [`IP:${entry.slice('IP Address:'.length)}`] : []));
}
