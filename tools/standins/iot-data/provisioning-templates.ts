import { X509Certificate } from 'node:crypto';

/**
 * The part of AWS IoT provisioning templates (developer guide, "Provisioning templates") that fleet provisioning by
 * claim uses, evaluated for the data-plane stand-in's RegisterThing: `Parameters` (with `Default`), and `Resources` of
 * type AWS::IoT::Thing (ThingName, AttributePayload, ThingTypeName, ThingGroups), AWS::IoT::Certificate (CertificateId,
 * Status) and AWS::IoT::Policy (PolicyName of an existing policy), with the intrinsic functions `Ref`, `Fn::Join`
 * and `Fn::Sub` (${Name} only). `DeviceConfiguration` is answered as given. Anything else is refused as AWS would refuse
 * the template, so a template that works here uses nothing the stand-in silently skips.
 */
export interface ProvisioningTemplatePlan {
  thing?: { thingName: string; attributes?: Record<string, string>; thingTypeName?: string; thingGroups?: string[] };
  certificateStatus?: string;
  policyNames: string[];
  deviceConfiguration: Record<string, string>;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export class TemplateError extends Error {}

/** The certificate parameters AWS IoT resolves from the certificate's subject (AWS-FACTS, "JITP template parameters"). */
const CERTIFICATE_SUBJECT_PARAMETERS: Record<string, string> = {
  'AWS::IoT::Certificate::Country': 'C',
  'AWS::IoT::Certificate::Organization': 'O',
  'AWS::IoT::Certificate::OrganizationalUnit': 'OU',
  'AWS::IoT::Certificate::DistinguishedNameQualifier': 'dnQualifier',
  'AWS::IoT::Certificate::StateName': 'ST',
  'AWS::IoT::Certificate::CommonName': 'CN',
  'AWS::IoT::Certificate::SerialNumber': 'serialNumber',
};
const CERTIFICATE_PARAMETER = /^AWS::IoT::Certificate::/;

/** The subject attributes of a PEM certificate, by OpenSSL short name (single-valued attributes; the first wins). */
function subjectAttributes(certificatePem: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const line of new X509Certificate(certificatePem).subject.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0 && !attributes.has(line.slice(0, at))) attributes.set(line.slice(0, at), line.slice(at + 1));
  }
  return attributes;
}

/**
 * `given` are the device's `parameters`; `certificatePem` is the certificate of the ownership token. As AWS IoT does,
 * the `AWS::IoT::Certificate::*` parameters come from that certificate (its id, and its subject's attributes) and a
 * device sending a parameter of such a name does not replace them; one the template uses that the subject lacks
 * refuses the request.
 */
export function planRegisterThing(templateBody: string, given: Record<string, string>, certificateId: string, certificatePem: string): ProvisioningTemplatePlan {
  const template = JSON.parse(templateBody) as { Parameters?: Record<string, { Type?: string; Default?: string }>; Resources?: Record<string, { Type: string; Properties?: Record<string, Json> }>; DeviceConfiguration?: Record<string, Json> };
  const values: Record<string, string> = {};
  for (const [name, declared] of Object.entries(template.Parameters ?? {})) {
    if (CERTIFICATE_PARAMETER.test(name)) continue;
    const value = given[name] ?? declared.Default;
    if (value !== undefined) values[name] = String(value);
  }
  values['AWS::IoT::Certificate::Id'] = certificateId;
  const subject = subjectAttributes(certificatePem);
  for (const [parameter, attribute] of Object.entries(CERTIFICATE_SUBJECT_PARAMETERS)) {
    const value = subject.get(attribute);
    if (value !== undefined) values[parameter] = value;
  }
  const resolve = (value: Json | undefined, where: string): string => {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      if (typeof value.Ref === 'string') {
        if (!(value.Ref in values)) throw new TemplateError(`${where}: parameter ${value.Ref} ${CERTIFICATE_PARAMETER.test(value.Ref) ? 'is not in the certificate' : 'was not given and has no default'}`);
        return values[value.Ref];
      }
      const join = value['Fn::Join'];
      if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) return join[1].map((part) => resolve(part, where)).join(join[0]);
      const sub = value['Fn::Sub'];
      if (typeof sub === 'string') {
        return sub.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
          if (!(name in values)) throw new TemplateError(`${where}: parameter ${name} ${CERTIFICATE_PARAMETER.test(name) ? 'is not in the certificate' : 'was not given and has no default'}`);
          return values[name];
        });
      }
    }
    throw new TemplateError(`${where}: unsupported value ${JSON.stringify(value)}`);
  };
  const plan: ProvisioningTemplatePlan = { policyNames: [], deviceConfiguration: {} };
  for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
    const props = resource.Properties ?? {};
    const where = `Resources.${logicalId}`;
    if (resource.Type === 'AWS::IoT::Thing') {
      const attributes = props.AttributePayload as Record<string, Json> | undefined;
      plan.thing = {
        thingName: resolve(props.ThingName, `${where}.ThingName`),
        ...(attributes ? { attributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, resolve(v, `${where}.AttributePayload.${k}`)])) } : {}),
        ...(props.ThingTypeName !== undefined ? { thingTypeName: resolve(props.ThingTypeName, `${where}.ThingTypeName`) } : {}),
        ...(Array.isArray(props.ThingGroups) ? { thingGroups: props.ThingGroups.map((g) => resolve(g, `${where}.ThingGroups`)) } : {}),
      };
    } else if (resource.Type === 'AWS::IoT::Certificate') {
      const id = resolve(props.CertificateId, `${where}.CertificateId`);
      if (id !== certificateId) throw new TemplateError(`${where}.CertificateId must be the certificate of the ownership token`);
      if (props.Status !== undefined) plan.certificateStatus = resolve(props.Status, `${where}.Status`);
    } else if (resource.Type === 'AWS::IoT::Policy') {
      if (props.PolicyName === undefined) throw new TemplateError(`${where}: the stand-in supports PolicyName (an existing policy) only`);
      plan.policyNames.push(resolve(props.PolicyName, `${where}.PolicyName`));
    } else {
      throw new TemplateError(`${where}: resource type ${resource.Type} is not supported`);
    }
  }
  for (const [name, value] of Object.entries(template.DeviceConfiguration ?? {})) plan.deviceConfiguration[name] = resolve(value, `DeviceConfiguration.${name}`);
  return plan;
}
