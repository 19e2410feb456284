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

export function planRegisterThing(templateBody: string, given: Record<string, string>, certificateId: string): ProvisioningTemplatePlan {
  const template = JSON.parse(templateBody) as { Parameters?: Record<string, { Type?: string; Default?: string }>; Resources?: Record<string, { Type: string; Properties?: Record<string, Json> }>; DeviceConfiguration?: Record<string, Json> };
  const values: Record<string, string> = { 'AWS::IoT::Certificate::Id': certificateId };
  for (const [name, declared] of Object.entries(template.Parameters ?? {})) {
    const value = given[name] ?? declared.Default;
    if (value !== undefined) values[name] = String(value);
  }
  const resolve = (value: Json | undefined, where: string): string => {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'boolean') return String(value);
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      if (typeof value.Ref === 'string') {
        if (!(value.Ref in values)) throw new TemplateError(`${where}: parameter ${value.Ref} was not given and has no default`);
        return values[value.Ref];
      }
      const join = value['Fn::Join'];
      if (Array.isArray(join) && typeof join[0] === 'string' && Array.isArray(join[1])) return join[1].map((part) => resolve(part, where)).join(join[0]);
      const sub = value['Fn::Sub'];
      if (typeof sub === 'string') {
        return sub.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
          if (!(name in values)) throw new TemplateError(`${where}: parameter ${name} was not given and has no default`);
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
