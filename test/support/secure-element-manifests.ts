import { createHash, generateKeyPairSync, KeyObject, randomBytes, sign } from 'node:crypto';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { certificateParts, signCertificate } from '../../src/pki/certificate';
import { authorityKeyIdentifier, basicConstraints, EncodedExtension, extendedKeyUsage, keyIdentifier, keyUsage, subjectKeyIdentifier } from '../../src/pki/extensions';
import { buildName, SubjectFields } from '../../src/pki/names';
import { SigningKey } from '../../src/pki/signing';

/**
 * Test-made secure-element manifests in the Microchip Trust Platform format (docs/secure-elements.md): a test vendor
 * with a manifest signer, a secure-element root and the signer (intermediate) that issues the device certificates, and
 * entries shaped as Microchip ships them (flattened JWS, ES256, payload with publicKeySet.keys[].x5c). Device keys are
 * drawn from a small pool (signing is the cost; a key per device is not what the import checks), so 100,000 entries take
 * seconds. Never real keys: everything here is generated per run.
 */

interface Ca {
  key: KeyObject;
  der: Buffer;
  subject: Buffer;
  keyId: Buffer;
}

const SERVER_AUTH_CLIENT_AUTH = ['1.3.6.1.5.5.7.3.2'];
const YEAR_MS = 365 * 86_400_000;

function ecKey(): { privateKey: KeyObject; publicKey: KeyObject; spki: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey, spki: publicKey.export({ format: 'der', type: 'spki' }) };
}

function signer(key: KeyObject): SigningKey {
  return { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, key) };
}

async function makeCa(fields: SubjectFields, issuer: Ca | null, pathLength?: number): Promise<Ca> {
  const { privateKey, spki } = ecKey();
  const subject = buildName(fields);
  const keyId = keyIdentifier(spki);
  const now = Date.now();
  const extensions: EncodedExtension[] = [basicConstraints(true, pathLength), keyUsage([KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign, KeyUsageFlags.digitalSignature]), subjectKeyIdentifier(keyId)];
  if (issuer) extensions.push(authorityKeyIdentifier(issuer.keyId));
  const der = await signCertificate(
    { serial: randomBytes(16), issuer: issuer ? issuer.subject : subject, subject, subjectPublicKeyInfo: spki, notBefore: new Date(now - 86_400_000), notAfter: new Date(now + 30 * YEAR_MS), extensions },
    signer(issuer ? issuer.key : privateKey),
  );
  return { key: privateKey, der, subject, keyId };
}

/** A manifest signer certificate (end-entity, EC P-256), as Microchip's "MCHP manifest signer" certificates are. */
async function makeManifestSigner(name: string, root: Ca): Promise<{ key: KeyObject; der: Buffer }> {
  const { privateKey, spki } = ecKey();
  const now = Date.now();
  const der = await signCertificate(
    {
      serial: randomBytes(16),
      issuer: root.subject,
      subject: buildName({ organization: name, commonName: `${name} Manifest Signer` }),
      subjectPublicKeyInfo: spki,
      notBefore: new Date(now - 86_400_000),
      notAfter: new Date(now + 10 * YEAR_MS),
      extensions: [basicConstraints(false), keyUsage([KeyUsageFlags.digitalSignature]), subjectKeyIdentifier(keyIdentifier(spki)), authorityKeyIdentifier(root.keyId)],
    },
    signer(root.key),
  );
  return { key: privateKey, der };
}

interface DeviceKey {
  privateKey: KeyObject;
  spki: Buffer;
  jwk: { crv: string; x: string; y: string };
}

export interface EntryOptions {
  /** Flip a bit of the JWS signature. */
  breakSignature?: boolean;
  /** Issue the device certificate from another signer than the x5c[1] the entry carries. */
  foreignIssuer?: boolean;
  /** Sign the entry with another vendor's manifest signer. */
  otherManifestSigner?: boolean;
}

export class TestVendor {
  private readonly devices: DeviceKey[] = [];

  private constructor(
    readonly name: string,
    private readonly manifestSigner: { key: KeyObject; der: Buffer },
    private readonly otherSigner: { key: KeyObject; der: Buffer },
    readonly root: Ca,
    readonly intermediate: Ca,
    private readonly foreignIntermediate: Ca,
  ) {
    for (let i = 0; i < 8; i++) {
      const key = ecKey();
      const jwk = key.publicKey.export({ format: 'jwk' }) as { crv: string; x: string; y: string };
      this.devices.push({ privateKey: key.privateKey, spki: key.spki, jwk: { crv: jwk.crv, x: jwk.x, y: jwk.y } });
    }
  }

  static async create(name = 'Test Secure Elements Inc'): Promise<TestVendor> {
    const root = await makeCa({ organization: name, commonName: `${name} Root CA` }, null);
    const intermediate = await makeCa({ organization: name, commonName: `${name} Signer 0001` }, root, 0);
    const foreign = await makeCa({ organization: 'Another Vendor', commonName: 'Another Signer 0002' }, null, 0);
    const manifestSigner = await makeManifestSigner(name, root);
    const otherSigner = await makeManifestSigner('Another Vendor', foreign);
    return new TestVendor(name, manifestSigner, otherSigner, root, intermediate, foreign);
  }

  /** The manifest signer certificate as the upload header takes it: base64 DER. */
  get signerCertificateBase64(): string {
    return this.manifestSigner.der.toString('base64');
  }

  get signerCertificatePem(): string {
    return `-----BEGIN CERTIFICATE-----\n${this.signerCertificateBase64.replace(/(.{64})/g, '$1\n').trim()}\n-----END CERTIFICATE-----\n`;
  }

  /** The unique id of entry `index`: 9 bytes as an ATECC608 serial number (0123… ee), lowercase hex. */
  static uniqueId(index: number): string {
    return `0123${index.toString(16).padStart(12, '0')}ee`;
  }

  /** The device certificate of entry `index`, and its key (a pool key). */
  async deviceCertificate(index: number, options: EntryOptions = {}): Promise<{ der: Buffer; device: DeviceKey }> {
    const device = this.devices[index % this.devices.length];
    const issuer = options.foreignIssuer ? this.foreignIntermediate : this.intermediate;
    const uniqueId = TestVendor.uniqueId(index);
    const der = await signCertificate(
      {
        serial: Buffer.concat([Buffer.from([0x40]), createHash('sha256').update(`${this.name}:${uniqueId}`).digest().subarray(0, 15)]),
        issuer: issuer.subject,
        subject: buildName({ organization: this.name, commonName: `sn${uniqueId.toUpperCase()}` }),
        subjectPublicKeyInfo: device.spki,
        notBefore: new Date(Date.UTC(2024, 0, 1)),
        notAfter: new Date(Date.UTC(2052, 0, 1)),
        extensions: [
          basicConstraints(false),
          keyUsage([KeyUsageFlags.digitalSignature, KeyUsageFlags.keyAgreement]),
          extendedKeyUsage(SERVER_AUTH_CLIENT_AUTH),
          subjectKeyIdentifier(keyIdentifier(device.spki)),
          authorityKeyIdentifier(issuer.keyId),
        ],
      },
      signer(issuer.key),
    );
    return { der, device };
  }

  /** One signed secure element, exactly as Microchip's manifests hold them. */
  async entry(index: number, options: EntryOptions = {}): Promise<Record<string, unknown>> {
    const uniqueId = TestVendor.uniqueId(index);
    const { der, device } = await this.deviceCertificate(index, options);
    const signerKey = options.otherManifestSigner ? this.otherSigner : this.manifestSigner;
    const x5c = [der.toString('base64'), this.intermediate.der.toString('base64')];
    const payload = {
      version: 1,
      model: 'ATECC608B',
      partNumber: 'ATECC608B-TNGTLS',
      manufacturer: { organizationName: this.name, organizationalUnitName: 'Secure Products Group' },
      provisioner: { organizationName: this.name, organizationalUnitName: 'Secure Products Group' },
      distributor: { organizationName: this.name, organizationalUnitName: 'Secure Products Group' },
      groupId: 'TEST0GROUP0000000000',
      provisioningTimestamp: '2024-01-02T03:04:05.678Z',
      uniqueId,
      publicKeySet: {
        keys: [
          { kid: '0', kty: 'EC', crv: 'P-256', x: device.jwk.x, y: device.jwk.y, x5c },
          { kid: '1', kty: 'EC', crv: 'P-256', x: device.jwk.x, y: device.jwk.y },
          { kid: '2', kty: 'EC', crv: 'P-256', x: device.jwk.x, y: device.jwk.y },
        ],
      },
    };
    const protectedHeader = {
      typ: 'JWT',
      alg: 'ES256',
      kid: keyIdentifier(publicSpkiOf(signerKey.der)).toString('base64url'),
      'x5t#S256': createHash('sha256').update(signerKey.der).digest('base64url'),
    };
    const protectedB64 = Buffer.from(JSON.stringify(protectedHeader)).toString('base64url');
    const payloadB64 = Buffer.from(JSON.stringify(payload)).toString('base64url');
    const signature = sign('sha256', Buffer.from(`${protectedB64}.${payloadB64}`), { key: signerKey.key, dsaEncoding: 'ieee-p1363' });
    if (options.breakSignature) signature[5] ^= 0x01;
    return { payload: payloadB64, protected: protectedB64, header: { uniqueId }, signature: signature.toString('base64url') };
  }

  /** The manifest's bytes, entry by entry (bad entries at the given indexes), for streaming to a file or a request. */
  async *manifest(count: number, bad: Record<number, EntryOptions> = {}): AsyncGenerator<Buffer> {
    yield Buffer.from('[\n');
    let lines: string[] = [];
    for (let i = 0; i < count; i++) {
      lines.push(`  ${JSON.stringify(await this.entry(i, bad[i] ?? {}))}${i + 1 < count ? ',' : ''}\n`);
      if (lines.length === 500) {
        yield Buffer.from(lines.join(''));
        lines = [];
      }
    }
    if (lines.length) yield Buffer.from(lines.join(''));
    yield Buffer.from(']\n');
  }
}

/** The SubjectPublicKeyInfo DER of a certificate (for the kid, as Microchip's: the signer's key identifier). */
function publicSpkiOf(der: Buffer): Buffer {
  return certificateParts(der).subjectPublicKeyInfo;
}
