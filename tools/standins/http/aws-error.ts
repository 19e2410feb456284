/**
 * An AWS error answer: the exception name the SDK turns into its exception class, the message, and the HTTP status
 * the service's model gives that exception (AWS's statuses are not always the usual guesses: look them up in the
 * SDK's model, never assume them).
 */
export class AwsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
    /** Further members of the error body (AWS IoT's ResourceAlreadyExistsException names the resource). */
    readonly fields: Record<string, string> = {},
    /** The JSON member the message goes in: most modelled errors use `message`, IAM's AccessDeniedException `Message`. */
    readonly messageMember: 'message' | 'Message' = 'message',
  ) {
    super(message);
  }
}
