import { PublicationUrls } from '../pki/issuance';

/** URLs placed in certificates (CRL DP, AIA). They must stay stable: issued certificates carry them for years. */
export class PublicUrls {
  constructor(private readonly baseUrl: string) {}

  crl(authorityId: string): string {
    return `${this.baseUrl}/v1/authorities/${authorityId}/crl`;
  }

  caCertificate(authorityId: string): string {
    return `${this.baseUrl}/v1/authorities/${authorityId}/certificate`;
  }

  /** The OCSP responder (one for every authority: the request's CertID names the issuer). */
  ocsp(): string {
    return `${this.baseUrl}/ocsp`;
  }

  /** The URLs that certificates signed by the authority carry (CRL DP, AIA). */
  forIssuer(authorityId: string): PublicationUrls {
    return { crl: this.crl(authorityId), caCertificate: this.caCertificate(authorityId), ocsp: this.ocsp() };
  }
}
