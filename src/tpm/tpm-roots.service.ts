import { createHash, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service';
import { RequestContext } from '../common/actor';
import { Clock } from '../common/clock';
import { DomainError, Errors } from '../common/errors';
import { isUniqueViolation } from '../database/errors';
import { Transactions } from '../database/transactions';
import { readCertificate } from '../pki/tpm/ek-chain';
import { BasicConstraintsExtension } from '../pki/x509-library';
import { TpmManufacturerRoot, TpmRootRepository } from './tpm.repository';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The allow-list of TPM manufacturer roots (admin): an EK certificate must chain to one of them. Changes are audited. */
@Injectable()
export class TpmRootsService {
  constructor(
    private readonly roots: TpmRootRepository,
    private readonly audit: AuditService,
    private readonly transactions: Transactions,
    private readonly clock: Clock,
  ) {}

  list(): Promise<TpmManufacturerRoot[]> {
    return this.roots.list();
  }

  async add(ctx: RequestContext, input: { name: string; certificatePem: string }): Promise<TpmManufacturerRoot> {
    let cert;
    try {
      cert = readCertificate(input.certificatePem, 'certificatePem');
    } catch (err) {
      throw err instanceof DomainError ? Errors.invalidTpmRoot(err.message) : err;
    }
    if (!cert.getExtension(BasicConstraintsExtension)?.ca) throw Errors.invalidTpmRoot('the certificate is not a CA certificate (basicConstraints cA is not true)');
    const now = this.clock.now();
    if (cert.notAfter <= now) throw Errors.invalidTpmRoot(`the certificate expired at ${cert.notAfter.toISOString()}`);
    const der = Buffer.from(cert.rawData);
    const root: TpmManufacturerRoot = {
      id: randomUUID(),
      name: input.name,
      fingerprint: createHash('sha256').update(der).digest('hex'),
      subject: cert.subject,
      notAfter: cert.notAfter.toISOString(),
      certificateDer: der,
      createdAt: now.toISOString(),
    };
    try {
      await this.transactions.run(async () => {
        await this.roots.insert(root);
        await this.audit.record(ctx, {
          action: 'tpm-root.added',
          target: { type: 'tpm-manufacturer-root', id: root.id },
          details: { name: root.name, fingerprint: root.fingerprint, subject: root.subject, notAfter: root.notAfter },
        });
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw Errors.tpmRootExists(`this certificate (${root.fingerprint}) is on the allow-list already`);
      throw err;
    }
    return root;
  }

  async remove(ctx: RequestContext, id: string): Promise<TpmManufacturerRoot> {
    return this.transactions.run(async () => {
      const root = UUID.test(id) ? await this.roots.find(id) : null;
      if (!root || !(await this.roots.delete(id))) throw Errors.tpmRootNotFound(`no TPM manufacturer root ${UUID.test(id) ? id : 'with that id'}`);
      await this.audit.record(ctx, {
        action: 'tpm-root.removed',
        target: { type: 'tpm-manufacturer-root', id },
        details: { name: root.name, fingerprint: root.fingerprint, subject: root.subject },
      });
      return root;
    });
  }
}
