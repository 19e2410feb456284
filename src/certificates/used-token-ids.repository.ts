/** Port: token ids (JWT jti) already used, kept until their tokens have expired, so each token works once. */
export abstract class UsedTokenIds {
  /** Records a token id; false when it was already used. */
  abstract use(id: string, keepUntil: string): Promise<boolean>;
  /** Deletes at most `limit` ids whose tokens expired before `now`; answers how many. */
  abstract prune(now: string, limit: number): Promise<number>;
}
