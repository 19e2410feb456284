/**
 * Local stand-ins for AWS KMS and the AWS IoT control plane: HTTP servers that speak the AWS wire protocols, so the
 * real AWS SDK can be pointed at them with an endpoint override. Used by the tests, `npm run dev:kms`,
 * `npm run dev:iot` and the benchmark.
 */
export * from './iot/iot-standin';
export * from './kms/kms-standin';
