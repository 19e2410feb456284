import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, KeyObject, randomBytes, sign, X509Certificate } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  AddThingToThingGroupCommand,
  AttachPolicyCommand,
  AttachThingPrincipalCommand,
  ConfirmTopicRuleDestinationCommand,
  CreateJobCommand,
  CreatePolicyCommand,
  CreatePolicyVersionCommand,
  CreateThingCommand,
  CreateThingGroupCommand,
  CreateThingTypeCommand,
  CreateTopicRuleDestinationCommand,
  DeleteCACertificateCommand,
  DeletePolicyVersionCommand,
  DeprecateThingTypeCommand,
  DescribeCACertificateCommand,
  DescribeCertificateCommand,
  DescribeJobCommand,
  DescribeThingCommand,
  DescribeThingGroupCommand,
  DescribeThingTypeCommand,
  DetachPolicyCommand,
  DetachThingPrincipalCommand,
  GetJobDocumentCommand,
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRegistrationCodeCommand,
  GetTopicRuleDestinationCommand,
  IoTClient,
  ListAttachedPoliciesCommand,
  ListCertificatesByCACommand,
  ListJobsCommand,
  ListPolicyVersionsCommand,
  ListThingGroupsForThingCommand,
  ListThingPrincipalsCommand,
  ListTopicRuleDestinationsCommand,
  RegisterCACertificateCommand,
  RegisterCACertificateCommandInput,
  RegisterCertificateCommand,
  RegisterCertificateWithoutCACommand,
  SetDefaultPolicyVersionCommand,
  UpdateCACertificateCommand,
  UpdateCertificateCommand,
  UpdateTopicRuleDestinationCommand,
} from '@aws-sdk/client-iot';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { DomainError } from '../../src/common/errors';
import { AwsIotRegistry, iotClient } from '../../src/iot/aws-iot-registry';
import { DEFAULT_POLICY_TEMPLATE, lintIotPolicy } from '../../src/iot/policy-lint';
import { signCertificate } from '../../src/pki/certificate';
import { pemEncode } from '../../src/pki/der';
import { authorityKeyIdentifier, basicConstraints, extendedKeyUsage, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../../src/pki/extensions';
import { buildName } from '../../src/pki/names';
import { OID } from '../../src/pki/oids';
import { randomSerial } from '../../src/pki/serial';
import { digestOf, SigningAlgorithm, SigningKey } from '../../src/pki/signing';
import { IotCertificateRegisteredEvent, IotPolicyView, IotStandIn, IotStandInKnobs } from '../../tools/standins';

// The real AWS SDK runs against the local stand-in only: throw-away credentials keep its default chain from
// looking further (instance metadata, profiles).
process.env.AWS_ACCESS_KEY_ID = 'AKIAFLEETPKITEST0000';
process.env.AWS_SECRET_ACCESS_KEY = 'fleet-pki-test-secret';
process.env.AWS_EC2_METADATA_DISABLED = 'true';
delete process.env.AWS_PROFILE;
delete process.env.AWS_SESSION_TOKEN;

// ---- certificates for the test, made with the project's own encoders ------------------------------------------

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

interface TestCa {
  key: SigningKey;
  spki: Buffer;
  keyId: Buffer;
  name: Buffer;
  der: Buffer;
  pem: string;
}

interface TestLeaf {
  der: Buffer;
  pem: string;
  id: string;
}

function signingKey(privateKey: KeyObject, algorithm: SigningAlgorithm): SigningKey {
  return { algorithm, sign: async (data: Buffer) => sign(digestOf(algorithm), data, privateKey) };
}

const sha256 = (der: Buffer) => createHash('sha256').update(der).digest('hex');

/** A self-signed CA (or, with `ca: false`, a self-signed certificate that is not a CA). */
async function makeCa(options: { ca?: boolean; key?: TestCa['key']; spki?: Buffer; commonName?: string } = {}): Promise<TestCa> {
  let key = options.key;
  let spki = options.spki;
  if (!key || !spki) {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    key = signingKey(pair.privateKey, 'ECDSA_SHA_256');
    spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  }
  const keyId = keyIdentifier(spki);
  const name = buildName({ country: 'US', organization: 'Acme Fleet', commonName: options.commonName ?? `IoT Test CA ${randomBytes(4).toString('hex')}` });
  const now = Date.now();
  const der = await signCertificate(
    {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      subjectPublicKeyInfo: spki,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 365 * DAY),
      extensions: [
        basicConstraints(options.ca ?? true, options.ca === false ? undefined : 0),
        keyUsage(options.ca === false ? [KeyUsageFlags.digitalSignature] : [KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign]),
        subjectKeyIdentifier(keyId),
      ],
    },
    key,
  );
  return { key, spki, keyId, name, der, pem: pemEncode('CERTIFICATE', der) };
}

/** A certificate issued by `issuer`: a device certificate, or a verification certificate when given that CN. */
async function makeLeaf(issuer: TestCa, options: { commonName?: string; rsaBits?: number } = {}): Promise<TestLeaf> {
  const pair = options.rsaBits ? generateKeyPairSync('rsa', { modulusLength: options.rsaBits }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
  const now = Date.now();
  const der = await signCertificate(
    {
      serial: randomSerial(),
      issuer: issuer.name,
      subject: buildName({ commonName: options.commonName ?? `sensor-${randomBytes(4).toString('hex')}` }),
      subjectPublicKeyInfo: spki,
      notBefore: new Date(now - HOUR),
      notAfter: new Date(now + 30 * DAY),
      extensions: [
        basicConstraints(false),
        keyUsage([KeyUsageFlags.digitalSignature]),
        extendedKeyUsage([OID.clientAuth]),
        subjectKeyIdentifier(keyIdentifier(spki)),
        authorityKeyIdentifier(issuer.keyId),
      ],
    },
    issuer.key,
  );
  return { der, pem: pemEncode('CERTIFICATE', der), id: sha256(der) };
}

// ---- SDK helpers ----------------------------------------------------------------------------------------------------

type SdkError = Error & { $metadata: { httpStatusCode?: number }; [field: string]: unknown };

/** Awaits a call AWS must refuse; checks the exception name (and HTTP status) the SDK reports, returns the error. */
async function refused(call: Promise<unknown>, name: string, status?: number): Promise<SdkError> {
  let error: SdkError | undefined;
  try {
    await call;
  } catch (err) {
    error = err as SdkError;
  }
  assert.ok(error, `expected ${name}, but the call succeeded`);
  assert.equal(error.name, name, `expected ${name}, got ${error.name}: ${error.message}`);
  if (status !== undefined) assert.equal(error.$metadata?.httpStatusCode, status, `${name} status`);
  return error;
}

async function hook(iot: IotStandIn, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${iot.endpoint}${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function configure(iot: IotStandIn, knobs: Partial<IotStandInKnobs>): Promise<void> {
  const res = await hook(iot, 'POST', '/_standin/config', knobs);
  assert.equal(res.status, 200);
}

// ---- tests ----------------------------------------------------------------------------------------------------------

describe('AWS IoT stand-in, driven through @aws-sdk/client-iot', () => {
  let iot: IotStandIn;
  let client: IoTClient;
  let registrationCode: string;
  const POLICY_DOCUMENT = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Connect', Resource: '*' }] });

  /** Registers a fresh CA in DEFAULT mode, ACTIVE with auto-registration unless told otherwise. */
  async function registeredCa(input: Partial<RegisterCACertificateCommandInput> = {}): Promise<{ ca: TestCa; certificateId: string }> {
    const ca = await makeCa();
    const verification = await makeLeaf(ca, { commonName: registrationCode });
    const out = await client.send(
      new RegisterCACertificateCommand({
        caCertificate: ca.pem,
        verificationCertificate: verification.pem,
        setAsActive: true,
        allowAutoRegistration: true,
        ...input,
      }),
    );
    return { ca, certificateId: out.certificateId! };
  }

  async function registeredDevice(status: 'ACTIVE' | 'INACTIVE' = 'ACTIVE'): Promise<{ leaf: TestLeaf; arn: string }> {
    const { ca } = await registeredCa();
    const leaf = await makeLeaf(ca);
    const out = await client.send(new RegisterCertificateCommand({ certificatePem: leaf.pem, caCertificatePem: ca.pem, status }));
    return { leaf, arn: out.certificateArn! };
  }

  before(async () => {
    iot = await new IotStandIn().start();
    client = new IoTClient({ region: iot.region, endpoint: iot.endpoint, maxAttempts: 1 });
    registrationCode = (await client.send(new GetRegistrationCodeCommand({}))).registrationCode!;
  });
  after(async () => {
    client?.destroy();
    await iot?.stop();
  });

  describe('CA registration', () => {
    it('hands out one registration code per account and registers a DEFAULT-mode CA whose verification certificate carries it', async () => {
      assert.match(registrationCode, /^[0-9a-f]{64}$/);
      assert.equal((await client.send(new GetRegistrationCodeCommand({}))).registrationCode, registrationCode, 'the code is stable');

      const ca = await makeCa();
      const verification = await makeLeaf(ca, { commonName: registrationCode });
      const roleArn = 'arn:aws:iam::111122223333:role/JITPRole';
      const templateBody = JSON.stringify({ Resources: {} });
      const out = await client.send(
        new RegisterCACertificateCommand({
          caCertificate: ca.pem,
          verificationCertificate: verification.pem,
          setAsActive: true,
          allowAutoRegistration: true,
          registrationConfig: { templateBody, roleArn },
        }),
      );
      assert.equal(out.certificateId, sha256(ca.der), 'the CA certificate id is the SHA-256 of its DER');
      assert.equal(out.certificateArn, `arn:aws:iot:us-east-1:111122223333:cacert/${out.certificateId}`);

      const described = await client.send(new DescribeCACertificateCommand({ certificateId: out.certificateId }));
      const description = described.certificateDescription!;
      assert.equal(description.status, 'ACTIVE');
      assert.equal(description.autoRegistrationStatus, 'ENABLE');
      assert.equal(description.certificateMode, 'DEFAULT');
      assert.equal(description.ownedBy, '111122223333');
      assert.equal(description.certificatePem?.replace(/\s/g, ''), ca.pem.replace(/\s/g, ''));
      assert.ok(description.creationDate instanceof Date && Math.abs(description.creationDate.getTime() - Date.now()) < 60_000, 'timestamps arrive as dates');
      assert.ok(description.validity?.notAfter instanceof Date);
      assert.deepEqual(described.registrationConfig, { templateBody, roleArn });
      assert.equal(iot.caCertificate(out.certificateId!)?.status, 'ACTIVE');
    });

    it('registers a CA INACTIVE with auto-registration off when setAsActive and allowAutoRegistration are not given', async () => {
      const ca = await makeCa();
      const verification = await makeLeaf(ca, { commonName: registrationCode });
      const out = await client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem, verificationCertificate: verification.pem }));
      const description = (await client.send(new DescribeCACertificateCommand({ certificateId: out.certificateId }))).certificateDescription!;
      assert.equal(description.status, 'INACTIVE');
      assert.equal(description.autoRegistrationStatus, 'DISABLE');
    });

    it('refuses a verification certificate whose CN is not the registration code with RegistrationCodeValidationException', async () => {
      const ca = await makeCa();
      const verification = await makeLeaf(ca, { commonName: 'not-the-registration-code' });
      await refused(client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem, verificationCertificate: verification.pem })), 'RegistrationCodeValidationException', 400);
      assert.equal(iot.caCertificate(sha256(ca.der)), undefined, 'nothing was registered');
    });

    it('refuses a verification certificate signed by another key with CertificateValidationException', async () => {
      const ca = await makeCa();
      const impostor = await makeCa({ commonName: 'Impostor' });
      // Same issuer name as the CA, right CN, but signed by a key that is not the CA's: proof of possession fails.
      const verification = await makeLeaf({ ...impostor, name: ca.name, keyId: ca.keyId }, { commonName: registrationCode });
      await refused(client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem, verificationCertificate: verification.pem })), 'CertificateValidationException', 400);
    });

    it('refuses DEFAULT mode without a verification certificate and SNI_ONLY mode with one (InvalidRequestException)', async () => {
      const ca = await makeCa();
      const verification = await makeLeaf(ca, { commonName: registrationCode });
      await refused(client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem })), 'InvalidRequestException', 400);
      await refused(
        client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem, verificationCertificate: verification.pem, certificateMode: 'SNI_ONLY' })),
        'InvalidRequestException',
        400,
      );
    });

    it('refuses a CA certificate without basicConstraints CA:TRUE, and a CA PEM that is not a certificate', async () => {
      const notCa = await makeCa({ ca: false });
      const verification = await makeLeaf(notCa, { commonName: registrationCode });
      await refused(client.send(new RegisterCACertificateCommand({ caCertificate: notCa.pem, verificationCertificate: verification.pem })), 'CertificateValidationException');
      await refused(client.send(new RegisterCACertificateCommand({ caCertificate: 'hello', certificateMode: 'SNI_ONLY' })), 'CertificateValidationException');
    });

    it('refuses the same DEFAULT-mode CA twice with ResourceAlreadyExistsException naming it, but registers an SNI_ONLY CA again', async () => {
      const { ca, certificateId } = await registeredCa();
      const verification = await makeLeaf(ca, { commonName: registrationCode });
      const error = await refused(
        client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem, verificationCertificate: verification.pem })),
        'ResourceAlreadyExistsException',
        409,
      );
      assert.equal(error.resourceId, certificateId);
      assert.equal(error.resourceArn, iot.caCertificateArn(certificateId));

      const sni = await makeCa();
      const first = await client.send(new RegisterCACertificateCommand({ caCertificate: sni.pem, certificateMode: 'SNI_ONLY', setAsActive: true }));
      const second = await client.send(new RegisterCACertificateCommand({ caCertificate: sni.pem, certificateMode: 'SNI_ONLY', setAsActive: true }));
      assert.equal(second.certificateId, first.certificateId);
      const description = (await client.send(new DescribeCACertificateCommand({ certificateId: first.certificateId }))).certificateDescription!;
      assert.equal(description.certificateMode, 'SNI_ONLY');
    });

    it('refuses DEFAULT mode for a CA another account holds in DEFAULT mode, and accepts it in SNI_ONLY mode', async () => {
      const ca = await makeCa();
      iot.claimCaInAnotherAccount(ca.pem);
      const verification = await makeLeaf(ca, { commonName: registrationCode });
      await refused(client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem, verificationCertificate: verification.pem })), 'ResourceAlreadyExistsException', 409);
      const out = await client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem, certificateMode: 'SNI_ONLY' }));
      assert.equal(out.certificateId, sha256(ca.der));
    });

    it('refuses a registration config with a template but no role, and a template name that does not exist', async () => {
      const ca = await makeCa();
      await refused(
        client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem, certificateMode: 'SNI_ONLY', registrationConfig: { templateBody: '{}' } })),
        'InvalidRequestException',
      );
      await refused(
        client.send(new RegisterCACertificateCommand({ caCertificate: ca.pem, certificateMode: 'SNI_ONLY', registrationConfig: { templateName: 'nope' } })),
        'ResourceNotFoundException',
        404,
      );
    });

    it('updates a CA status and auto-registration, deletes it only once INACTIVE, then answers 404 for it', async () => {
      const { certificateId } = await registeredCa();
      await refused(client.send(new DeleteCACertificateCommand({ certificateId })), 'CertificateStateException', 406);
      await client.send(new UpdateCACertificateCommand({ certificateId, newStatus: 'INACTIVE', newAutoRegistrationStatus: 'DISABLE' }));
      const description = (await client.send(new DescribeCACertificateCommand({ certificateId }))).certificateDescription!;
      assert.equal(description.status, 'INACTIVE');
      assert.equal(description.autoRegistrationStatus, 'DISABLE');
      assert.equal(description.customerVersion, 2);
      await refused(client.send(new UpdateCACertificateCommand({ certificateId, newStatus: 'REVOKED' as 'ACTIVE' })), 'InvalidRequestException', 400);
      await client.send(new DeleteCACertificateCommand({ certificateId }));
      await refused(client.send(new DescribeCACertificateCommand({ certificateId })), 'ResourceNotFoundException', 404);
      await refused(client.send(new DescribeCACertificateCommand({ certificateId: 'not-an-id' })), 'InvalidRequestException', 400);
    });
  });

  describe('device certificates', () => {
    it('registers a device certificate under an ACTIVE CA with its SHA-256 id, CA id and status, and lists it by CA', async () => {
      const { ca, certificateId: caId } = await registeredCa();
      const leaf = await makeLeaf(ca);
      const out = await client.send(new RegisterCertificateCommand({ certificatePem: leaf.pem, status: 'ACTIVE' }));
      assert.equal(out.certificateId, leaf.id);
      assert.equal(out.certificateArn, `arn:aws:iot:us-east-1:111122223333:cert/${leaf.id}`);
      const description = (await client.send(new DescribeCertificateCommand({ certificateId: leaf.id }))).certificateDescription!;
      assert.equal(description.status, 'ACTIVE');
      assert.equal(description.caCertificateId, caId);
      assert.equal(description.certificateMode, 'DEFAULT');
      assert.ok(description.lastModifiedDate instanceof Date);

      const other = await makeLeaf(ca);
      await client.send(new RegisterCertificateCommand({ certificatePem: other.pem, caCertificatePem: ca.pem }));
      assert.equal(iot.certificate(other.id)?.status, 'INACTIVE', 'without a status a certificate is registered INACTIVE');
      const listed = await client.send(new ListCertificatesByCACommand({ caCertificateId: caId, ascendingOrder: true, pageSize: 1 }));
      assert.deepEqual(listed.certificates?.map((c) => c.certificateId), [leaf.id]);
      assert.ok(listed.nextMarker, 'a second page is announced');
      const rest = await client.send(new ListCertificatesByCACommand({ caCertificateId: caId, ascendingOrder: true, pageSize: 1, marker: listed.nextMarker }));
      assert.deepEqual(rest.certificates?.map((c) => c.certificateId), [other.id]);
      assert.equal(rest.nextMarker, undefined);
    });

    it('refuses a device certificate whose CA is INACTIVE (InvalidRequestException) or not registered (CertificateValidationException)', async () => {
      const { ca, certificateId } = await registeredCa({ setAsActive: false });
      const leaf = await makeLeaf(ca);
      await refused(client.send(new RegisterCertificateCommand({ certificatePem: leaf.pem, caCertificatePem: ca.pem, status: 'ACTIVE' })), 'InvalidRequestException', 400);
      await refused(client.send(new RegisterCertificateCommand({ certificatePem: leaf.pem, status: 'ACTIVE' })), 'InvalidRequestException', 400);
      await client.send(new UpdateCACertificateCommand({ certificateId, newStatus: 'ACTIVE' }));
      await client.send(new RegisterCertificateCommand({ certificatePem: leaf.pem, caCertificatePem: ca.pem, status: 'ACTIVE' }));

      const unknown = await makeCa();
      const orphan = await makeLeaf(unknown);
      await refused(client.send(new RegisterCertificateCommand({ certificatePem: orphan.pem, caCertificatePem: unknown.pem })), 'CertificateValidationException', 400);
      await refused(client.send(new RegisterCertificateCommand({ certificatePem: orphan.pem })), 'CertificateValidationException', 400);
      assert.equal(iot.certificate(orphan.id), undefined);
    });

    it('refuses a device certificate with a caCertificatePem that did not sign it', async () => {
      const { ca } = await registeredCa();
      const { ca: otherCa } = await registeredCa();
      const leaf = await makeLeaf(ca);
      await refused(client.send(new RegisterCertificateCommand({ certificatePem: leaf.pem, caCertificatePem: otherCa.pem })), 'CertificateValidationException');
    });

    it('refuses the same device certificate twice with ResourceAlreadyExistsException carrying resourceId and resourceArn', async () => {
      const { leaf, arn } = await registeredDevice();
      const error = await refused(client.send(new RegisterCertificateCommand({ certificatePem: leaf.pem, status: 'ACTIVE' })), 'ResourceAlreadyExistsException', 409);
      assert.equal(error.resourceId, leaf.id);
      assert.equal(error.resourceArn, arn);
      await refused(client.send(new RegisterCertificateWithoutCACommand({ certificatePem: leaf.pem })), 'ResourceAlreadyExistsException', 409);
    });

    it('registers a certificate without its CA in SNI_ONLY mode, with no CA id', async () => {
      const unregistered = await makeCa();
      const leaf = await makeLeaf(unregistered);
      const out = await client.send(new RegisterCertificateWithoutCACommand({ certificatePem: leaf.pem, status: 'ACTIVE' }));
      assert.equal(out.certificateId, leaf.id);
      const description = (await client.send(new DescribeCertificateCommand({ certificateId: leaf.id }))).certificateDescription!;
      assert.equal(description.certificateMode, 'SNI_ONLY');
      assert.equal(description.caCertificateId, undefined);
      assert.equal(description.status, 'ACTIVE');
    });

    it('refuses device certificates with keys AWS IoT does not accept (RSA below 2048 bits)', async () => {
      const { ca } = await registeredCa();
      const weak = await makeLeaf(ca, { rsaBits: 1024 });
      await refused(client.send(new RegisterCertificateCommand({ certificatePem: weak.pem, status: 'ACTIVE' })), 'CertificateValidationException', 400);
      const strong = await makeLeaf(ca, { rsaBits: 2048 });
      await client.send(new RegisterCertificateCommand({ certificatePem: strong.pem, status: 'ACTIVE' }));
    });

    it('moves a certificate between ACTIVE and INACTIVE, and keeps a REVOKED one revoked (CertificateStateException, HTTP 406)', async () => {
      const { leaf } = await registeredDevice();
      const status = async () => (await client.send(new DescribeCertificateCommand({ certificateId: leaf.id }))).certificateDescription!.status;
      await client.send(new UpdateCertificateCommand({ certificateId: leaf.id, newStatus: 'INACTIVE' }));
      assert.equal(await status(), 'INACTIVE');
      await client.send(new UpdateCertificateCommand({ certificateId: leaf.id, newStatus: 'ACTIVE' }));
      assert.equal(await status(), 'ACTIVE');
      await client.send(new UpdateCertificateCommand({ certificateId: leaf.id, newStatus: 'REVOKED' }));
      assert.equal(await status(), 'REVOKED');
      await refused(client.send(new UpdateCertificateCommand({ certificateId: leaf.id, newStatus: 'ACTIVE' })), 'CertificateStateException', 406);
      await refused(client.send(new UpdateCertificateCommand({ certificateId: leaf.id, newStatus: 'INACTIVE' })), 'CertificateStateException', 406);
      assert.equal(await status(), 'REVOKED');
    });

    it('refuses PENDING_ACTIVATION, PENDING_TRANSFER and unknown statuses as UpdateCertificate targets, and unknown certificates with 404', async () => {
      const { leaf } = await registeredDevice();
      for (const newStatus of ['PENDING_ACTIVATION', 'PENDING_TRANSFER', 'REGISTER_ACTIVE'] as const) {
        await refused(client.send(new UpdateCertificateCommand({ certificateId: leaf.id, newStatus: newStatus as 'ACTIVE' })), 'InvalidRequestException', 400);
      }
      assert.equal(iot.certificate(leaf.id)?.status, 'ACTIVE');
      await refused(client.send(new UpdateCertificateCommand({ certificateId: 'ab'.repeat(32), newStatus: 'INACTIVE' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new DescribeCertificateCommand({ certificateId: 'ab'.repeat(32) })), 'ResourceNotFoundException', 404);
    });

    it("lets a test change a certificate's status behind the service's back, over HTTP and in code", async () => {
      const { leaf } = await registeredDevice();
      const res = await hook(iot, 'POST', `/_standin/certificates/${leaf.id}/status`, { status: 'REVOKED' });
      assert.equal(res.status, 200);
      assert.equal((await client.send(new DescribeCertificateCommand({ certificateId: leaf.id }))).certificateDescription!.status, 'REVOKED');
      iot.setCertificateStatus(leaf.id, 'INACTIVE');
      assert.equal((await client.send(new DescribeCertificateCommand({ certificateId: leaf.id }))).certificateDescription!.status, 'INACTIVE');
    });
  });

  describe('things, principals and policies', () => {
    it('creates a thing idempotently for the same attributes, refuses different ones, and answers 404 for unknown things', async () => {
      const thingName = `thing-${randomBytes(4).toString('hex')}`;
      const attributePayload = { attributes: { serial: 'SN-0042', model: 'm1' } };
      const first = await client.send(new CreateThingCommand({ thingName, attributePayload }));
      assert.equal(first.thingArn, `arn:aws:iot:us-east-1:111122223333:thing/${thingName}`);
      const again = await client.send(new CreateThingCommand({ thingName, attributePayload: { attributes: { model: 'm1', serial: 'SN-0042' } } }));
      assert.equal(again.thingId, first.thingId, 'the same thing comes back');
      const error = await refused(client.send(new CreateThingCommand({ thingName, attributePayload: { attributes: { serial: 'other' } } })), 'ResourceAlreadyExistsException', 409);
      assert.equal(error.resourceArn, first.thingArn);

      const described = await client.send(new DescribeThingCommand({ thingName }));
      assert.equal(described.thingId, first.thingId);
      assert.deepEqual(described.attributes, attributePayload.attributes);
      assert.equal(described.defaultClientId, thingName);
      await refused(client.send(new DescribeThingCommand({ thingName: 'no-such-thing' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new CreateThingCommand({ thingName: 'has spaces' })), 'InvalidRequestException', 400);
    });

    it('attaches a policy and a thing to a certificate (twice without complaint), lists and detaches them', async () => {
      const { leaf, arn } = await registeredDevice();
      const policyName = `fleet-${randomBytes(4).toString('hex')}`;
      const created = await client.send(new CreatePolicyCommand({ policyName, policyDocument: POLICY_DOCUMENT }));
      assert.equal(created.policyArn, `arn:aws:iot:us-east-1:111122223333:policy/${policyName}`);
      assert.equal((await client.send(new GetPolicyCommand({ policyName }))).policyDocument, POLICY_DOCUMENT);
      await refused(client.send(new CreatePolicyCommand({ policyName, policyDocument: POLICY_DOCUMENT })), 'ResourceAlreadyExistsException', 409);

      await client.send(new AttachPolicyCommand({ policyName, target: arn }));
      await client.send(new AttachPolicyCommand({ policyName, target: arn }));
      const listed = await client.send(new ListAttachedPoliciesCommand({ target: arn }));
      assert.deepEqual(listed.policies, [{ policyName, policyArn: created.policyArn }]);
      assert.deepEqual(iot.policiesAttachedTo(arn), [policyName]);

      const thingName = `thing-${randomBytes(4).toString('hex')}`;
      await client.send(new CreateThingCommand({ thingName }));
      await client.send(new AttachThingPrincipalCommand({ thingName, principal: arn }));
      await client.send(new AttachThingPrincipalCommand({ thingName, principal: arn }));
      assert.deepEqual((await client.send(new ListThingPrincipalsCommand({ thingName }))).principals, [arn]);
      assert.deepEqual(iot.principalsOf(thingName), [arn]);
      assert.deepEqual(iot.thingsOf(arn), [thingName]);

      await client.send(new DetachThingPrincipalCommand({ thingName, principal: arn }));
      await client.send(new DetachPolicyCommand({ policyName, target: arn }));
      assert.deepEqual(iot.principalsOf(thingName), []);
      assert.deepEqual(iot.policiesAttachedTo(arn), []);
      assert.equal(iot.certificate(leaf.id)?.status, 'ACTIVE');
    });

    it('refuses to attach unknown policies, things and certificates (ResourceNotFoundException) and malformed principals', async () => {
      const { arn } = await registeredDevice();
      const policyName = `fleet-${randomBytes(4).toString('hex')}`;
      await client.send(new CreatePolicyCommand({ policyName, policyDocument: POLICY_DOCUMENT }));
      const thingName = `thing-${randomBytes(4).toString('hex')}`;
      await client.send(new CreateThingCommand({ thingName }));
      const unknownCert = iot.certificateArn('cd'.repeat(32));

      await refused(client.send(new AttachPolicyCommand({ policyName: 'no-such-policy', target: arn })), 'ResourceNotFoundException', 404);
      await refused(client.send(new AttachPolicyCommand({ policyName, target: unknownCert })), 'ResourceNotFoundException', 404);
      await refused(client.send(new AttachThingPrincipalCommand({ thingName: 'no-such-thing', principal: arn })), 'ResourceNotFoundException', 404);
      await refused(client.send(new AttachThingPrincipalCommand({ thingName, principal: unknownCert })), 'ResourceNotFoundException', 404);
      await refused(client.send(new AttachThingPrincipalCommand({ thingName, principal: 'not-an-arn' })), 'InvalidRequestException', 400);
      await refused(client.send(new GetPolicyCommand({ policyName: 'no-such-policy' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new CreatePolicyCommand({ policyName: `bad-${policyName}`, policyDocument: '{not json' })), 'MalformedPolicyException', 400);
    });

    it('keeps an EXCLUSIVE_THING principal on one thing', async () => {
      const { arn } = await registeredDevice();
      const [a, b] = [`thing-a-${randomBytes(4).toString('hex')}`, `thing-b-${randomBytes(4).toString('hex')}`];
      await client.send(new CreateThingCommand({ thingName: a }));
      await client.send(new CreateThingCommand({ thingName: b }));
      await client.send(new AttachThingPrincipalCommand({ thingName: a, principal: arn, thingPrincipalType: 'EXCLUSIVE_THING' }));
      await refused(client.send(new AttachThingPrincipalCommand({ thingName: b, principal: arn })), 'InvalidRequestException', 400);
    });
  });

  describe('policy versions', () => {
    const unique = () => `fleet-${randomBytes(4).toString('hex')}`;
    const doc = (topic: string) => JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iot:Publish', Resource: `arn:aws:iot:*:*:topic/${topic}` }] });

    it('makes version 1 the default on CreatePolicy, adds versions (default only when asked) and answers the default document on GetPolicy', async () => {
      const policyName = unique();
      const created = await client.send(new CreatePolicyCommand({ policyName, policyDocument: doc('a') }));
      assert.equal(created.policyVersionId, '1');
      let current = await client.send(new GetPolicyCommand({ policyName }));
      assert.equal(current.defaultVersionId, '1');
      assert.equal(current.policyDocument, doc('a'));

      const second = await client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc('b') }));
      assert.equal(second.policyVersionId, '2');
      assert.equal(second.isDefaultVersion, false);
      assert.equal(second.policyArn, created.policyArn);
      assert.equal((await client.send(new GetPolicyCommand({ policyName }))).policyDocument, doc('a'), 'a version not set as default changes nothing');

      const third = await client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc('c'), setAsDefault: true }));
      assert.equal(third.policyVersionId, '3');
      assert.equal(third.isDefaultVersion, true);
      current = await client.send(new GetPolicyCommand({ policyName }));
      assert.equal(current.defaultVersionId, '3');
      assert.equal(current.policyDocument, doc('c'));
      assert.ok(current.lastModifiedDate instanceof Date);

      const listed = await client.send(new ListPolicyVersionsCommand({ policyName }));
      assert.deepEqual(
        listed.policyVersions?.map((v) => [v.versionId, v.isDefaultVersion]),
        [
          ['1', false],
          ['2', false],
          ['3', true],
        ],
      );
      assert.ok(listed.policyVersions?.every((v) => v.createDate instanceof Date));

      const two = await client.send(new GetPolicyVersionCommand({ policyName, policyVersionId: '2' }));
      assert.equal(two.policyDocument, doc('b'));
      assert.equal(two.policyName, policyName);
      assert.equal(two.isDefaultVersion, false);
      assert.ok(two.creationDate instanceof Date);

      const view = iot.policy(policyName)!;
      assert.equal(view.defaultVersionId, '3');
      assert.deepEqual(view.document, JSON.parse(doc('c')));
      assert.equal(view.documentText, doc('c'));
      assert.deepEqual(view.versions.map((v) => [v.versionId, v.isDefaultVersion]), [['1', false], ['2', false], ['3', true]]);
      assert.equal(iot.policyDocument(policyName), doc('c'));
      assert.equal(iot.policy('no-such-policy'), undefined);

      const res = await hook(iot, 'GET', `/_standin/policies/${policyName}`);
      assert.equal(res.status, 200);
      assert.equal((res.body as unknown as IotPolicyView).defaultVersionId, '3');
      assert.equal((await hook(iot, 'GET', '/_standin/policies/no-such-policy')).status, 404);
    });

    it('refuses a sixth version with VersionsLimitExceededException (HTTP 409) until one is deleted, and never reuses a version id', async () => {
      const policyName = unique();
      await client.send(new CreatePolicyCommand({ policyName, policyDocument: doc('v1') }));
      for (let i = 2; i <= 5; i++) await client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc(`v${i}`) }));
      await refused(client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc('v6'), setAsDefault: true })), 'VersionsLimitExceededException', 409);
      assert.equal((await client.send(new GetPolicyCommand({ policyName }))).defaultVersionId, '1', 'the refused version did not become the default');

      await client.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: '2' }));
      const next = await client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc('v6'), setAsDefault: true }));
      assert.equal(next.policyVersionId, '6');
      const ids = (await client.send(new ListPolicyVersionsCommand({ policyName }))).policyVersions?.map((v) => v.versionId);
      assert.deepEqual(ids, ['1', '3', '4', '5', '6']);
      await refused(client.send(new GetPolicyVersionCommand({ policyName, policyVersionId: '2' })), 'ResourceNotFoundException', 404);
    });

    it('refuses to delete the default version (DeleteConflictException, HTTP 409), and deletes it once another version is the default', async () => {
      const policyName = unique();
      await client.send(new CreatePolicyCommand({ policyName, policyDocument: doc('one') }));
      await client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: doc('two') }));
      await refused(client.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: '1' })), 'DeleteConflictException', 409);

      await client.send(new SetDefaultPolicyVersionCommand({ policyName, policyVersionId: '2' }));
      const current = await client.send(new GetPolicyCommand({ policyName }));
      assert.equal(current.defaultVersionId, '2');
      assert.equal(current.policyDocument, doc('two'));
      await client.send(new SetDefaultPolicyVersionCommand({ policyName, policyVersionId: '2' }));

      await client.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: '1' }));
      assert.deepEqual(iot.policy(policyName)?.versions.map((v) => v.versionId), ['2']);
      await refused(client.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: '2' })), 'DeleteConflictException', 409);
    });

    it('answers 404 for unknown policies and versions, and refuses malformed version ids and documents (MalformedPolicyException)', async () => {
      const policyName = unique();
      await client.send(new CreatePolicyCommand({ policyName, policyDocument: doc('x') }));
      await refused(client.send(new CreatePolicyVersionCommand({ policyName: 'no-such-policy', policyDocument: doc('x') })), 'ResourceNotFoundException', 404);
      await refused(client.send(new ListPolicyVersionsCommand({ policyName: 'no-such-policy' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new GetPolicyVersionCommand({ policyName, policyVersionId: '9' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new SetDefaultPolicyVersionCommand({ policyName, policyVersionId: '9' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: '9' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new DeletePolicyVersionCommand({ policyName, policyVersionId: 'latest' })), 'InvalidRequestException', 400);

      await refused(client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: '{not json' })), 'MalformedPolicyException', 400);
      await refused(client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: '{"Version":"2012-10-17"}' })), 'MalformedPolicyException', 400);
      // 2048 characters at most, whitespace not counted: a long topic passes the limit, the same length of spaces does not.
      const long = doc('t'.repeat(2000));
      await refused(client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: long })), 'MalformedPolicyException', 400);
      await refused(client.send(new CreatePolicyCommand({ policyName: unique(), policyDocument: long })), 'MalformedPolicyException', 400);
      const spaced = doc('t').replace(/,/g, `,${' '.repeat(2500)}`);
      await client.send(new CreatePolicyVersionCommand({ policyName, policyDocument: spaced }));
      assert.deepEqual(iot.policy(policyName)?.versions.map((v) => v.versionId), ['1', '2']);
    });

    it('takes the fleet-default template as a policy document, and hands it back as the default version', async () => {
      const policyDocument = JSON.stringify(DEFAULT_POLICY_TEMPLATE.document);
      await client.send(new CreatePolicyCommand({ policyName: DEFAULT_POLICY_TEMPLATE.name, policyDocument }));
      const current = await client.send(new GetPolicyCommand({ policyName: DEFAULT_POLICY_TEMPLATE.name }));
      assert.equal(current.policyDocument, policyDocument);
      assert.deepEqual(lintIotPolicy(current.policyDocument), []);
      assert.deepEqual(iot.policy(DEFAULT_POLICY_TEMPLATE.name)?.document, DEFAULT_POLICY_TEMPLATE.document);
    });
  });

  describe('certificates the service never issued (registerForeignCertificate)', () => {
    it('puts an ACTIVE certificate under a registered CA, naming it as issuer but signed by another key, listed and described like any other', async () => {
      const { ca, certificateId: caId } = await registeredCa();
      const view = await iot.registerForeignCertificate(caId, { commonName: 'rogue-device' });
      assert.equal(view.status, 'ACTIVE');
      assert.equal(view.caCertificateId, caId);
      assert.equal(view.registeredBy, 'Foreign');
      const x509 = new X509Certificate(view.certificatePem);
      const caX509 = new X509Certificate(ca.pem);
      assert.equal(x509.issuer, caX509.subject);
      assert.equal(x509.subject, 'CN=rogue-device');
      assert.equal(x509.verify(caX509.publicKey), false, 'not signed by the CA key');
      assert.equal(view.certificateId, sha256(x509.raw));

      const listed = await client.send(new ListCertificatesByCACommand({ caCertificateId: caId }));
      assert.deepEqual(listed.certificates?.map((c) => [c.certificateId, c.status]), [[view.certificateId, 'ACTIVE']]);
      const described = (await client.send(new DescribeCertificateCommand({ certificateId: view.certificateId }))).certificateDescription!;
      assert.equal(described.status, 'ACTIVE');
      assert.equal(described.caCertificateId, caId);
    });

    it('takes a given certificate of that CA and a status, and refuses certificates of other CAs, unknown CAs and duplicates', async () => {
      const { ca, certificateId: caId } = await registeredCa();
      const leaf = await makeLeaf(ca);
      const view = await iot.registerForeignCertificate(caId, { certificatePem: leaf.pem, status: 'INACTIVE' });
      assert.equal(view.certificateId, leaf.id);
      assert.equal(view.status, 'INACTIVE');
      await assert.rejects(iot.registerForeignCertificate(caId, { certificatePem: leaf.pem }), /already registered/);
      await assert.rejects(iot.registerForeignCertificate(caId, { certificatePem: (await makeLeaf(await makeCa())).pem }), /issuer is not the subject/);
      await assert.rejects(iot.registerForeignCertificate('ab'.repeat(32)), /no registered CA certificate/);
    });

    it('does the same over HTTP', async () => {
      const { certificateId: caId } = await registeredCa();
      const res = await hook(iot, 'POST', `/_standin/cacertificates/${caId}/foreign-certificates`, { commonName: 'rogue-http' });
      assert.equal(res.status, 200);
      assert.equal(res.body.status, 'ACTIVE');
      assert.equal(res.body.caCertificateId, caId);
      assert.equal(iot.certificate(String(res.body.certificateId))?.registeredBy, 'Foreign');
      const suspended = await hook(iot, 'POST', `/_standin/cacertificates/${caId}/foreign-certificates`, { status: 'REVOKED' });
      assert.equal(suspended.body.status, 'REVOKED');
      assert.equal((await hook(iot, 'POST', `/_standin/cacertificates/${'cd'.repeat(32)}/foreign-certificates`, {})).status, 404);
      assert.equal((await hook(iot, 'POST', `/_standin/cacertificates/${caId}/foreign-certificates`, { certificatePem: 'nope' })).status, 400);
      assert.equal((await hook(iot, 'POST', `/_standin/cacertificates/${caId}/foreign-certificates`, { status: 'LOST' })).status, 400);
    });
  });

  describe('thing types and thing groups', () => {
    const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

    it('creates a thing type idempotently for the same configuration, refuses another one, and describes it', async () => {
      const thingTypeName = unique('sensor-type');
      const thingTypeProperties = { thingTypeDescription: 'temperature sensor', searchableAttributes: ['serial'] };
      const created = await client.send(new CreateThingTypeCommand({ thingTypeName, thingTypeProperties }));
      assert.equal(created.thingTypeArn, `arn:aws:iot:us-east-1:111122223333:thingtype/${thingTypeName}`);
      const again = await client.send(new CreateThingTypeCommand({ thingTypeName, thingTypeProperties }));
      assert.equal(again.thingTypeId, created.thingTypeId, 'the same thing type comes back');
      const error = await refused(
        client.send(new CreateThingTypeCommand({ thingTypeName, thingTypeProperties: { thingTypeDescription: 'other' } })),
        'ResourceAlreadyExistsException',
        409,
      );
      assert.equal(error.resourceArn, created.thingTypeArn);

      const described = await client.send(new DescribeThingTypeCommand({ thingTypeName }));
      assert.equal(described.thingTypeId, created.thingTypeId);
      assert.equal(described.thingTypeArn, created.thingTypeArn);
      assert.deepEqual(described.thingTypeProperties?.searchableAttributes, ['serial']);
      assert.equal(described.thingTypeProperties?.thingTypeDescription, 'temperature sensor');
      assert.equal(described.thingTypeMetadata?.deprecated, false);
      assert.ok(described.thingTypeMetadata?.creationDate instanceof Date);
      assert.equal(iot.thingType(thingTypeName)?.thingTypeId, created.thingTypeId);

      await refused(client.send(new DescribeThingTypeCommand({ thingTypeName: 'no-such-type' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new CreateThingTypeCommand({ thingTypeName: 'has spaces' })), 'InvalidRequestException', 400);
      await refused(
        client.send(new CreateThingTypeCommand({ thingTypeName: unique('t'), thingTypeProperties: { searchableAttributes: ['a', 'b', 'c', 'd'] } })),
        'InvalidRequestException',
        400,
      );
    });

    it('creates things of an existing type (shown by DescribeThing), and refuses unknown and deprecated types', async () => {
      const thingTypeName = iot.createThingType(unique('meter')).thingTypeName;
      const thingName = unique('thing');
      const attributes = { serial: 'SN-1', model: 'm2', batch: 'b7', site: 'plant-3' };
      const first = await client.send(new CreateThingCommand({ thingName, thingTypeName, attributePayload: { attributes } }));
      const described = await client.send(new DescribeThingCommand({ thingName }));
      assert.equal(described.thingTypeName, thingTypeName);
      assert.deepEqual(described.attributes, attributes);
      assert.equal(iot.thing(thingName)?.thingTypeName, thingTypeName);

      // The same thing again (a retry) is the same thing; without the type it is a different one.
      const again = await client.send(new CreateThingCommand({ thingName, thingTypeName, attributePayload: { attributes } }));
      assert.equal(again.thingId, first.thingId);
      await refused(client.send(new CreateThingCommand({ thingName, attributePayload: { attributes: { serial: 'SN-1' } } })), 'ResourceAlreadyExistsException', 409);

      // Four attributes need a thing type (three at most without one).
      await refused(client.send(new CreateThingCommand({ thingName: unique('thing'), attributePayload: { attributes } })), 'InvalidRequestException', 400);
      assert.equal((await client.send(new DescribeThingCommand({ thingName: (await client.send(new CreateThingCommand({ thingName: unique('plain') }))).thingName! }))).thingTypeName, undefined);

      await refused(client.send(new CreateThingCommand({ thingName: unique('thing'), thingTypeName: 'no-such-type' })), 'ResourceNotFoundException', 404);

      await client.send(new DeprecateThingTypeCommand({ thingTypeName }));
      assert.equal((await client.send(new DescribeThingTypeCommand({ thingTypeName }))).thingTypeMetadata?.deprecated, true);
      await refused(client.send(new CreateThingCommand({ thingName: unique('thing'), thingTypeName })), 'InvalidRequestException', 400);
      await client.send(new DeprecateThingTypeCommand({ thingTypeName, undoDeprecate: true }));
      await client.send(new CreateThingCommand({ thingName: unique('thing'), thingTypeName }));
    });

    it('creates thing groups (under a parent) idempotently for the same configuration and describes them', async () => {
      const parent = iot.createThingGroup(unique('fleet')).thingGroupName;
      const thingGroupName = unique('line');
      const thingGroupProperties = { thingGroupDescription: 'line 3', attributePayload: { attributes: { plant: 'p3' } } };
      const created = await client.send(new CreateThingGroupCommand({ thingGroupName, parentGroupName: parent, thingGroupProperties }));
      assert.equal(created.thingGroupArn, `arn:aws:iot:us-east-1:111122223333:thinggroup/${thingGroupName}`);
      const again = await client.send(new CreateThingGroupCommand({ thingGroupName, parentGroupName: parent, thingGroupProperties }));
      assert.equal(again.thingGroupId, created.thingGroupId, 'the same group comes back');
      await refused(client.send(new CreateThingGroupCommand({ thingGroupName, parentGroupName: parent })), 'ResourceAlreadyExistsException', 409);

      const described = await client.send(new DescribeThingGroupCommand({ thingGroupName }));
      assert.equal(described.thingGroupId, created.thingGroupId);
      assert.equal(described.thingGroupProperties?.thingGroupDescription, 'line 3');
      assert.deepEqual(described.thingGroupProperties?.attributePayload?.attributes, { plant: 'p3' });
      assert.equal(described.thingGroupMetadata?.parentGroupName, parent);
      assert.deepEqual(described.thingGroupMetadata?.rootToParentThingGroups, [{ groupName: parent, groupArn: iot.thingGroup(parent)!.thingGroupArn }]);
      assert.ok(described.thingGroupMetadata?.creationDate instanceof Date);

      await refused(client.send(new DescribeThingGroupCommand({ thingGroupName: 'no-such-group' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new CreateThingGroupCommand({ thingGroupName: unique('orphan'), parentGroupName: 'no-such-group' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new CreateThingGroupCommand({ thingGroupName: 'has spaces' })), 'InvalidRequestException', 400);
    });

    it('adds a thing to groups by name or ARN (again without complaint) and lists them with ListThingGroupsForThing', async () => {
      const [a, b] = [iot.createThingGroup(unique('group-a')), iot.createThingGroup(unique('group-b'))];
      const thingName = unique('thing');
      const thing = await client.send(new CreateThingCommand({ thingName }));
      await client.send(new AddThingToThingGroupCommand({ thingGroupName: a.thingGroupName, thingName }));
      await client.send(new AddThingToThingGroupCommand({ thingGroupName: a.thingGroupName, thingName }));
      await client.send(new AddThingToThingGroupCommand({ thingGroupArn: b.thingGroupArn, thingArn: thing.thingArn }));

      const listed = await client.send(new ListThingGroupsForThingCommand({ thingName }));
      assert.deepEqual(listed.thingGroups, [
        { groupName: a.thingGroupName, groupArn: a.thingGroupArn },
        { groupName: b.thingGroupName, groupArn: b.thingGroupArn },
      ]);
      assert.equal(listed.nextToken, undefined);
      const firstPage = await client.send(new ListThingGroupsForThingCommand({ thingName, maxResults: 1 }));
      assert.deepEqual(firstPage.thingGroups?.map((g) => g.groupName), [a.thingGroupName]);
      const secondPage = await client.send(new ListThingGroupsForThingCommand({ thingName, maxResults: 1, nextToken: firstPage.nextToken }));
      assert.deepEqual(secondPage.thingGroups?.map((g) => g.groupName), [b.thingGroupName]);

      assert.deepEqual(iot.thing(thingName)?.thingGroups, [a.thingGroupName, b.thingGroupName]);
      assert.deepEqual(iot.thingGroup(a.thingGroupName)?.things, [thingName]);
      assert.deepEqual(iot.thingGroupsOf(thingName), [a.thingGroupName, b.thingGroupName]);
      assert.deepEqual((await client.send(new ListThingGroupsForThingCommand({ thingName: (await client.send(new CreateThingCommand({ thingName: unique('loner') }))).thingName! }))).thingGroups, []);
    });

    it('refuses unknown things and groups (ResourceNotFoundException) and requests naming neither or both inconsistently', async () => {
      const group = iot.createThingGroup(unique('group')).thingGroupName;
      const thingName = unique('thing');
      await client.send(new CreateThingCommand({ thingName }));

      await refused(client.send(new AddThingToThingGroupCommand({ thingGroupName: 'no-such-group', thingName })), 'ResourceNotFoundException', 404);
      await refused(client.send(new AddThingToThingGroupCommand({ thingGroupName: group, thingName: 'no-such-thing' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new AddThingToThingGroupCommand({ thingName })), 'InvalidRequestException', 400);
      await refused(client.send(new AddThingToThingGroupCommand({ thingGroupName: group })), 'InvalidRequestException', 400);
      await refused(
        client.send(new AddThingToThingGroupCommand({ thingGroupName: group, thingGroupArn: iot.thingGroup(group)!.thingGroupArn.replace(group, 'other'), thingName })),
        'InvalidRequestException',
        400,
      );
      await refused(client.send(new AddThingToThingGroupCommand({ thingGroupName: 'has spaces', thingName })), 'InvalidRequestException', 400);
      await refused(client.send(new ListThingGroupsForThingCommand({ thingName: 'no-such-thing' })), 'ResourceNotFoundException', 404);
      assert.deepEqual(iot.thingGroupsOf(thingName), []);
    });
  });

  describe('just-in-time registration (devices/connect hook)', () => {
    const connect = (certificatePem: string, chainPem?: string) => hook(iot, 'POST', '/_standin/devices/connect', { certificatePem, chainPem });

    it("registers an unknown certificate PENDING_ACTIVATION on a device's first connection and returns the event AWS IoT publishes", async () => {
      const { ca, certificateId: caId } = await registeredCa();
      const leaf = await makeLeaf(ca);
      const published: IotCertificateRegisteredEvent[] = [];
      iot.onEvent = (_topic, event) => published.push(event);
      try {
        const before = Date.now();
        const first = await connect(leaf.pem, ca.pem);
        assert.equal(first.status, 200);
        assert.equal(first.body.topic, `$aws/events/certificates/registered/${caId}`);
        const event = first.body.event as IotCertificateRegisteredEvent;
        assert.equal(event.certificateId, leaf.id);
        assert.equal(event.caCertificateId, caId);
        assert.equal(event.certificateStatus, 'PENDING_ACTIVATION');
        assert.equal(event.awsAccountId, '111122223333');
        // As AWS sends them: a number of epoch ms, and a string of epoch ms.
        assert.equal(typeof event.timestamp, 'number');
        assert.match(String(event.certificateRegistrationTimestamp), /^\d{13}$/);
        assert.equal(typeof event.certificateRegistrationTimestamp, 'string');
        assert.ok(event.timestamp >= before && Number(event.certificateRegistrationTimestamp) >= before);
        assert.equal(first.body.connected, false, 'AWS IoT drops the first connection');
        assert.deepEqual(published, [event]);

        // The service sees it through the SDK as AWS would show it.
        const description = (await client.send(new DescribeCertificateCommand({ certificateId: leaf.id }))).certificateDescription!;
        assert.equal(description.status, 'PENDING_ACTIVATION');
        assert.equal(description.caCertificateId, caId);

        const retry = await connect(leaf.pem, ca.pem);
        assert.equal((retry.body.event as IotCertificateRegisteredEvent).certificateRegistrationTimestamp, event.certificateRegistrationTimestamp, 'published again while pending');

        await client.send(new UpdateCertificateCommand({ certificateId: leaf.id, newStatus: 'ACTIVE' }));
        assert.deepEqual((await connect(leaf.pem, ca.pem)).body, { connected: true });
        await client.send(new UpdateCertificateCommand({ certificateId: leaf.id, newStatus: 'REVOKED' }));
        const revoked = await connect(leaf.pem, ca.pem);
        assert.equal(revoked.body.connected, false);
        assert.match(String(revoked.body.reason), /REVOKED/);
      } finally {
        iot.onEvent = undefined;
      }
    });

    it('does not register devices whose CA has auto-registration off, is INACTIVE, or is not registered', async () => {
      const { ca: noAuto } = await registeredCa({ allowAutoRegistration: false });
      const { ca: inactive } = await registeredCa({ setAsActive: false });
      const unregistered = await makeCa();
      for (const ca of [noAuto, inactive, unregistered]) {
        const leaf = await makeLeaf(ca);
        const res = await connect(leaf.pem, ca.pem);
        assert.equal(res.status, 200);
        assert.equal(res.body.connected, false);
        assert.equal(res.body.event, undefined);
        assert.equal(typeof res.body.reason, 'string');
        assert.equal(iot.certificate(leaf.id), undefined);
      }
    });

    it('refuses a chain that does not start with the issuing CA, and input that is not a certificate', async () => {
      const { ca } = await registeredCa();
      const stranger = await makeCa();
      const leaf = await makeLeaf(ca);
      const res = await connect(leaf.pem, stranger.pem);
      assert.equal(res.body.connected, false);
      assert.equal(iot.certificate(leaf.id), undefined);
      assert.equal((await connect('not a certificate')).status, 400);
    });
  });

  describe('detaching and listing thing principals', () => {
    it('answers ResourceNotFoundException for a principal that is not attached, an unknown thing or an unknown certificate', async () => {
      const { arn } = await registeredDevice();
      const thingName = `thing-${randomBytes(4).toString('hex')}`;
      await client.send(new CreateThingCommand({ thingName }));
      await refused(client.send(new DetachThingPrincipalCommand({ thingName, principal: arn })), 'ResourceNotFoundException', 404);
      await client.send(new AttachThingPrincipalCommand({ thingName, principal: arn }));
      await client.send(new DetachThingPrincipalCommand({ thingName, principal: arn }));
      await refused(client.send(new DetachThingPrincipalCommand({ thingName, principal: arn })), 'ResourceNotFoundException', 404);
      await refused(client.send(new DetachThingPrincipalCommand({ thingName: 'no-such-thing', principal: arn })), 'ResourceNotFoundException', 404);
      await refused(client.send(new DetachThingPrincipalCommand({ thingName, principal: iot.certificateArn('ab'.repeat(32)) })), 'ResourceNotFoundException', 404);
      await refused(client.send(new DetachThingPrincipalCommand({ thingName, principal: 'not-an-arn' })), 'InvalidRequestException', 400);
    });

    it('lists the principals of a thing page by page, and refuses unknown things and page sizes out of 1 to 250', async () => {
      const [first, second] = [await registeredDevice(), await registeredDevice()];
      const thingName = `thing-${randomBytes(4).toString('hex')}`;
      await client.send(new CreateThingCommand({ thingName }));
      await client.send(new AttachThingPrincipalCommand({ thingName, principal: first.arn }));
      await client.send(new AttachThingPrincipalCommand({ thingName, principal: second.arn }));
      const page1 = await client.send(new ListThingPrincipalsCommand({ thingName, maxResults: 1 }));
      assert.deepEqual(page1.principals, [first.arn]);
      assert.ok(page1.nextToken);
      const page2 = await client.send(new ListThingPrincipalsCommand({ thingName, maxResults: 1, nextToken: page1.nextToken }));
      assert.deepEqual(page2.principals, [second.arn]);
      assert.equal(page2.nextToken, undefined);
      await refused(client.send(new ListThingPrincipalsCommand({ thingName: 'no-such-thing' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new ListThingPrincipalsCommand({ thingName, maxResults: 251 })), 'InvalidRequestException', 400);
    });
  });

  describe('jobs', () => {
    const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;
    const thingArn = (name: string) => `arn:aws:iot:us-east-1:111122223333:thing/${name}`;
    const DOCUMENT = { operation: 'renew-certificate', campaignId: 'c-1', notAfter: '2030-01-01T00:00:00Z' };

    async function thing(): Promise<string> {
      const thingName = unique('thing');
      await client.send(new CreateThingCommand({ thingName }));
      return thingName;
    }

    it('creates a snapshot job for things and a thing group, describes it, hands out its document and lists it', async () => {
      const [a, b] = [await thing(), await thing()];
      const group = iot.createThingGroup(unique('wave'));
      const jobId = unique('renewal');
      const targets = [thingArn(a), thingArn(b), group.thingGroupArn];
      const created = await client.send(new CreateJobCommand({ jobId, targets, document: JSON.stringify(DOCUMENT), description: 'Certificate renewal, wave 1' }));
      assert.equal(created.jobArn, `arn:aws:iot:us-east-1:111122223333:job/${jobId}`);
      assert.equal(created.jobId, jobId);
      assert.equal(created.description, 'Certificate renewal, wave 1');

      const described = (await client.send(new DescribeJobCommand({ jobId }))).job!;
      assert.equal(described.jobArn, created.jobArn);
      assert.equal(described.status, 'IN_PROGRESS');
      assert.equal(described.targetSelection, 'SNAPSHOT', 'SNAPSHOT unless told otherwise');
      assert.deepEqual(described.targets, targets);
      assert.ok(described.createdAt instanceof Date && Math.abs(described.createdAt.getTime() - Date.now()) < 60_000);
      assert.deepEqual(JSON.parse((await client.send(new GetJobDocumentCommand({ jobId }))).document!), DOCUMENT);

      const listed = await client.send(new ListJobsCommand({ thingGroupName: group.thingGroupName }));
      assert.deepEqual(listed.jobs?.map((job) => [job.jobId, job.jobArn, job.status]), [[jobId, created.jobArn, 'IN_PROGRESS']]);
      assert.ok((await client.send(new ListJobsCommand({ status: 'IN_PROGRESS', targetSelection: 'SNAPSHOT' }))).jobs?.some((job) => job.jobId === jobId));
      assert.equal((await client.send(new ListJobsCommand({ status: 'COMPLETED' }))).jobs?.some((job) => job.jobId === jobId), false);

      assert.deepEqual(iot.job(jobId)?.targets, targets);
      assert.deepEqual(iot.job(jobId)?.document, DOCUMENT, 'the test hook parses the document');
      assert.ok(iot.jobs().some((job) => job.jobId === jobId));
      const hooked = await hook(iot, 'GET', '/_standin/jobs');
      assert.deepEqual((hooked.body.jobs as { jobId: string; document: unknown }[]).find((job) => job.jobId === jobId)?.document, DOCUMENT);
    });

    it('refuses the same job id again with ResourceAlreadyExistsException (HTTP 409), whatever the rest of the request', async () => {
      const target = thingArn(await thing());
      const jobId = unique('renewal');
      await client.send(new CreateJobCommand({ jobId, targets: [target], document: JSON.stringify(DOCUMENT) }));
      await refused(client.send(new CreateJobCommand({ jobId, targets: [target], document: JSON.stringify(DOCUMENT) })), 'ResourceAlreadyExistsException', 409);
      await refused(client.send(new CreateJobCommand({ jobId, targets: [target], document: '{"other":true}' })), 'ResourceAlreadyExistsException', 409);
      assert.equal(iot.jobs().filter((job) => job.jobId === jobId).length, 1);
    });

    it('refuses targets that are unknown (ResourceNotFoundException), malformed, of another account, missing or more than 100', async () => {
      const target = thingArn(await thing());
      const create = (targets: string[], jobId = unique('job')) => client.send(new CreateJobCommand({ jobId, targets, document: JSON.stringify(DOCUMENT) }));
      await refused(create([target, thingArn('no-such-thing')]), 'ResourceNotFoundException', 404);
      await refused(create(['arn:aws:iot:us-east-1:111122223333:thinggroup/no-such-group']), 'ResourceNotFoundException', 404);
      await refused(create(['sensor-0001']), 'InvalidRequestException', 400);
      await refused(create([iot.certificateArn('ab'.repeat(32))]), 'InvalidRequestException', 400);
      await refused(create([target.replace('111122223333', '444455556666')]), 'InvalidRequestException', 400);
      await refused(create([]), 'InvalidRequestException', 400);
      await refused(create(Array.from({ length: 101 }, () => target)), 'InvalidRequestException', 400);
      const before = iot.jobs().length;
      await create(Array.from({ length: 100 }, () => target));
      assert.equal(iot.jobs().length, before + 1, '100 targets are accepted');
    });

    it('refuses job documents that are missing, not a JSON object or over 32 KB, and bad job ids, descriptions and target selections', async () => {
      const targets = [thingArn(await thing())];
      const create = (input: Partial<ConstructorParameters<typeof CreateJobCommand>[0]>) =>
        client.send(new CreateJobCommand({ jobId: unique('job'), targets, document: JSON.stringify(DOCUMENT), ...input }));
      await refused(create({ document: undefined }), 'InvalidRequestException', 400);
      await refused(create({ document: '{not json' }), 'InvalidRequestException', 400);
      await refused(create({ document: '[1,2]' }), 'InvalidRequestException', 400);
      const padding = 'x'.repeat(32_768 - JSON.stringify({ pad: '' }).length);
      await create({ document: JSON.stringify({ pad: padding }) });
      await refused(create({ document: JSON.stringify({ pad: `${padding}x` }) }), 'InvalidRequestException', 400);
      // 32 KB in UTF-8 bytes: 32,768 characters with one of two bytes are too many.
      await refused(create({ document: JSON.stringify({ pad: `${padding.slice(1)}é` }) }), 'InvalidRequestException', 400);
      await refused(create({ documentSource: 'https://s3.us-east-1.amazonaws.com/bucket/job.json', document: undefined }), 'InvalidRequestException', 400);
      await refused(create({ jobId: 'renewal.wave-1' }), 'InvalidRequestException', 400);
      await refused(create({ jobId: 'j'.repeat(65) }), 'InvalidRequestException', 400);
      await create({ jobId: `${'j'.repeat(56)}${randomBytes(4).toString('hex')}` });
      await refused(create({ description: 'line\nbreak' }), 'InvalidRequestException', 400);
      await refused(create({ description: 'd'.repeat(2029) }), 'InvalidRequestException', 400);
      await refused(create({ targetSelection: 'SOMETIMES' as 'SNAPSHOT' }), 'InvalidRequestException', 400);
      const continuous = await create({ targetSelection: 'CONTINUOUS' });
      assert.equal(iot.job(continuous.jobId!)?.targetSelection, 'CONTINUOUS');
    });

    it('answers 404 for unknown jobs, pages ListJobs newest first and lets a test move a job along', async () => {
      await refused(client.send(new DescribeJobCommand({ jobId: 'no-such-job' })), 'ResourceNotFoundException', 404);
      await refused(client.send(new GetJobDocumentCommand({ jobId: 'no-such-job' })), 'ResourceNotFoundException', 404);
      const group = iot.createThingGroup(unique('wave'));
      const ids = [unique('job'), unique('job'), unique('job')];
      for (const jobId of ids) {
        await client.send(new CreateJobCommand({ jobId, targets: [group.thingGroupArn], document: JSON.stringify(DOCUMENT) }));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const seen: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await client.send(new ListJobsCommand({ thingGroupName: group.thingGroupName, maxResults: 2, nextToken }));
        assert.ok((page.jobs?.length ?? 0) <= 2);
        seen.push(...(page.jobs ?? []).map((job) => job.jobId!));
        nextToken = page.nextToken;
      } while (nextToken);
      assert.deepEqual(seen, [...ids].reverse());
      await refused(client.send(new ListJobsCommand({ maxResults: 0 })), 'InvalidRequestException', 400);
      await refused(client.send(new ListJobsCommand({ thingGroupName: 'no-such-group' })), 'ResourceNotFoundException', 404);

      iot.setJobStatus(ids[0], 'COMPLETED');
      const described = (await client.send(new DescribeJobCommand({ jobId: ids[0] }))).job!;
      assert.equal(described.status, 'COMPLETED');
      assert.ok(described.completedAt instanceof Date);
      assert.deepEqual((await client.send(new ListJobsCommand({ thingGroupName: group.thingGroupName, status: 'COMPLETED' }))).jobs?.map((job) => job.jobId), [ids[0]]);
    });
  });

  describe('AwsIotRegistry (the service adapter) for renewal campaigns', () => {
    const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;
    let registry: AwsIotRegistry;
    let sdk: IoTClient;

    before(() => {
      sdk = iotClient({ region: iot.region, endpoint: iot.endpoint, requestTimeoutMs: 5000, maxAttempts: 1, rateLimits: {} });
      registry = new AwsIotRegistry(sdk);
    });
    after(() => sdk?.destroy());

    async function domainError(call: Promise<unknown>): Promise<DomainError> {
      try {
        await call;
      } catch (err) {
        assert.ok(err instanceof DomainError, `expected a DomainError, got ${String(err)}`);
        return err;
      }
      assert.fail('the call succeeded');
    }

    it('detaches a thing principal, and takes one that is not attached, an unknown thing or certificate as done', async () => {
      const { arn } = await registeredDevice();
      const thingName = unique('thing');
      await client.send(new CreateThingCommand({ thingName }));
      await client.send(new AttachThingPrincipalCommand({ thingName, principal: arn }));
      await registry.detachThingPrincipal(thingName, arn);
      assert.deepEqual(iot.principalsOf(thingName), []);
      await registry.detachThingPrincipal(thingName, arn);
      await registry.detachThingPrincipal('no-such-thing', arn);
      await registry.detachThingPrincipal(thingName, iot.certificateArn('cd'.repeat(32)));
      const error = await domainError(registry.detachThingPrincipal(thingName, 'not-an-arn'));
      assert.equal(error.code, 'IOT_REQUEST_REFUSED');
    });

    it("finds a thing's ARN, and undefined for an unknown thing", async () => {
      const thingName = unique('thing');
      await client.send(new CreateThingCommand({ thingName }));
      assert.equal(await registry.thingArn(thingName), iot.thing(thingName)?.thingArn);
      assert.equal(await registry.thingArn('no-such-thing'), undefined);
    });

    it('creates a snapshot job with the document as JSON, and answers a retry with the same job id with the same ARN', async () => {
      const thingName = unique('thing');
      await client.send(new CreateThingCommand({ thingName }));
      const target = (await registry.thingArn(thingName))!;
      const jobId = unique('renewal');
      const document = { operation: 'renew-certificate', certificateId: 'abc', nested: { deadline: 1_900_000_000 } };
      const created = await registry.createJob({ jobId, targets: [target], document, description: 'wave 1' });
      assert.equal(created.jobArn, iot.job(jobId)?.jobArn);
      assert.deepEqual(iot.job(jobId)?.document, document);
      assert.deepEqual(iot.job(jobId)?.targets, [target]);
      assert.equal(iot.job(jobId)?.targetSelection, 'SNAPSHOT');
      assert.equal(iot.job(jobId)?.description, 'wave 1');

      const describesBefore = iot.calls.get('DescribeJob') ?? 0;
      assert.deepEqual(await registry.createJob({ jobId, targets: [target], document }), created, 'a retry gets the existing job');
      assert.equal((iot.calls.get('DescribeJob') ?? 0) - describesBefore, 1, 'the ARN came from DescribeJob');
      assert.equal(iot.jobs().filter((job) => job.jobId === jobId).length, 1);
    });

    it('refuses a job id whose job is being deleted (IOT_CONFLICT) and reports AWS refusals as IOT_REQUEST_REFUSED', async () => {
      const thingName = unique('thing');
      await client.send(new CreateThingCommand({ thingName }));
      const target = (await registry.thingArn(thingName))!;
      const jobId = unique('renewal');
      await registry.createJob({ jobId, targets: [target], document: { operation: 'renew-certificate' } });
      iot.setJobStatus(jobId, 'DELETION_IN_PROGRESS');
      const conflict = await domainError(registry.createJob({ jobId, targets: [target], document: { operation: 'renew-certificate' } }));
      assert.equal(conflict.code, 'IOT_CONFLICT');
      assert.equal(conflict.status, 409);

      const unknownTarget = await domainError(registry.createJob({ jobId: unique('renewal'), targets: [`${target}-gone`], document: {} }));
      assert.equal(unknownTarget.code, 'IOT_REQUEST_REFUSED');
      assert.equal(unknownTarget.extra.awsError, 'ResourceNotFoundException');
      const tooLarge = await domainError(registry.createJob({ jobId: unique('renewal'), targets: [target], document: { pad: 'x'.repeat(33_000) } }));
      assert.equal(tooLarge.extra.awsError, 'InvalidRequestException');
    });

    it('paces CreateJob to its rate limit, so the per-operation quota is never tripped', async () => {
      const thingName = unique('thing');
      await client.send(new CreateThingCommand({ thingName }));
      const target = (await registry.thingArn(thingName))!;
      // Paced at 3/s (burst 3) against a quota of 4/s: a margin, so clock granularity cannot make the test flaky.
      const paced = new AwsIotRegistry(sdk, { CreateJob: 3 });
      await configure(iot, { operationTps: { CreateJob: 4 } });
      try {
        const throttledBefore = iot.throttledByOperation.get('CreateJob') ?? 0;
        const started = Date.now();
        await Promise.all(Array.from({ length: 6 }, () => paced.createJob({ jobId: unique('paced'), targets: [target], document: {} })));
        assert.ok(Date.now() - started >= 900, `6 jobs at 3/s (burst 3) take about 1 s, took ${Date.now() - started} ms`);
        assert.equal((iot.throttledByOperation.get('CreateJob') ?? 0) - throttledBefore, 0);
      } finally {
        await configure(iot, { operationTps: {} });
      }
    });
  });

  describe('topic rule destinations', () => {
    const status = async (arn: string) => (await client.send(new GetTopicRuleDestinationCommand({ arn }))).topicRuleDestination?.status;

    it('creates a destination IN_PROGRESS, confirms it to DISABLED with its token, enables it only from DISABLED', async () => {
      const confirmationUrl = `https://pki-${randomBytes(4).toString('hex')}.example/v1/iot/events`;
      const created = await client.send(new CreateTopicRuleDestinationCommand({ destinationConfiguration: { httpUrlConfiguration: { confirmationUrl } } }));
      const arn = created.topicRuleDestination!.arn!;
      assert.match(arn, /^arn:aws:iot:us-east-1:111122223333:ruledestination\/http\/[0-9a-f-]{36}$/);
      assert.equal(created.topicRuleDestination?.status, 'IN_PROGRESS');
      assert.equal(created.topicRuleDestination?.httpUrlProperties?.confirmationUrl, confirmationUrl);
      assert.ok(created.topicRuleDestination?.createdAt instanceof Date);
      await refused(client.send(new CreateTopicRuleDestinationCommand({ destinationConfiguration: { httpUrlConfiguration: { confirmationUrl } } })), 'ResourceAlreadyExistsException', 409);

      // Not confirmed yet: it cannot be enabled.
      await refused(client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'ENABLED' })), 'InvalidRequestException', 400);
      const message = iot.topicRuleDestination(arn)!.confirmation;
      assert.deepEqual(Object.keys(message).sort(), ['arn', 'confirmationToken', 'enableUrl', 'messageType']);
      assert.equal(message.enableUrl, `https://iot.us-east-1.amazonaws.com/confirmdestination/${message.confirmationToken}`);
      await refused(client.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: 'not-a-token' })), 'InvalidRequestException', 400);
      assert.equal(await status(arn), 'IN_PROGRESS');

      await client.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: message.confirmationToken }));
      assert.equal(await status(arn), 'DISABLED', 'confirmed is not enabled');
      await client.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: message.confirmationToken }));
      assert.equal(await status(arn), 'DISABLED', 'confirming again changes nothing');
      await refused(client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'DISABLED' })), 'InvalidRequestException', 400);

      await client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'ENABLED' }));
      assert.equal(await status(arn), 'ENABLED');
      await refused(client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'ENABLED' })), 'InvalidRequestException', 400);
      await client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'DISABLED' }));
      assert.equal(await status(arn), 'DISABLED');
      await refused(client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'ERROR' })), 'InvalidRequestException', 400);

      const listed = await client.send(new ListTopicRuleDestinationsCommand({}));
      const summary = listed.destinationSummaries?.find((d) => d.arn === arn);
      assert.equal(summary?.status, 'DISABLED');
      assert.equal(summary?.httpUrlSummary?.confirmationUrl, confirmationUrl);
      await refused(client.send(new GetTopicRuleDestinationCommand({ arn: `${arn.slice(0, -4)}0000` })), 'InvalidRequestException', 400);
    });

    it('asks for a new confirmation (IN_PROGRESS) after one timed out (ERROR): the old token no longer confirms', async () => {
      const token = `AYADeMXL/${randomBytes(8).toString('base64url')}/+x==`;
      const { arn } = iot.seedTopicRuleDestination({ confirmationToken: token });
      iot.setTopicRuleDestinationStatus(arn, 'ERROR', 'the confirmation timed out');
      assert.equal((await client.send(new GetTopicRuleDestinationCommand({ arn }))).topicRuleDestination?.statusReason, 'the confirmation timed out');
      await refused(client.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: token })), 'InvalidRequestException', 400);
      await client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'IN_PROGRESS' }));
      const fresh = iot.topicRuleDestination(arn)!.confirmation.confirmationToken;
      assert.notEqual(fresh, token);
      await refused(client.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: token })), 'InvalidRequestException', 400);
      await client.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: fresh }));
      assert.equal(await status(arn), 'DISABLED');
      assert.ok(iot.confirmedTokens().includes(fresh));
      const res = await hook(iot, 'GET', '/_standin/confirmations');
      assert.ok((res.body.tokens as string[]).includes(fresh));
    });

    it('confirms with a token that has slashes and plus signs (a greedy path label, each segment encoded)', async () => {
      const token = `AYADeMXL/${randomBytes(8).toString('base64url')}/+x==`;
      const { arn } = iot.seedTopicRuleDestination({ confirmationToken: token });
      await client.send(new ConfirmTopicRuleDestinationCommand({ confirmationToken: token }));
      assert.equal(await status(arn), 'DISABLED');
    });

    it('seeds a destination with a given ARN over HTTP, and answers ConflictingResourceUpdateException on demand without changing it', async () => {
      const arn = `arn:aws:iot:us-east-1:111122223333:ruledestination/http/${randomBytes(4).toString('hex')}`;
      const seeded = await hook(iot, 'POST', '/_standin/destinations', { arn, status: 'DISABLED' });
      assert.equal(seeded.status, 200);
      assert.equal(seeded.body.arn, arn);
      await configure(iot, { conflictingUpdates: { UpdateTopicRuleDestination: 1 } });
      await refused(client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'ENABLED' })), 'ConflictingResourceUpdateException', 409);
      assert.equal(await status(arn), 'DISABLED');
      assert.equal(((await hook(iot, 'GET', '/_standin/stats')).body.conflicts as Record<string, number>).UpdateTopicRuleDestination, 1);
      await client.send(new UpdateTopicRuleDestinationCommand({ arn, status: 'ENABLED' }));
      const listed = await hook(iot, 'GET', '/_standin/destinations');
      assert.equal((listed.body.destinations as { arn: string; status: string }[]).find((d) => d.arn === arn)?.status, 'ENABLED');
    });
  });

  describe('knobs: throttling, outages, authentication', () => {
    it('answers ThrottlingException above the account rate and counts it in the stats', async () => {
      await configure(iot, { tps: 1, burst: 2 });
      try {
        const before = (await hook(iot, 'GET', '/_standin/stats')).body;
        await client.send(new GetRegistrationCodeCommand({}));
        await client.send(new GetRegistrationCodeCommand({}));
        // The AWS IoT model gives ThrottlingException HTTP 400; the SDK recognises it by name.
        const error = await refused(client.send(new GetRegistrationCodeCommand({})), 'ThrottlingException', 400);
        assert.equal(error.message, 'Rate exceeded');
        const stats = (await hook(iot, 'GET', '/_standin/stats')).body;
        assert.equal(Number(stats.throttled) - Number(before.throttled), 1);
        assert.equal((stats.throttledByOperation as Record<string, number>).GetRegistrationCode >= 1, true);
        assert.equal((stats.calls as Record<string, number>).GetRegistrationCode - (before.calls as Record<string, number>).GetRegistrationCode, 3);
      } finally {
        iot.configure({ tps: 0, burst: undefined });
      }
    });

    it('throttles one operation by its own quota while others pass', async () => {
      await configure(iot, { operationTps: { DescribeThing: 1 } });
      try {
        const thingName = `thing-${randomBytes(4).toString('hex')}`;
        await client.send(new CreateThingCommand({ thingName }));
        await client.send(new DescribeThingCommand({ thingName }));
        await refused(client.send(new DescribeThingCommand({ thingName })), 'ThrottlingException');
        await client.send(new GetRegistrationCodeCommand({}));
      } finally {
        await configure(iot, { operationTps: {} });
      }
    });

    it('loses answers after the operation took effect (loseResponses): a connection reset or an HTTP 500, then ResourceAlreadyExists on the retry', async () => {
      for (const lostResponseAs of ['reset', 'http500'] as const) {
        await configure(iot, { loseResponses: { RegisterCACertificate: 1 }, lostResponseAs });
        const ca = await makeCa();
        const verification = await makeLeaf(ca, { commonName: registrationCode });
        const input = { caCertificate: ca.pem, verificationCertificate: verification.pem, setAsActive: true };
        let lost: SdkError | undefined;
        try {
          await client.send(new RegisterCACertificateCommand(input));
        } catch (err) {
          lost = err as SdkError;
        }
        assert.ok(lost, 'the answer was lost');
        if (lostResponseAs === 'http500') {
          assert.equal(lost.name, 'InternalFailureException');
          assert.equal(lost.$metadata.httpStatusCode, 500);
        } else {
          assert.match(String((lost as { code?: string }).code ?? lost.message), /ECONNRESET|socket hang up/);
        }
        const certificateId = new X509Certificate(ca.pem).fingerprint256.replace(/:/g, '').toLowerCase();
        assert.equal(iot.caCertificate(certificateId)?.status, 'ACTIVE', 'the registration took effect');
        const error = await refused(client.send(new RegisterCACertificateCommand(input)), 'ResourceAlreadyExistsException', 409);
        assert.equal(error.resourceId, certificateId);
        const stats = (await hook(iot, 'GET', '/_standin/stats')).body;
        assert.ok(Number((stats.lostResponses as Record<string, number>).RegisterCACertificate) >= 1);
      }
      await configure(iot, { loseResponses: {}, lostResponseAs: 'reset' });
    });

    it('is retried by the SDK as a throttling error when the client allows retries', async () => {
      const retrying = new IoTClient({ region: iot.region, endpoint: iot.endpoint, maxAttempts: 2 });
      iot.configure({ throttleProbability: 1 });
      try {
        const before = iot.calls.get('GetRegistrationCode') ?? 0;
        await refused(retrying.send(new GetRegistrationCodeCommand({})), 'ThrottlingException');
        assert.equal((iot.calls.get('GetRegistrationCode') ?? 0) - before, 2, 'two attempts reached the stand-in');
      } finally {
        iot.configure({ throttleProbability: 0 });
        retrying.destroy();
      }
    });

    it('answers ServiceUnavailableException (HTTP 503) during an http503 outage', async () => {
      await configure(iot, { failureMode: 'http503' });
      try {
        await refused(client.send(new GetRegistrationCodeCommand({})), 'ServiceUnavailableException', 503);
      } finally {
        await configure(iot, { failureMode: 'none' });
      }
      await client.send(new GetRegistrationCodeCommand({}));
    });

    it('drops connections in drop mode, which the SDK reports as a network error', async () => {
      await configure(iot, { failureMode: 'drop' });
      try {
        let error: (Error & { code?: string }) | undefined;
        try {
          await client.send(new GetRegistrationCodeCommand({}));
        } catch (err) {
          error = err as Error & { code?: string };
        }
        assert.ok(error, 'the call failed');
        assert.ok(error.code === 'ECONNRESET' || /socket hang up|ECONNRESET/.test(error.message), `${error.name}: ${error.message}`);
      } finally {
        await configure(iot, { failureMode: 'none' });
      }
    });

    it('adds the configured latency to each call', async () => {
      await configure(iot, { latencyMs: 150 });
      try {
        const started = Date.now();
        await client.send(new GetRegistrationCodeCommand({}));
        assert.ok(Date.now() - started >= 140, `took ${Date.now() - started} ms`);
      } finally {
        await configure(iot, { latencyMs: 0 });
      }
    });

    it('refuses requests without a SigV4 Authorization header (MissingAuthenticationTokenException, 403)', async () => {
      const res = await fetch(`${iot.endpoint}/registrationcode`);
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
      assert.deepEqual(await res.json(), { message: 'Missing Authentication Token' });
    });
  });
});
