import * as tls from 'node:tls';
import { probePublicTrust, TrustVerdict } from './public-tls-trust';
import { PublicTrustProbe } from './public-trust-probe.port';
import { SETUP_CHECK_TIMEOUT_MS } from './setup-check.service';

/** Node's bundled Mozilla roots only (not NODE_EXTRA_CA_CERTS, not the system store): what "public" means here. */
export class NodeRootStoreProbe extends PublicTrustProbe {
  probe(url: string): Promise<TrustVerdict> {
    return probePublicTrust(url, { trustStore: tls.rootCertificates, timeoutMs: SETUP_CHECK_TIMEOUT_MS });
  }
}
