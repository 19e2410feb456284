import { HookRoute } from '../http/standin-server';
import { CERTIFICATE_STATUSES, IotCertificateStatus } from './certificates';
import { invalid, notFound } from './iot-api';
import { IotStandInKnobs } from './iot-knobs';
import type { IotStandIn } from './iot-standin';
import { IotTopicRuleDestinationStatus } from './topic-rule-destinations';

/** The IoT stand-in's test hooks over HTTP (listed in the IotStandInKnobs comment); `tokens` reads the account's bucket. */
export function iotHooks(iot: IotStandIn, tokens: () => number | null): HookRoute[] {
  return [
    {
      method: 'GET',
      path: '/_standin/stats',
      handle: () => ({
        throttled: iot.throttled,
        throttledByOperation: Object.fromEntries(iot.throttledByOperation),
        lostResponses: Object.fromEntries(iot.lostResponses),
        conflicts: Object.fromEntries(iot.conflicts),
        calls: Object.fromEntries(iot.calls),
        tokens: tokens(),
      }),
    },
    {
      method: 'POST',
      path: '/_standin/config',
      handle: (body) => {
        iot.configure(body as Partial<IotStandInKnobs>);
        return iot.knobs;
      },
    },
    {
      method: 'POST',
      path: '/_standin/devices/connect',
      handle: (body) => {
        if (typeof body.certificatePem !== 'string') throw invalid('certificatePem is required');
        if (body.chainPem !== undefined && typeof body.chainPem !== 'string') throw invalid('chainPem must be a string');
        return iot.connectDevice(body.certificatePem, body.chainPem as string | undefined);
      },
    },
    {
      method: 'POST',
      path: /^\/_standin\/certificates\/([0-9a-fA-F]{64})\/status$/,
      handle: (body, [certificateId]) => {
        const status = body.status as IotCertificateStatus;
        if (!CERTIFICATE_STATUSES.includes(status)) throw invalid(`status must be one of ${CERTIFICATE_STATUSES.join(', ')}`);
        if (!iot.certificate(certificateId)) throw notFound(`no certificate ${certificateId}`);
        iot.setCertificateStatus(certificateId, status);
        return iot.certificate(certificateId);
      },
    },
    { method: 'GET', path: '/_standin/confirmations', handle: () => ({ tokens: iot.confirmedTokens() }) },
    { method: 'GET', path: '/_standin/destinations', handle: () => ({ destinations: iot.topicRuleDestinations() }) },
    {
      method: 'POST',
      path: '/_standin/destinations',
      handle: (body) => {
        for (const field of ['arn', 'confirmationUrl', 'status', 'confirmationToken']) {
          if (body[field] !== undefined && typeof body[field] !== 'string') throw invalid(`${field} must be a string`);
        }
        return iot.seedTopicRuleDestination(body as { arn?: string; confirmationUrl?: string; status?: IotTopicRuleDestinationStatus; confirmationToken?: string });
      },
    },
    { method: 'GET', path: '/_standin/events', handle: () => ({ events: iot.events }) },
    { method: 'GET', path: '/_standin/requests', handle: () => ({ requests: iot.requests() }) },
    { method: 'GET', path: '/_standin/jobs', handle: () => ({ jobs: iot.jobs() }) },
    // Several accounts and regions (the accessKeys knob): the state of each, and knobs (e.g. tps) per account.
    {
      method: 'GET',
      path: '/_standin/accounts',
      handle: () => ({
        accounts: iot.placeList().map((place) => ({
          account: place.account,
          region: place.region,
          caCertificates: place.caCertificateList(),
          certificates: place.certificateList(),
          things: place.thingList().map((thing) => thing.thingName),
          throttled: place.throttled,
        })),
      }),
    },
    {
      method: 'POST',
      path: /^\/_standin\/accounts\/(\d{12})\/([a-z0-9-]+)\/config$/,
      handle: (body, [account, region]) => {
        const place = iot.place(account, region);
        place.configure(body as Partial<IotStandInKnobs>);
        return place.knobs;
      },
    },
    {
      method: 'GET',
      path: /^\/_standin\/accounts\/(\d{12})\/([a-z0-9-]+)\/certificates\/([0-9a-fA-F]{64})$/,
      handle: (_body, [account, region, certificateId]) => {
        const view = iot.placeList().find((p) => p.account === account && p.region === region)?.certificate(certificateId);
        if (!view) throw notFound(`no certificate ${certificateId} in ${account}/${region}`);
        return view;
      },
    },
    {
      method: 'POST',
      path: /^\/_standin\/cacertificates\/([0-9a-fA-F]{64})\/foreign-certificates$/,
      handle: (body, [caCertificateId]) => {
        for (const field of ['certificatePem', 'status', 'commonName']) {
          if (body[field] !== undefined && typeof body[field] !== 'string') throw invalid(`${field} must be a string`);
        }
        return iot.registerForeignCertificate(caCertificateId, body as { certificatePem?: string; status?: IotCertificateStatus; commonName?: string });
      },
    },
    {
      method: 'GET',
      path: /^\/_standin\/policies\/([^/]+)$/,
      handle: (_body, [policyName]) => {
        const view = iot.policy(decodeURIComponent(policyName));
        if (!view) throw notFound(`no policy ${policyName}`);
        return view;
      },
    },
  ];
}
