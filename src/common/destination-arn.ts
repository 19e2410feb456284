/**
 * An AWS IoT HTTP topic rule destination ARN (arn:${Partition}:iot:${Region}:${Account}:ruledestination/http/${Uuid}),
 * short enough for the outbox and audit target columns. One check for IOT_EVENTS_DESTINATION_ARN (config) and for the
 * ARN a destination confirmation names (iot/).
 */
export function isDestinationArn(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 128 && /^arn:aws[a-z-]*:iot:[a-z0-9-]+:\d{12}:ruledestination\/http\/[\w-]+$/.test(value);
}
