import { AwsError } from '../http/aws-error';
import { KmsKeys, StandInKey } from './kms-keys';

/** The knobs of the simulated IAM policy (see KmsStandInKnobs). */
export interface KmsAuthorizationKnobs {
  tagAuthorizationDelayMs: number;
  tagConditionedOperations: string[];
  deniedOperations: string[];
}

/**
 * The simulated IAM policy: operations it never allows (a missing permission), and the tag-conditioned operations on
 * a tagged key denied until its tags have "propagated" (tagAuthorizationDelayMs after CreateKey). AWS answers HTTP 400
 * with `{"__type": "AccessDeniedException", "Message": "User: <caller> is not authorized to perform: kms:<Op> on
 * resource: <key ARN> because no identity-based policy allows the kms:<Op> action"}`.
 */
export class KmsAuthorization {
  /** AccessDeniedException answers given while a new key's tags were not yet visible to authorization. */
  deniedWhilePropagating = 0;

  constructor(
    private readonly account: string,
    private readonly keys: KmsKeys,
    /** Read on every call: the knobs can change while the stand-in runs. */
    private readonly knobs: () => KmsAuthorizationKnobs,
  ) {}

  /** Throws AccessDeniedException when the simulated policy does not allow this call. */
  authorize(operation: string, body: Record<string, unknown>): void {
    const knobs = this.knobs();
    if (knobs.deniedOperations.includes(operation)) throw this.accessDenied(operation, String(body.AliasName ?? body.KeyId ?? '*'));
    if (knobs.tagAuthorizationDelayMs <= 0 || !knobs.tagConditionedOperations.includes(operation)) return;
    let key: StandInKey;
    try {
      key = this.keys.resolve(body.KeyId);
    } catch {
      return; // the operation itself reports a missing key
    }
    if (key.tags.length === 0 || Date.now() - key.created * 1000 >= knobs.tagAuthorizationDelayMs) return;
    this.deniedWhilePropagating++;
    throw this.accessDenied(operation, key.arn);
  }

  private accessDenied(operation: string, resource: string): AwsError {
    return new AwsError(
      'AccessDeniedException',
      `User: arn:aws:sts::${this.account}:assumed-role/fleet-pki/standin is not authorized to perform: kms:${operation} on resource: ${resource} because no identity-based policy allows the kms:${operation} action`,
      400,
      {},
      'Message',
    );
  }
}
