import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import * as tls from 'node:tls';

/**
 * Whether a URL presents, over HTTPS, a certificate chain that a client trusting only public roots accepts.
 * AWS IoT topic rule HTTPS destinations accept server certificates from the public CAs AWS lists ("Certificate
 * authorities supported by HTTPS endpoints in topic rule destinations", AWS IoT Core Developer Guide,
 * https://docs.aws.amazon.com/iot/latest/developerguide/topic-rule-destinations-ca-list.html: "you can't use
 * self-signed certificates because they won't work"). Behind a private CA the destination's confirmation, and
 * so every JITR event, is never delivered, and nothing on the service's side shows it. Node's bundled Mozilla
 * root store (tls.rootCertificates) stands in for AWS's list: close to it, not identical, so the report names
 * the root for comparison with AWS's fingerprints.
 */

export type TrustFailure =
  | 'not-https'
  | 'unreachable'
  | 'timeout'
  | 'self-signed'
  | 'untrusted-issuer'
  | 'expired'
  | 'not-yet-valid'
  | 'hostname-mismatch'
  | 'tls-error';

export interface ChainCertificate {
  subject: string;
  issuer: string;
  notAfter: string;
  sha256: string;
}

export type TrustVerdict =
  | { trusted: true; detail: string; chain: ChainCertificate[] }
  | { trusted: false; reason: TrustFailure; detail: string; chain: ChainCertificate[] };

export interface TrustProbeOptions {
  /** PEM roots to trust, replacing every other store (NODE_EXTRA_CA_CERTS and the system store do not count). */
  trustStore: readonly string[];
  /** Bound on DNS, TCP and the handshake together. */
  timeoutMs: number;
}

/** Why a chain fails, by OpenSSL/Node verification code. */
const FAILURES: Record<string, { reason: TrustFailure; why: string }> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: { reason: 'self-signed', why: 'the server certificate is self-signed' },
  SELF_SIGNED_CERT_IN_CHAIN: { reason: 'untrusted-issuer', why: 'the chain ends in a root that is not publicly trusted (a private CA)' },
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: {
    reason: 'untrusted-issuer',
    why: 'the issuer is not a publicly trusted CA (a private CA), or the server does not send its intermediate certificates',
  },
  UNABLE_TO_GET_ISSUER_CERT: { reason: 'untrusted-issuer', why: 'the issuer of a certificate in the chain is missing or not publicly trusted' },
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: {
    reason: 'untrusted-issuer',
    why: 'the server certificate cannot be chained to a public root: a private CA, or missing intermediates (send the full chain)',
  },
  CERT_UNTRUSTED: { reason: 'untrusted-issuer', why: 'the chain is not trusted for server authentication' },
  CERT_HAS_EXPIRED: { reason: 'expired', why: 'a certificate in the chain has expired' },
  CERT_NOT_YET_VALID: { reason: 'not-yet-valid', why: 'a certificate in the chain is not valid yet' },
  ERR_TLS_CERT_ALTNAME_INVALID: { reason: 'hostname-mismatch', why: 'the certificate does not name the host of the URL' },
};

function chainOf(socket: tls.TLSSocket): ChainCertificate[] {
  const chain: ChainCertificate[] = [];
  let current: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (current?.raw && !seen.has(current.fingerprint256) && chain.length < 10) {
    seen.add(current.fingerprint256);
    const x509 = new X509Certificate(current.raw);
    chain.push({
      subject: x509.subject.replace(/\n/g, ', '),
      issuer: x509.issuer.replace(/\n/g, ', '),
      notAfter: new Date(x509.validTo).toISOString(),
      sha256: x509.fingerprint256,
    });
    current = current.issuerCertificate;
  }
  return chain;
}

export function probePublicTrust(url: string, options: TrustProbeOptions): Promise<TrustVerdict> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.resolve({ trusted: false, reason: 'tls-error', detail: `${url} is not a URL`, chain: [] });
  }
  if (parsed.protocol !== 'https:') {
    return Promise.resolve({
      trusted: false,
      reason: 'not-https',
      detail: `${parsed.origin} is not https://: AWS IoT topic rule HTTP actions deliver to https:// URLs only`,
      chain: [],
    });
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(parsed.port || 443);
  return new Promise((resolve) => {
    let settled = false;
    const finish = (verdict: TrustVerdict, socket?: tls.TLSSocket) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      resolve(verdict);
    };
    const socket = tls.connect({
      host,
      port,
      // SNI carries host names only (RFC 6066 §3): never an IP address.
      servername: isIP(host) ? undefined : host,
      ca: [...options.trustStore],
      // Verify ourselves, so that an untrusted chain is described rather than reported as a bare error.
      rejectUnauthorized: false,
    });
    const timer = setTimeout(
      () =>
        finish(
          { trusted: false, reason: 'timeout', detail: `no TLS handshake with ${host}:${port} within ${options.timeoutMs} ms (unreachable or filtered)`, chain: [] },
          socket,
        ),
      options.timeoutMs,
    );
    socket.once('secureConnect', () => {
      const chain = chainOf(socket);
      if (socket.authorized) {
        const root = chain[chain.length - 1];
        finish({ trusted: true, detail: `${host}:${port} presents a chain trusted by public roots${root ? ` (top: ${root.issuer})` : ''}`, chain }, socket);
        return;
      }
      const code = String(socket.authorizationError ?? 'unknown');
      const failure = FAILURES[code] ?? { reason: 'tls-error' as const, why: `verification failed (${code})` };
      finish({ trusted: false, reason: failure.reason, detail: `${host}:${port}: ${failure.why} [${code}]`, chain }, socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const network = ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT'];
      finish({
        trusted: false,
        reason: err.code && network.includes(err.code) ? 'unreachable' : 'tls-error',
        detail: `${host}:${port}: ${err.code ?? err.name}: ${err.message}`.slice(0, 300),
        chain: [],
      });
    });
  });
}
