/**
 * Local stand-ins for AWS KMS and the AWS IoT control plane: HTTP servers that speak the AWS wire protocols, so the
 * real AWS SDK can be pointed at them with an endpoint override. Used by the tests, `npm run dev:kms`,
 * `npm run dev:iot` and the benchmark. Beside them: the AWS IoT data plane (MQTT over mutual TLS, fleet provisioning,
 * the Lambdas invoked in process; iot-data/) and Secrets Manager / SSM for the Lambdas' API key (secrets/), see
 * docs/aws-fleet-provisioning.md.
 */
export { IotStandIn } from './iot/iot-standin';
export type { IotStandInKnobs } from './iot/iot-knobs';
export type { IotCaCertificateView, IotCertificateMode, IotRegistrationConfig } from './iot/ca-certificates';
export type { IotCertificateStatus, IotCertificateView } from './iot/certificates';
export type { IotDeviceConnectResult } from './iot/device-connections';
export type { IotJobStatus, IotJobView } from './iot/jobs';
export type { IotPolicyVersionView, IotPolicyView } from './iot/policies';
export type { IotCertificateRegisteredEvent } from './iot/registration-events';
export type { IotRequestRecord } from './iot/request-log';
export type { IotThingGroupView } from './iot/thing-groups';
export type { IotThingTypeView } from './iot/thing-types';
export type { IotThingView } from './iot/things';
export type { IotDestinationConfirmation, IotTopicRuleDestinationStatus, IotTopicRuleDestinationView } from './iot/topic-rule-destinations';
export { KmsStandIn } from './kms/kms-standin';
export type { KmsStandInKnobs } from './kms/kms-standin';
export { IotDataStandIn } from './iot-data/iot-data-standin';
export type { CertificateProviderHandler, ClientCertificateHandler, IotDataConnection, IotDataMessage, IotDataStandInOptions } from './iot-data/iot-data-standin';
export { SecretsStandIn } from './secrets/secrets-standin';
