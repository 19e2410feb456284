import { generateKeyPair, KeyObject, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext } from '../common/actor';
import { AuthoritiesService } from '../authorities/authorities.service';
import { CertificateRecord, IotThingOptions } from '../certificates/certificate';
import { CertificatesService } from '../certificates/certificates.service';
import { Clock } from '../common/clock';
import { creationPage } from '../common/cursor';
import { Errors } from '../common/errors';
import { isoSeconds } from '../common/time';
import { Transactions } from '../database/transactions';
import { IotRegistry } from '../iot/iot-registry';
import { PolicyTemplatesService } from '../iot/policy-templates.service';
import { Allocation, checkAllocation } from '../iot/iot-target';
import { IotTargetsService } from '../iot/iot-targets.service';
import { RevocationReason } from '../pki/crl';
import { ParsedCsr, parseCsr } from '../pki/csr';
import { checkPublicKey } from '../pki/key-policy';
import { decodeSinglePem } from '../pki/der';
import { pkcs12 } from '../pki/pkcs12';
import { findProfile, THING_NAME_PATTERN } from '../pki/profiles';
import { AttestationMode, Claim, renderThingName } from './claim';
import { ClaimRepository } from './claim.repository';
import { compileSerialPattern } from './serial-pattern';
import { DEVICE_SERIAL_PATTERN } from './serial-list';

export type ClaimKeySpec = 'EC_P256' | 'EC_P384' | 'RSA_2048';

export interface CreateClaimInput {
  name: string;
  factory: string;
  line?: string;
  claimAuthorityId: string;
  deviceAuthorityId: string;
  profile?: string;
  validityDays?: number;
  maxDevices: number;
  notBefore?: string;
  notAfter: string;
  serialPattern?: string;
  thingNameTemplate: string;
  iot?: IotThingOptions & { policyTemplate?: string };
  allocation?: Record<string, unknown>;
  allowReprovisioning?: boolean;
  attestation?: AttestationMode;
  claimCertificate: { csr?: string; generateKey?: boolean; keySpec?: ClaimKeySpec };
}

export interface CreatedClaim {
  claim: Claim;
  claimCertificate: CertificateRecord;
  /** PKCS #8 PEM, only when the service generated the key: returned once, never stored. */
  privateKeyPem: string | null;
}

/** A device serial is at most 64 characters; the longest thing name a template can make must still be a valid CN (≤ 64). */
const MAX_SERIAL_LENGTH = 64;
const MAX_THING_NAME_LENGTH = 64;
const generateKeyPairAsync = promisify(generateKeyPair);

@Injectable()
export class ClaimsService {
  constructor(
    private readonly repository: ClaimRepository,
    private readonly authorities: AuthoritiesService,
    private readonly certificates: CertificatesService,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
    private readonly iot: IotRegistry,
    private readonly policyTemplates: PolicyTemplatesService,
    private readonly targets: IotTargetsService,
  ) {}

  /** Creates the claim and its claim certificate in one transaction: neither exists without the other. */
  async create(ctx: RequestContext, input: CreateClaimInput): Promise<CreatedClaim> {
    const now = this.clock.now();
    const notBefore = input.notBefore ? new Date(input.notBefore) : now;
    const notAfter = new Date(input.notAfter);
    if (notAfter <= notBefore) throw Errors.invalidClaim('notAfter must be after notBefore');
    if (notAfter <= now) throw Errors.invalidClaim('notAfter must be in the future');
    if (input.serialPattern !== undefined) compileSerialPattern(input.serialPattern);
    checkThingNameTemplate(input.thingNameTemplate);
    const profile = findProfile(input.profile ?? 'device');
    if (profile.subjectRule !== 'thing-name') throw Errors.invalidClaim(`profile ${profile.name} is not a device profile`);
    if (input.validityDays !== undefined && input.validityDays > profile.maxValidityDays) {
      throw Errors.validityTooLong(`profile ${profile.name} allows at most ${profile.maxValidityDays} days`);
    }
    // Both authorities must be able to issue now, each for its own purpose.
    await this.authorities.leafIssuer(input.deviceAuthorityId, 'devices');
    const claimAuthority = (await this.authorities.leafIssuer(input.claimAuthorityId, 'claims')).authority;
    await this.checkIotNames(input.iot);
    let allocation: Allocation | null = null;
    if (input.allocation !== undefined) {
      checkAllocation(input.allocation);
      await this.targets.checkAllocationTargets(input.allocation);
      allocation = input.allocation;
    }
    const { policyTemplate, ...iotSettings } = input.iot ?? {};
    const policyName = await this.policyTemplates.policyNameFor(iotSettings.policyName, policyTemplate);
    const iot: IotThingOptions | null = input.iot ? { ...iotSettings, ...(policyName ? { policyName } : {}) } : null;

    const { parsedCsr, privateKeyPem } = await this.claimKey(input.claimCertificate);
    const id = randomUUID();
    let claim: Claim | undefined;
    const claimCertificate = await this.certificates.issue(
      ctx,
      // The claim certificate lasts as long as the claim (notAfter below), up to the profile's maximum and the CA's own end.
      { authorityId: claimAuthority.id, csr: '', profile: 'claim', validityDays: findProfile('claim', { internal: true }).maxValidityDays },
      {
        internalProfile: true,
        parsedCsr,
        subject: { commonName: `claim ${id}`, organization: truncate(input.factory, 64), ...(input.line ? { organizationalUnit: truncate(input.line, 64) } : {}) },
        notAfter,
        auditDetails: { claimId: id },
        inTransaction: async (certificate) => {
          claim = {
            id,
            name: input.name,
            factory: input.factory,
            line: input.line ?? null,
            status: 'active',
            claimAuthorityId: claimAuthority.id,
            deviceAuthorityId: input.deviceAuthorityId,
            profile: profile.name,
            validityDays: input.validityDays ?? null,
            maxDevices: input.maxDevices,
            used: 0,
            notBefore: isoSeconds(notBefore),
            notAfter: isoSeconds(notAfter),
            serialPattern: input.serialPattern ?? null,
            thingNameTemplate: input.thingNameTemplate,
            iot,
            allocation,
            allowReprovisioning: input.allowReprovisioning ?? false,
            attestation: input.attestation ?? 'off',
            allowlistSize: null,
            allowlistId: null,
            claimCertificateId: certificate.id,
            lastExchangeAt: null,
            createdAt: now.toISOString(),
            revokedAt: null,
          };
          await this.repository.insert(claim);
          await this.audit.record(ctx, {
            action: 'claim.created',
            target: { type: 'claim', id },
            details: {
              name: claim.name,
              factory: claim.factory,
              line: claim.line,
              claimAuthorityId: claim.claimAuthorityId,
              deviceAuthorityId: claim.deviceAuthorityId,
              profile: claim.profile,
              maxDevices: claim.maxDevices,
              notBefore: claim.notBefore,
              notAfter: claim.notAfter,
              serialPattern: claim.serialPattern,
              thingNameTemplate: claim.thingNameTemplate,
              allowReprovisioning: claim.allowReprovisioning,
              attestation: claim.attestation,
              claimCertificateFingerprint: certificate.fingerprint,
              keyGenerated: privateKeyPem !== null,
            },
          });
        },
      },
    );
    return { claim: claim!, claimCertificate, privateKeyPem };
  }

  /**
   * The key the service generated for a claim, its claim certificate and the chain as one PKCS #12 file, for
   * POST /v1/claims?format=p12 (docs/downloads.md). Made from what create returned: the key is still never stored.
   */
  async claimPkcs12(created: CreatedClaim, password: string): Promise<Buffer> {
    if (created.privateKeyPem === null) throw Errors.validation('a PKCS #12 file needs the key the service generated (claimCertificate.generateKey: true)');
    return pkcs12({
      privateKeyPkcs8Der: decodeSinglePem(created.privateKeyPem, ['PRIVATE KEY']),
      certificateDer: created.claimCertificate.certificateDer,
      chainDer: await this.certificates.chainDer(created.claimCertificate.authorityId),
      password,
      friendlyName: `claim ${created.claim.id}`,
    });
  }

  async get(id: string): Promise<Claim> {
    const claim = await this.repository.findById(id);
    if (!claim) throw Errors.claimNotFound(`no claim with id ${id}`);
    return claim;
  }

  async list(cursor: string | undefined, limit: number): Promise<{ items: Claim[]; nextCursor: string | null }> {
    return creationPage(cursor, limit, (after, n) => this.repository.list(after, n));
  }

  /**
   * Stops the claim at once and revokes its claim certificate; with `cascade`, also every device certificate it
   * provisioned. One transaction (an audit event per certificate and a summary), then one CRL per authority.
   */
  async revoke(ctx: RequestContext, id: string, reason: RevocationReason, cascade: boolean): Promise<{ claim: Claim; revokedCertificates: number }> {
    const claim = await this.get(id);
    const revokedCertificates = await this.transactions.run(async () => {
      if (!(await this.repository.markRevoked(id, isoSeconds(this.clock.now())))) throw Errors.claimAlreadyRevoked(`claim ${id} is already revoked`);
      await this.certificates.revokeInTransaction(ctx, claim.claimCertificateId, reason, { claimId: id }, { claimRevocation: true });
      let count = 0;
      if (cascade) {
        for (const certificateId of await this.repository.unrevokedCertificateIds(id)) {
          if (await this.certificates.revokeInTransaction(ctx, certificateId, reason, { claimId: id, cascade: true })) count++;
        }
      }
      await this.audit.record(ctx, { action: 'claim.revoked', target: { type: 'claim', id }, details: { reason, cascade, revokedDeviceCertificates: count } });
      return count;
    });
    await this.certificates.refreshCrl(claim.claimAuthorityId);
    if (revokedCertificates > 0) await this.certificates.refreshCrl(claim.deviceAuthorityId);
    return { claim: await this.get(id), revokedCertificates };
  }

  /** A thing type or group that AWS IoT does not have would fail every registration later: refuse it now. */
  private async checkIotNames(iot: IotThingOptions | undefined): Promise<void> {
    if (iot?.thingTypeName && !(await this.iot.thingTypeExists(iot.thingTypeName))) {
      throw Errors.invalidClaim(`AWS IoT has no thing type ${iot.thingTypeName}`);
    }
    if (iot?.thingGroupName && !(await this.iot.thingGroupExists(iot.thingGroupName))) {
      throw Errors.invalidClaim(`AWS IoT has no thing group ${iot.thingGroupName}`);
    }
  }

  /** The claim certificate's key: the station's own (CSR), or one made here and handed back once. */
  private async claimKey(request: CreateClaimInput['claimCertificate']): Promise<{ parsedCsr: ParsedCsr; privateKeyPem: string | null }> {
    if ((request.csr === undefined) === (request.generateKey !== true)) {
      throw Errors.validation('claimCertificate needs exactly one of csr or generateKey: true');
    }
    if (request.csr !== undefined) {
      if (request.keySpec !== undefined) throw Errors.validation('claimCertificate.keySpec applies only with generateKey');
      return { parsedCsr: parseCsr(request.csr), privateKeyPem: null };
    }
    const spec = request.keySpec ?? 'EC_P256';
    // Off the event loop: an RSA key takes hundreds of milliseconds to make, which would stall every other client.
    const pair: { publicKey: KeyObject; privateKey: KeyObject } =
      spec === 'RSA_2048'
        ? await generateKeyPairAsync('rsa', { modulusLength: 2048 })
        : await generateKeyPairAsync('ec', { namedCurve: spec === 'EC_P384' ? 'P-384' : 'P-256' });
    const spki = pair.publicKey.export({ format: 'der', type: 'spki' });
    return {
      parsedCsr: { subject: {}, publicKeySpki: spki, publicKey: checkPublicKey(spki), dnsNames: [], ipAddresses: [], otherNames: 0 },
      privateKeyPem: pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    };
  }
}

function checkThingNameTemplate(template: string): void {
  if (!template.includes('{serial}')) throw Errors.invalidClaim('thingNameTemplate must contain {serial}');
  const fixed = template.split('{serial}').join('');
  if (fixed.length > 0 && !THING_NAME_PATTERN.test(fixed)) {
    throw Errors.invalidClaim('thingNameTemplate may hold only letters, digits, ":", "_", "-" besides {serial}');
  }
  if (renderThingName(template, 'x').length > MAX_THING_NAME_LENGTH) {
    throw Errors.invalidClaim(`thingNameTemplate leaves no room for a serial within ${MAX_THING_NAME_LENGTH} characters`);
  }
}

/** The thing name for a serial, or a refusal saying why it is not a valid AWS IoT thing name. */
export function thingNameFor(claim: Claim, deviceSerial: string): string {
  const thingName = renderThingName(claim.thingNameTemplate, deviceSerial);
  if (!THING_NAME_PATTERN.test(thingName) || thingName.length > MAX_THING_NAME_LENGTH) {
    throw Errors.serialNotAllowed(`thing name "${thingName.slice(0, 80)}" is not a valid AWS IoT thing name of at most ${MAX_THING_NAME_LENGTH} characters`);
  }
  return thingName;
}

export function isWellFormedSerial(serial: string): boolean {
  return serial.length <= MAX_SERIAL_LENGTH && DEVICE_SERIAL_PATTERN.test(serial);
}

function truncate(text: string, length: number): string {
  return text.length > length ? text.slice(0, length) : text;
}
