import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { CreatePolicyCommand, IoTClient } from '@aws-sdk/client-iot';
import { Errors } from '../../src/common/errors';
import { buildCsr, deviceKeyAndCsr, testKeyPair } from '../../tools/csr-builder';
import { eventually } from '../support/eventually';
import { IotStandIn } from '../../tools/standins';
import { OpenSslWorkspace } from '../support/openssl';
import { drivers } from '../support/test-app';
import { ServiceContext } from './service-context';
import { assertAuditChainVerifies, assertOpensslVerifies, auditEvents, createCaPair, DAY_MS, pemOf, rejectsWith } from './service-fixtures';

/** The certificate policy that marks a claim certificate (claim-only). */
const CLAIM_POLICY_OID = '2.25.208431984408558211219584812031631249003';

type ClaimInput = Parameters<ServiceContext['claims']['create']>[1];

function csrFor(serial: string): string {
  return deviceKeyAndCsr(serial).csrPem;
}

for (const { driver, skip } of drivers()) {
  describe(`claims and exchange services: ClaimsService, ExchangeService (${driver})`, { skip }, () => {
    const ssl = new OpenSslWorkspace();
    let s: ServiceContext;
    let devices: { rootId: string; issuingId: string };
    let claims: { rootId: string; issuingId: string };

    before(async () => {
      s = await ServiceContext.start(driver);
      devices = await createCaPair(s, 'Exchange Devices');
      claims = await createCaPair(s, 'Exchange Claims', { usage: 'claims' });
    });
    after(async () => {
      await s?.close();
      ssl.cleanup();
    });

    function claimInput(overrides: Partial<ClaimInput> = {}): ClaimInput {
      return {
        name: 'Line 1',
        factory: 'Plant 1',
        line: 'L1',
        claimAuthorityId: claims.issuingId,
        deviceAuthorityId: devices.issuingId,
        maxDevices: 10,
        notAfter: new Date(s.clock.now().getTime() + 7 * DAY_MS).toISOString(),
        thingNameTemplate: 'acme-{serial}',
        claimCertificate: { generateKey: true },
        ...overrides,
      };
    }

    async function exchange(claimId: string, deviceSerial: string, csr = csrFor(deviceSerial), idempotencyKey?: string) {
      return s.exchanges.exchange(await s.station(claimId), { deviceSerial, csr }, idempotencyKey);
    }

    it('creates a claim and its claim certificate together: rows, audit, the generated key; the certificate ends with the claim', async () => {
      const notAfter = new Date(s.clock.now().getTime() + 3 * DAY_MS);
      const created = await s.claims.create(s.admin, claimInput({ notAfter: notAfter.toISOString() }));
      const claim = (await s.stored.claims.findById(created.claim.id))!;
      assert.equal(claim.status, 'active');
      assert.equal(claim.used, 0);
      assert.equal(claim.claimCertificateId, created.claimCertificate.id);
      const certificate = (await s.stored.certificates.findById(claim.claimCertificateId))!;
      assert.equal(certificate.profile, 'claim');
      assert.equal(certificate.authorityId, claims.issuingId);
      assert.equal(certificate.subject, `O=Plant 1, OU=L1, CN=claim ${claim.id}`);
      assert.equal(certificate.notAfter, claim.notAfter);
      assert.equal(await s.stored.certificates.claimOfClaimCertificate(certificate.id), claim.id);

      // The key handed back once is the certified one.
      const x509 = new X509Certificate(certificate.certificateDer);
      const returned = createPublicKey(createPrivateKey(created.privateKeyPem!)).export({ type: 'spki', format: 'der' });
      assert.deepEqual(returned, x509.publicKey.export({ type: 'spki', format: 'der' }));
      assert.match(ssl.text(pemOf(certificate.certificateDer)), new RegExp(`Policy: ${CLAIM_POLICY_OID.replace(/\./g, '\\.')}`));
      await assertOpensslVerifies(s, ssl, certificate);

      const [event] = await auditEvents(s, 'claim.created', claim.id);
      assert.equal(event.details.keyGenerated, true);
      assert.equal(event.details.claimCertificateFingerprint, certificate.fingerprint);
      assert.equal((await auditEvents(s, 'certificate.issued', certificate.id))[0].details.claimId, claim.id);
    });

    it('refuses a bad claim and stores neither the claim nor a certificate', async () => {
      const claimsBefore = (await s.claims.list(undefined, 100)).items.length;
      const certificatesBefore = (await s.certificates.search({ authorityId: claims.issuingId, limit: 100 })).items.length;
      const past = new Date(s.clock.now().getTime() - 1000).toISOString();
      await rejectsWith(s.claims.create(s.admin, claimInput({ notAfter: past })), Errors.invalidClaim);
      await rejectsWith(s.claims.create(s.admin, claimInput({ thingNameTemplate: 'acme-fixed' })), Errors.invalidClaim);
      await rejectsWith(s.claims.create(s.admin, claimInput({ validityDays: 3651 })), Errors.validityTooLong);
      await rejectsWith(s.claims.create(s.admin, claimInput({ claimAuthorityId: devices.issuingId })), Errors.authorityUsageMismatch);
      await rejectsWith(s.claims.create(s.admin, claimInput({ deviceAuthorityId: claims.issuingId })), Errors.authorityUsageMismatch);
      await rejectsWith(s.claims.create(s.admin, claimInput({ claimCertificate: { generateKey: true, csr: csrFor('x') } })), Errors.validation);
      await rejectsWith(s.claims.create(s.admin, claimInput({ profile: 'server' })), Errors.invalidClaim);
      assert.equal((await s.claims.list(undefined, 100)).items.length, claimsBefore);
      assert.equal((await s.certificates.search({ authorityId: claims.issuingId, limit: 100 })).items.length, certificatesBefore);
    });

    it('exchanges a serial for a device certificate: thing name, slot, device row, audit with the station; a retry gets the same certificate', async () => {
      const { claim } = await s.claims.create(s.admin, claimInput({ serialPattern: 'SN-[0-9]{4}' }));
      const csr = csrFor('SN-0001');
      const result = await exchange(claim.id, 'SN-0001', csr);
      assert.equal(result.replayed, false);
      const certificate = (await s.stored.certificates.findById(result.certificate.id))!;
      assert.equal(certificate.thingName, 'acme-SN-0001');
      assert.equal(certificate.claimId, claim.id);
      assert.equal(certificate.authorityId, devices.issuingId);
      assert.deepEqual(certificate.metadata, { deviceSerial: 'SN-0001' });
      assert.equal((await s.stored.claims.findById(claim.id))!.used, 1);
      assert.equal((await s.stored.claims.findProvisioned(claim.id, 'SN-0001'))!.certificateId, certificate.id);
      const [event] = await auditEvents(s, 'certificate.issued', certificate.id);
      assert.equal(event.actorType, 'claim-certificate');
      assert.equal(event.details.deviceSerial, 'SN-0001');
      assert.deepEqual((event.details.station as { name: string }).name, 'service-test-station');
      await assertOpensslVerifies(s, ssl, certificate);

      const retry = await exchange(claim.id, 'SN-0001', csr);
      assert.equal(retry.replayed, true);
      assert.equal(retry.certificate.id, certificate.id);
      assert.equal((await s.stored.claims.findById(claim.id))!.used, 1);
      assert.match(await s.metrics.registry.getSingleMetricAsString('fleetpki_provisioning_exchanges_total'), /outcome="replayed"\} 1\b/);
    });

    it('exchanges arriving together share a group commit and keep the quota, one serial per claim and Idempotency-Keys exact', async () => {
      const groupsBefore = await groupSizes();
      // A claim with 3 slots and 8 exchanges at once: the group needs more slots than are left, rolls back, and each
      // exchange runs again alone: exactly 3 succeed.
      const { claim: small } = await s.claims.create(s.admin, claimInput({ maxDevices: 3 }));
      const crowd = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => exchange(small.id, `GRP-${i}`)));
      const won = crowd.filter((r) => r.status === 'fulfilled');
      assert.equal(won.length, 3);
      for (const lost of crowd.filter((r) => r.status === 'rejected')) assert.equal((lost.reason as { code: string }).code, 'CLAIM_QUOTA_EXHAUSTED');
      assert.equal((await s.stored.claims.findById(small.id))!.used, 3);
      assert.equal((await s.stored.claims.unrevokedCertificateIds(small.id)).length, 3);

      // One serial twice in a group with two keys: one certificate, the other DEVICE_ALREADY_PROVISIONED; the same
      // serial and CSR twice: one certificate, the second a replay of it.
      const { claim } = await s.claims.create(s.admin, claimInput());
      const [a, b] = await Promise.allSettled([exchange(claim.id, 'DUP-1'), exchange(claim.id, 'DUP-1')]);
      assert.deepEqual([a.status, b.status].sort(), ['fulfilled', 'rejected']);
      assert.equal(((a.status === 'rejected' ? a : b) as PromiseRejectedResult).reason.code, 'DEVICE_ALREADY_PROVISIONED');
      const csr = csrFor('DUP-2');
      const [c, d] = await Promise.all([exchange(claim.id, 'DUP-2', csr), exchange(claim.id, 'DUP-2', csr)]);
      assert.equal(c.certificate.id, d.certificate.id);
      assert.deepEqual([c.replayed, d.replayed].sort(), [false, true]);
      // One Idempotency-Key twice at once: one certificate for both.
      const csr3 = csrFor('DUP-3');
      const [e, f] = await Promise.all([exchange(claim.id, 'DUP-3', csr3, 'key-dup-3'), exchange(claim.id, 'DUP-3', csr3, 'key-dup-3')]);
      assert.equal(e.certificate.id, f.certificate.id);
      assert.equal((await s.stored.claims.findById(claim.id))!.used, 3);

      // Two claims in one group: each gets its own slots (and its own last exchange time). These three reach the writer
      // together whatever the machine's speed (on a loaded one, exchanges started together can arrive turns apart).
      const { claim: other } = await s.claims.create(s.admin, claimInput());
      await arrivingTogether(3, () => Promise.all([exchange(claim.id, 'MIX-1'), exchange(other.id, 'MIX-2'), exchange(other.id, 'MIX-3')]));
      assert.equal((await s.stored.claims.findById(claim.id))!.used, 4);
      assert.equal((await s.stored.claims.findById(other.id))!.used, 2);
      // They did share a transaction: the group commit ran a group of more than one.
      assert.ok((await groupSizes()).multi > groupsBefore.multi, 'no group commit held more than one exchange');
      await assertAuditChainVerifies(s);
    });

    /**
     * Runs `work` while the first `count` grouped works it starts (Transactions.runGrouped outside a transaction) are
     * held until all of them have arrived, then handed to the writer in one turn of the event loop, where they form one
     * group. Fails if fewer arrived; whatever happens, nothing stays held for long and runGrouped is itself again.
     */
    async function arrivingTogether<T>(count: number, work: () => Promise<T>): Promise<T> {
      const transactions = s.transactions;
      const runGrouped = transactions.runGrouped;
      const held: (() => void)[] = [];
      const releaseAll = () => {
        transactions.runGrouped = runGrouped;
        for (const release of held.splice(0)) release();
      };
      let arrived = 0;
      transactions.runGrouped = <R>(grouped: () => Promise<R>) =>
        new Promise<R>((resolve, reject) => {
          held.push(() => void (runGrouped.call(transactions, grouped) as Promise<R>).then(resolve, reject));
          if (++arrived === count) releaseAll();
        });
      // Should fewer than `count` ever come, the ones held go after a while and the check below fails, instead of a hang.
      const timer = setTimeout(releaseAll, 10_000);
      try {
        const result = await work();
        assert.equal(arrived, count, `only ${arrived} of ${count} grouped works arrived`);
        return result;
      } finally {
        clearTimeout(timer);
        releaseAll();
      }
    }

    /** How many group commits held more than one work (fleetpki_group_commit_size: count minus the size-1 bucket). */
    async function groupSizes(): Promise<{ multi: number }> {
      const text = await s.metrics.registry.getSingleMetricAsString('fleetpki_group_commit_size');
      const count = Number(/fleetpki_group_commit_size_count(?:\{[^}]*\})? (\d+)/.exec(text)?.[1] ?? 0);
      const ones = Number(/fleetpki_group_commit_size_bucket\{le="1"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
      return { multi: count - ones };
    }

    it('refuses serials outside the claim (pattern, allow-list) with SERIAL_NOT_ALLOWED, audited as provisioning.refused', async () => {
      const { claim } = await s.claims.create(s.admin, claimInput({ serialPattern: 'SN-[0-9]{4}' }));
      await rejectsWith(exchange(claim.id, 'XX-0001'), Errors.serialNotAllowed);
      const [refused] = await auditEvents(s, 'provisioning.refused', claim.id);
      assert.equal(refused.details.code, 'SERIAL_NOT_ALLOWED');
      assert.equal(refused.details.deviceSerial, 'XX-0001');

      const uploaded = await s.allowlists.replace(s.admin, claim.id, (async function* () {
        yield ['SN-0002', 'SN-0005'];
      })());
      assert.equal(uploaded.size, 2);
      assert.equal((await auditEvents(s, 'claim.allowlist-replaced', claim.id))[0].details.size, 2);
      await rejectsWith(exchange(claim.id, 'SN-0003'), Errors.serialNotAllowed);
      assert.equal((await exchange(claim.id, 'SN-0002')).certificate.thingName, 'acme-SN-0002');
      assert.equal((await s.certificates.search({ thingName: 'acme-SN-0003', limit: 10 })).items.length, 0);
    });

    it('stops at maxDevices (CLAIM_QUOTA_EXHAUSTED), also when the early check read a stale count', async () => {
      const { claim } = await s.claims.create(s.admin, claimInput({ maxDevices: 1 }));
      const stale = await s.station(claim.id);
      await exchange(claim.id, 'Q-1');
      await rejectsWith(exchange(claim.id, 'Q-2'), Errors.claimQuotaExhausted);
      // The identity read before the slot was taken passes the early check; the transaction's check refuses.
      await rejectsWith(s.exchanges.exchange(stale, { deviceSerial: 'Q-3', csr: csrFor('Q-3') }, undefined), Errors.claimQuotaExhausted);
      assert.equal((await s.stored.claims.findById(claim.id))!.used, 1);
      assert.equal((await s.certificates.search({ thingName: 'acme-Q-3', limit: 10 })).items.length, 0);
      assert.equal(await s.stored.claims.findProvisioned(claim.id, 'Q-3'), null);
    });

    it('another key for a provisioned serial is refused, unless the claim re-provisions: then the earlier certificate is revoked as superseded', async () => {
      const strict = (await s.claims.create(s.admin, claimInput())).claim;
      await exchange(strict.id, 'R-1');
      await rejectsWith(exchange(strict.id, 'R-1'), Errors.deviceAlreadyProvisioned);

      const lenient = (await s.claims.create(s.admin, claimInput({ allowReprovisioning: true }))).claim;
      const first = await exchange(lenient.id, 'R-1');
      const second = await exchange(lenient.id, 'R-1');
      assert.notEqual(second.certificate.id, first.certificate.id);
      const earlier = (await s.stored.certificates.findById(first.certificate.id))!;
      assert.equal(earlier.status, 'revoked');
      assert.equal(earlier.revocationReason, 'superseded');
      assert.equal((await s.stored.claims.findProvisioned(lenient.id, 'R-1'))!.certificateId, second.certificate.id);
      assert.equal((await s.stored.claims.findById(lenient.id))!.used, 1);
    });

    it('an Idempotency-Key answers its request again, and refuses a different request (IDEMPOTENCY_KEY_REUSED)', async () => {
      const { claim } = await s.claims.create(s.admin, claimInput());
      const csr = csrFor('I-1');
      const first = await exchange(claim.id, 'I-1', csr, 'key-1');
      const again = await exchange(claim.id, 'I-1', csr, 'key-1');
      assert.equal(again.replayed, true);
      assert.equal(again.certificate.id, first.certificate.id);
      await rejectsWith(exchange(claim.id, 'I-2', csrFor('I-2'), 'key-1'), Errors.idempotencyKeyReused);
    });

    it('refuses outside the claim’s window (CLAIM_NOT_YET_VALID, CLAIM_EXPIRED)', async () => {
      const now = s.clock.now().getTime();
      const { claim } = await s.claims.create(s.admin, claimInput({ notBefore: new Date(now + DAY_MS).toISOString(), notAfter: new Date(now + 2 * DAY_MS).toISOString() }));
      await rejectsWith(exchange(claim.id, 'W-1'), Errors.claimNotYetValid);
      s.clock.advance(3 * DAY_MS);
      try {
        await rejectsWith(exchange(claim.id, 'W-1'), Errors.claimExpired);
      } finally {
        s.clock.advance(-3 * DAY_MS);
      }
      assert.equal((await s.stored.claims.findById(claim.id))!.used, 0);
    });

    it('revokes a claim with its claim certificate and, with cascade, its devices; then refuses its station (CLAIM_REVOKED)', async () => {
      const { claim, claimCertificate } = await s.claims.create(s.admin, claimInput());
      const device = (await exchange(claim.id, 'C-1')).certificate;
      await rejectsWith(s.certificates.revoke(s.admin, claimCertificate.id, 'cessationOfOperation'), Errors.useClaimRevocation);

      const revoked = await s.claims.revoke(s.admin, claim.id, 'cessationOfOperation', true);
      assert.equal(revoked.revokedCertificates, 1);
      assert.equal((await s.stored.claims.findById(claim.id))!.status, 'revoked');
      assert.equal((await s.stored.certificates.findById(claimCertificate.id))!.status, 'revoked');
      assert.equal((await s.stored.certificates.findById(device.id))!.status, 'revoked');
      assert.equal((await auditEvents(s, 'claim.revoked', claim.id))[0].details.revokedDeviceCertificates, 1);
      await rejectsWith(exchange(claim.id, 'C-2'), Errors.claimRevoked);
      await rejectsWith(s.claims.revoke(s.admin, claim.id, 'cessationOfOperation', true), Errors.claimAlreadyRevoked);
    });

    it('leaves an audit chain that verifies', async () => {
      await assertAuditChainVerifies(s);
    });
  });

  describe(`exchange with AWS IoT registration, against the IoT stand-in (${driver})`, { skip }, () => {
    let iot: IotStandIn;
    let s: ServiceContext;

    before(async () => {
      iot = await new IotStandIn().start();
      s = await ServiceContext.start(driver, { iot, env: { OUTBOX_POLL_MS: '25', OUTBOX_BACKOFF_BASE_MS: '20', OUTBOX_BACKOFF_MAX_MS: '200' } });
    });
    after(async () => {
      await s?.close();
      await iot?.stop();
    });

    it('registers the device certificate and its thing in AWS IoT through the outbox, with the claim’s group and policy', async () => {
      await new IoTClient({ region: iot.region, endpoint: iot.endpoint }).send(
        new CreatePolicyCommand({ policyName: 'line-policy', policyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] }) }),
      );
      iot.createThingGroup('line-1');
      const devices = await createCaPair(s, 'IoT Devices');
      const claims = await createCaPair(s, 'IoT Claims', { usage: 'claims' });
      await s.iotRegistrations.register(s.admin, devices.issuingId, { certificateMode: 'DEFAULT', autoRegistration: false, setAsActive: true, deviceRegistration: 'api', policyName: 'line-policy' });
      const input = {
        name: 'IoT line',
        factory: 'Plant 2',
        claimAuthorityId: claims.issuingId,
        deviceAuthorityId: devices.issuingId,
        maxDevices: 5,
        notAfter: new Date(s.clock.now().getTime() + DAY_MS).toISOString(),
        thingNameTemplate: 'iot-{serial}',
        claimCertificate: { generateKey: true },
      };
      await rejectsWith(s.claims.create(s.admin, { ...input, iot: { thingGroupName: 'no-such-group' } }), Errors.invalidClaim);
      const { claim } = await s.claims.create(s.admin, { ...input, iot: { thingGroupName: 'line-1', attributes: { line: '1' } } });

      const keyPair = testKeyPair('ec:P-256');
      const { certificate } = await s.exchanges.exchange(await s.station(claim.id), { deviceSerial: 'D-1', csr: buildCsr({ commonName: 'D-1', keyPair }), attributes: { batch: '7' } }, undefined);
      await eventually('the certificate is active in AWS IoT', async () => (await s.stored.certificates.findById(certificate.id))!.iotStatus === 'active', 15_000);
      assert.equal(iot.certificate(certificate.fingerprint)?.status, 'ACTIVE');
      const arn = iot.certificateArn(certificate.fingerprint);
      assert.deepEqual(iot.principalsOf('iot-D-1'), [arn]);
      assert.deepEqual(iot.thingGroupsOf('iot-D-1'), ['line-1']);
      assert.deepEqual(iot.thing('iot-D-1')?.attributes, { line: '1', batch: '7' });
      assert.ok(iot.policiesAttachedTo(arn).includes('line-policy'));
    });
  });
}
