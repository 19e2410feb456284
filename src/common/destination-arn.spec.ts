import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDestinationArn } from './destination-arn';

const GOOD = [
  'arn:aws:iot:us-east-1:111122223333:ruledestination/http/7a280e37-b9c6-47a2-a751-0703693f46e4',
  'arn:aws-us-gov:iot:us-gov-west-1:111122223333:ruledestination/http/abc',
];
const BAD = [
  'arn:aws:iot:us-east-1:111122223333:ruledestination/vpc/abc',
  'arn:aws:iot:us-east-1:11112222333:ruledestination/http/abc',
  'arn:aws:iot:us-east-1:111122223333:ruledestination/http/abc\n',
  `arn:aws:iot:us-east-1:111122223333:ruledestination/http/${'a'.repeat(80)}`,
  'arn:aws:sns:us-east-1:111122223333:ruledestination/http/abc',
];

describe('isDestinationArn (issue 25: one check for IOT_EVENTS_DESTINATION_ARN and for a confirmation message)', () => {
  it('accepts HTTP topic rule destination ARNs of any partition and refuses anything else, or longer than 128', () => {
    for (const arn of GOOD) assert.ok(isDestinationArn(arn), arn);
    for (const arn of BAD) assert.ok(!isDestinationArn(arn), arn);
    assert.ok(!isDestinationArn(undefined) && !isDestinationArn(42));
  });
});
