import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { KeyUsageFlags } from '@peculiar/asn1-x509';
import { OpenSslWorkspace } from '../../test/support/openssl';
import { certificateParts, signCertificate } from './certificate';
import { pemEncode } from './der';
import { explicit, NULL, octetString, oid, sequence, smallInteger, tlv, TRUE, unsignedInteger } from './der-writer';
import { authorityKeyIdentifier, basicConstraints, extendedKeyUsage, extension, keyIdentifier, keyUsage, subjectKeyIdentifier } from './extensions';
import { buildName } from './names';
import { encodeOcspRequest, ocspResponseStatus } from '../../tools/clients/ocsp-client';
import {
  certIdHashes,
  generalizedTime,
  OCSP_MAX_REQUESTS,
  OCSP_OIDS,
  OCSP_REQUEST_MAX_BYTES,
  OcspCertStatus,
  ocspNoCheck,
  OcspRequestError,
  ocspStatusResponse,
  parseOcspRequest,
  signOcspResponse,
} from './ocsp';
import { randomSerial } from './serial';
import { SigningKey } from './signing';

const ssl = new OpenSslWorkspace();
after(() => ssl.cleanup());
let counter = 0;
const file = (name: string, content: string | Buffer): string => ssl.file(`${++counter}-${name}`, content);

interface Party {
  key: SigningKey;
  spki: Buffer;
  name: Buffer;
  certDer: Buffer;
  pem: string;
}

function newKey(): { key: SigningKey; spki: Buffer } {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    key: { algorithm: 'ECDSA_SHA_256', sign: async (data) => sign('sha256', data, pair.privateKey) },
    spki: pair.publicKey.export({ type: 'spki', format: 'der' }),
  };
}

async function makeCa(commonName: string): Promise<Party> {
  const { key, spki } = newKey();
  const name = buildName({ organization: 'Acme Fleet', commonName });
  const certDer = await signCertificate(
    {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      subjectPublicKeyInfo: spki,
      notBefore: new Date(Date.now() - 3_600_000),
      notAfter: new Date(Date.now() + 365 * 86_400_000),
      extensions: [basicConstraints(true), keyUsage([KeyUsageFlags.keyCertSign, KeyUsageFlags.cRLSign]), subjectKeyIdentifier(keyIdentifier(spki))],
    },
    key,
  );
  return { key, spki, name, certDer, pem: pemEncode('CERTIFICATE', certDer) };
}

/** A delegated responder certificate under `ca`; `ocspSigning: false` leaves out the EKU that authorizes it. */
async function makeResponder(ca: Party, ocspSigning = true): Promise<Party> {
  const { key, spki } = newKey();
  const name = buildName({ commonName: 'OCSP Responder' });
  const certDer = await signCertificate(
    {
      serial: randomSerial(),
      issuer: ca.name,
      subject: name,
      subjectPublicKeyInfo: spki,
      notBefore: new Date(Date.now() - 3_600_000),
      notAfter: new Date(Date.now() + 48 * 3_600_000),
      extensions: [
        basicConstraints(false),
        keyUsage([KeyUsageFlags.digitalSignature]),
        extendedKeyUsage(ocspSigning ? [OCSP_OIDS.ocspSigning] : ['1.3.6.1.5.5.7.3.2']),
        ocspNoCheck(),
        subjectKeyIdentifier(keyIdentifier(spki)),
        authorityKeyIdentifier(keyIdentifier(ca.spki)),
      ],
    },
    ca.key,
  );
  return { key, spki, name, certDer, pem: pemEncode('CERTIFICATE', certDer) };
}

async function makeLeaf(ca: Party, serial: Buffer): Promise<string> {
  const { spki } = newKey();
  const der = await signCertificate(
    {
      serial,
      issuer: ca.name,
      subject: buildName({ commonName: `thing-${serial.toString('hex').slice(0, 8)}` }),
      subjectPublicKeyInfo: spki,
      notBefore: new Date(Date.now() - 3_600_000),
      notAfter: new Date(Date.now() + 30 * 86_400_000),
      extensions: [basicConstraints(false), keyUsage([KeyUsageFlags.digitalSignature])],
    },
    ca.key,
  );
  return pemEncode('CERTIFICATE', der);
}

function openssl(args: string[]): string {
  const result = ssl.run(args);
  assert.equal(result.status, 0, `openssl ${args.join(' ')}: ${result.output}`);
  return result.output;
}

/** An OCSP request made by openssl itself (`openssl ocsp -reqout`). */
function opensslRequest(args: string[]): Buffer {
  const out = file('req.der', '');
  openssl(['ocsp', ...args, '-reqout', out]);
  return fs.readFileSync(out);
}

describe('parseOcspRequest on requests made by openssl', () => {
  let ca: Party;
  let leafPem: string;
  const serial = randomSerial();

  before(async () => {
    ca = await makeCa('OCSP Test CA');
    leafPem = await makeLeaf(ca, serial);
  });

  it('reads a SHA-1 CertID and the nonce openssl adds by default', () => {
    const der = opensslRequest(['-issuer', file('ca.pem', ca.pem), '-cert', file('leaf.pem', leafPem)]);
    const request = parseOcspRequest(der);
    const { nameHash, keyHash } = certIdHashes(ca.name, ca.spki, 'sha1');
    assert.equal(request.certIds.length, 1);
    const [certId] = request.certIds;
    assert.equal(certId.hash, 'sha1');
    assert.deepEqual(certId.issuerNameHash, nameHash);
    assert.deepEqual(certId.issuerKeyHash, keyHash);
    assert.equal(certId.serial, serial.toString('hex'));
    // The nonce is echoed as the extnValue contents: an OCTET STRING of 16 random octets from openssl.
    const text = openssl(['ocsp', '-reqin', file('req.der', der), '-req_text']);
    const nonceHex = /OCSP Nonce:\s*\n\s*([0-9A-F]+)/.exec(text)![1];
    assert.equal(request.nonce!.toString('hex').toUpperCase(), nonceHex);
    assert.equal(request.nonce!.length, 18);
  });

  it('reads SHA-256 CertIDs, several per request, without a nonce', () => {
    const caFile = file('ca.pem', ca.pem);
    const der = opensslRequest(['-no_nonce', '-sha256', '-issuer', caFile, '-cert', file('leaf.pem', leafPem), '-serial', '0x00ff01']);
    const request = parseOcspRequest(der);
    assert.equal(request.nonce, undefined);
    assert.deepEqual(
      request.certIds.map((id) => [id.hash, id.serial]),
      [
        ['sha256', serial.toString('hex')],
        ['sha256', 'ff01'],
      ],
    );
    const { nameHash, keyHash } = certIdHashes(ca.name, ca.spki, 'sha256');
    assert.deepEqual(request.certIds[1].issuerNameHash, nameHash);
    assert.deepEqual(request.certIds[1].issuerKeyHash, keyHash);
  });

  it('keeps each CertID byte for byte, for the SingleResponse to echo', () => {
    const der = opensslRequest(['-no_nonce', '-issuer', file('ca.pem', ca.pem), '-serial', '0x01']);
    const [certId] = parseOcspRequest(der).certIds;
    assert.ok(der.includes(certId.der));
    assert.equal(certId.der[0], 0x30);
  });

  it('writes requests openssl reads back the same (encodeOcspRequest)', () => {
    const nonce = randomBytes(16);
    const der = encodeOcspRequest([{ hash: 'sha256', issuerName: ca.name, issuerSpki: ca.spki, serial }], nonce);
    const text = openssl(['ocsp', '-reqin', file('req.der', der), '-req_text']);
    assert.match(text, /Hash Algorithm: sha256/);
    assert.match(text, new RegExp(`Serial Number: ${serial.toString('hex').toUpperCase()}`));
    assert.match(text, new RegExp(`0410${nonce.toString('hex').toUpperCase()}`));
    const parsed = parseOcspRequest(der);
    assert.equal(parsed.certIds[0].serial, serial.toString('hex'));
    assert.equal(parsed.nonce!.toString('hex'), `0410${nonce.toString('hex')}`);
  });
});

/** Hand-built requests: CertIDs, optional pieces, malformations. */
const SHA1_ALG = sequence(oid(OCSP_OIDS.sha1), NULL);
const certIdDer = (serialInteger = unsignedInteger(Buffer.from([0x12, 0x34])), alg = SHA1_ALG, hashLength = 20): Buffer =>
  sequence(alg, octetString(Buffer.alloc(hashLength, 1)), octetString(Buffer.alloc(hashLength, 2)), serialInteger);
const request1 = (id = certIdDer(), single: Buffer[] = []): Buffer => sequence(id, ...single);
const ext = (id: string, value: Buffer, critical = false): Buffer => extension(id, critical, value).der;
const ocspRequest = (tbsParts: Buffer[], after: Buffer[] = []): Buffer => sequence(sequence(...tbsParts), ...after);
const withRequests = (requests: Buffer[], extra: Buffer[] = []): Buffer => ocspRequest([sequence(...requests), ...extra]);
const nonceExt = (value: Buffer): Buffer => explicit(2, sequence(ext(OCSP_OIDS.nonce, value)));

describe('parseOcspRequest bounds and malformations', () => {
  const good = withRequests([request1()]);

  const refused: [string, Buffer][] = [
    ['an empty body', Buffer.alloc(0)],
    ['a body over 64 KiB', Buffer.concat([good, Buffer.alloc(OCSP_REQUEST_MAX_BYTES)])],
    ['a truncated request', good.subarray(0, good.length - 1)],
    ['bytes after the request', Buffer.concat([good, Buffer.from([0])])],
    ['a SET instead of a SEQUENCE', Buffer.concat([Buffer.from([0x31]), good.subarray(1)])],
    ['indefinite length (BER)', Buffer.concat([Buffer.from([0x30, 0x80]), good.subarray(2), Buffer.from([0, 0])])],
    ['version v2', ocspRequest([explicit(0, smallInteger(1)), sequence(request1())])],
    ['an empty requestList', withRequests([])],
    [`${OCSP_MAX_REQUESTS + 1} requests`, withRequests(Array.from({ length: OCSP_MAX_REQUESTS + 1 }, () => request1()))],
    ['a nonce of 33 octets', withRequests([request1()], [nonceExt(octetString(Buffer.alloc(33, 7)))])],
    ['an empty nonce', withRequests([request1()], [nonceExt(octetString(Buffer.alloc(0)))])],
    ['a bare nonce of 40 octets', withRequests([request1()], [nonceExt(Buffer.alloc(40, 9))])],
    ['the nonce twice', withRequests([request1()], [explicit(2, sequence(ext(OCSP_OIDS.nonce, octetString(Buffer.alloc(16))), ext(OCSP_OIDS.nonce, octetString(Buffer.alloc(16)))))])],
    ['an unknown critical request extension', withRequests([request1()], [explicit(2, sequence(ext('1.2.3.4', NULL, true)))])],
    ['a critical single request extension', withRequests([request1(certIdDer(), [explicit(0, sequence(ext('1.2.3.4', NULL, true)))])])],
    ['an empty serial INTEGER', withRequests([request1(certIdDer(tlv(0x02, Buffer.alloc(0))))])],
    ['a CertID with an extra element', withRequests([request1(sequence(SHA1_ALG, octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), unsignedInteger(Buffer.from([1])), NULL))])],
    ['hash parameters that are not NULL', withRequests([request1(certIdDer(undefined, sequence(oid(OCSP_OIDS.sha1), TRUE)))])],
    ['a serial that is not an INTEGER', withRequests([request1(sequence(SHA1_ALG, octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20)), octetString(Buffer.from([1]))))])],
    ['an element after optionalSignature', ocspRequest([sequence(request1())], [explicit(0, sequence()), NULL])],
    ['random bytes', randomBytes(200)],
  ];
  for (const [name, der] of refused) {
    it(`refuses ${name} with OcspRequestError`, () => {
      assert.throws(() => parseOcspRequest(der), OcspRequestError);
    });
  }

  it('accepts exactly 100 requests', () => {
    assert.equal(parseOcspRequest(withRequests(Array.from({ length: OCSP_MAX_REQUESTS }, () => request1()))).certIds.length, OCSP_MAX_REQUESTS);
  });

  it('accepts an explicit v1, a requestorName, an optionalSignature and non-critical extensions, and ignores them', () => {
    const der = ocspRequest(
      [
        explicit(0, smallInteger(0)),
        explicit(1, tlv(0x82, Buffer.from('requestor.example'))),
        sequence(request1(certIdDer(), [explicit(0, sequence(ext('1.2.3.4', NULL)))])),
        explicit(2, sequence(ext('1.2.3.5', NULL), ext(OCSP_OIDS.acceptableResponses, sequence(oid(OCSP_OIDS.basicResponse)), true))),
      ],
      [explicit(0, sequence(sequence(oid('1.2.840.10045.4.3.2')), tlv(0x03, Buffer.from([0, 1, 2]))))],
    );
    const request = parseOcspRequest(der);
    assert.equal(request.certIds.length, 1);
    assert.equal(request.nonce, undefined);
  });

  it('accepts a bare nonce of 1 to 32 octets (clients before RFC 8954) and echoes it as sent', () => {
    for (const length of [1, 16, 32]) {
      const value = Buffer.alloc(length, 0x5a);
      assert.deepEqual(parseOcspRequest(withRequests([request1()], [nonceExt(value)])).nonce, value);
    }
  });

  it('accepts hash parameters left out, as RFC 5754 allows', () => {
    assert.equal(parseOcspRequest(withRequests([request1(certIdDer(undefined, sequence(oid(OCSP_OIDS.sha1))))])).certIds[0].hash, 'sha1');
  });

  it('marks a CertID it cannot match (other hash, wrong hash length) instead of refusing the request', () => {
    const sha384 = sequence(oid('2.16.840.1.101.3.4.2.2'), NULL);
    const request = parseOcspRequest(withRequests([request1(certIdDer(undefined, sha384, 48)), request1(certIdDer(undefined, SHA1_ALG, 32))]));
    assert.deepEqual(request.certIds.map((id) => id.hash), [null, null]);
  });

  it('normalises serials: leading zero octets dropped; negative, zero and over-long ones match nothing', () => {
    const serialOf = (integer: Buffer) => parseOcspRequest(withRequests([request1(certIdDer(integer))])).certIds[0].serial;
    assert.equal(serialOf(tlv(0x02, Buffer.from([0x00, 0x80, 0x01]))), '8001');
    assert.equal(serialOf(tlv(0x02, Buffer.from([0x00, 0x00, 0x05]))), '05');
    assert.equal(serialOf(tlv(0x02, Buffer.from([0xff, 0x01]))), null);
    assert.equal(serialOf(tlv(0x02, Buffer.from([0x00]))), null);
    assert.equal(serialOf(unsignedInteger(Buffer.alloc(21, 0x11))), null);
  });
});

describe('OCSP responses, checked by openssl', () => {
  let ca: Party;
  let responder: Party;
  let caFile: string;
  const serials = { good: randomSerial(), revoked: randomSerial(), unspecified: randomSerial(), unknown: randomSerial() };

  before(async () => {
    ca = await makeCa('OCSP Response CA');
    responder = await makeResponder(ca);
    caFile = file('ca.pem', ca.pem);
  });

  async function respond(request: Buffer, statuses: OcspCertStatus[], signer: Party = responder): Promise<Buffer> {
    const parsed = parseOcspRequest(request);
    const now = new Date();
    return signOcspResponse(
      {
        responderKeyHash: keyIdentifier(signer.spki),
        producedAt: now,
        responses: parsed.certIds.map((certId, i) => ({ certId: certId.der, status: statuses[i], thisUpdate: now, nextUpdate: new Date(now.getTime() + 3_600_000) })),
        nonce: parsed.nonce,
        certs: [signer.certDer],
      },
      signer.key,
    );
  }

  const serialArgs = (...list: Buffer[]) => list.flatMap((serial) => ['-serial', `0x${serial.toString('hex')}`]);

  it('answers good, revoked with time and reason, revoked without reason, and unknown in one signed response with the nonce', async () => {
    const ids = serialArgs(serials.good, serials.revoked, serials.unspecified, serials.unknown);
    const request = opensslRequest(['-issuer', caFile, ...ids]);
    const revokedAt = new Date('2026-03-04T05:06:07Z');
    const response = await respond(request, [
      { status: 'good' },
      { status: 'revoked', revokedAt, reason: 'keyCompromise' },
      { status: 'revoked', revokedAt, reason: 'unspecified' },
      { status: 'unknown' },
    ]);
    const respFile = file('resp.der', response);
    // With -reqin openssl checks the signature and that the response carries the request's nonce ...
    const verified = openssl(['ocsp', '-reqin', file('req.der', request), '-respin', respFile, '-CAfile', caFile]);
    assert.match(verified, /Response verify OK/);
    assert.doesNotMatch(verified, /WARNING|nonce/i);
    // ... and with -issuer/-serial (a request of its own, without nonce) it prints each certificate's status.
    const out = openssl(['ocsp', '-no_nonce', '-respin', respFile, '-issuer', caFile, ...ids, '-CAfile', caFile]);
    assert.match(out, /Response verify OK/);
    const lines = out.split('\n');
    const statusOf = (serial: Buffer) => lines[lines.findIndex((line) => line.startsWith(`0x${serial.toString('hex')}:`))];
    assert.match(statusOf(serials.good), /: good$/);
    assert.match(statusOf(serials.revoked), /: revoked$/);
    assert.match(statusOf(serials.unknown), /: unknown$/);
    assert.match(out, /Reason: keyCompromise/);
    assert.match(out, /Revocation Time: Mar {2}4 05:06:07 2026 GMT/);
    assert.equal(out.match(/Reason:/g)?.length, 1, 'an unspecified reason is left out');
    const text = openssl(['ocsp', '-respin', file('resp.der', response), '-resp_text', '-noverify']);
    assert.match(text, /Responder Id: [0-9A-F]{40}/);
    assert.match(text, new RegExp(`Responder Id: ${keyIdentifier(responder.spki).toString('hex').toUpperCase()}`));
    assert.match(text, /Subject: CN ?= ?OCSP Responder/);
  });

  it('echoes the nonce: openssl accepts it for its own request and refuses it for another', async () => {
    const ids = serialArgs(serials.good);
    const request = opensslRequest(['-issuer', caFile, ...ids]);
    const other = opensslRequest(['-issuer', caFile, ...ids]);
    const response = await respond(request, [{ status: 'good' }]);
    const ok = ssl.run(['ocsp', '-reqin', file('req.der', request), '-respin', file('resp.der', response), '-CAfile', caFile]);
    assert.equal(ok.status, 0, ok.output);
    assert.match(ok.output, /Response verify OK/);
    const mismatch = ssl.run(['ocsp', '-reqin', file('other.der', other), '-respin', file('resp.der', response), '-CAfile', caFile]);
    assert.notEqual(mismatch.status, 0);
    assert.match(mismatch.output, /Nonce Verify error/);
  });

  it('works with SHA-256 CertIDs', async () => {
    const ids = ['-sha256', ...serialArgs(serials.good)];
    const request = opensslRequest(['-no_nonce', '-issuer', caFile, ...ids]);
    const response = await respond(request, [{ status: 'good' }]);
    const out = openssl(['ocsp', '-no_nonce', '-respin', file('resp.der', response), '-issuer', caFile, ...ids, '-CAfile', caFile]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: good/);
  });

  it('is refused by openssl when the signer lacks id-kp-OCSPSigning (the check is real)', async () => {
    const unauthorized = await makeResponder(ca, false);
    const request = opensslRequest(['-no_nonce', '-issuer', caFile, ...serialArgs(serials.good)]);
    const response = await respond(request, [{ status: 'good' }], unauthorized);
    const result = ssl.run(['ocsp', '-respin', file('resp.der', response), '-CAfile', caFile, '-issuer', caFile]);
    assert.doesNotMatch(result.output, /Response verify OK/);
    assert.match(result.output, /Response Verify Failure[\s\S]*missing ocspsigning usage/i);
  });

  it('encodes the status-only responses', () => {
    for (const [status, text, code] of [
      ['malformedRequest', 'malformedrequest', 1],
      ['internalError', 'internalerror', 2],
      ['tryLater', 'trylater', 3],
      ['unauthorized', 'unauthorized', 6],
    ] as const) {
      const der = ocspStatusResponse(status);
      assert.equal(ocspResponseStatus(der), code);
      const result = ssl.run(['ocsp', '-respin', file('status.der', der), '-resp_text']);
      assert.match(result.output, new RegExp(`Responder Error: ${text} \\(${code}\\)`, 'i'));
    }
  });

  it('writes GeneralizedTime for every date, before and after 2050', () => {
    assert.equal(generalizedTime(new Date('2026-01-02T03:04:05.678Z')).toString('latin1', 2), '20260102030405Z');
    assert.equal(generalizedTime(new Date('2051-12-31T23:59:59Z')).toString('latin1', 2), '20511231235959Z');
    assert.equal(generalizedTime(new Date('2026-01-02T03:04:05Z'))[0], 0x18);
  });

  it('hashes the issuer as a CertID does: openssl finds its own CertID in our response', async () => {
    const parts = certificateParts(ca.certDer);
    assert.deepEqual(parts.subject, ca.name);
    const request = encodeOcspRequest([{ hash: 'sha1', issuerName: parts.subject, issuerSpki: parts.subjectPublicKeyInfo, serial: serials.good }]);
    const response = await respond(request, [{ status: 'good' }]);
    // openssl matches the response to the CertID it computes from -issuer and -serial.
    const out = openssl(['ocsp', '-no_nonce', '-respin', file('resp.der', response), '-issuer', caFile, ...serialArgs(serials.good), '-CAfile', caFile]);
    assert.match(out, new RegExp(`0x${serials.good.toString('hex')}: good`));
  });
});
