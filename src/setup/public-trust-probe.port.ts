import { TrustVerdict } from './public-tls-trust';

/** Port: whether a URL presents a publicly trusted chain. A port so that tests can trust their own CA. */
export abstract class PublicTrustProbe {
  abstract probe(url: string): Promise<TrustVerdict>;
}
