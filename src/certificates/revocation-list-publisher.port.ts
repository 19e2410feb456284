/**
 * Port: publishes an authority's revocation list again once revocations committed (revocation/ implements it, above
 * certificates/). Callers log a failure and go on: the next CRL request sees the list stale and regenerates it.
 */
export abstract class RevocationListPublisher {
  abstract republish(authorityId: string): Promise<void>;
}
