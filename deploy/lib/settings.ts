import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The deploy kit's structural choices, from CDK context (`cdk deploy -c name=value`; docs/aws-deploy.md). Values that
 * only change a setting (the Fleet PKI URL, the claim, the policy name, timeouts) are CloudFormation parameters
 * instead (fleet-pki-aws-stack.ts), so one synthesized template serves every account. Everything here is checked
 * before anything is built: a bad value fails the synth naming the context key.
 */
export interface DeploySettings {
  /** Where `npm run build:lambdas` wrote the zips (default: the repository's dist-lambdas/). */
  lambdaZipDir: string;
  /** Lambda runtime: nodejs22.x (default) or nodejs24.x. */
  runtime: 'nodejs22.x' | 'nodejs24.x';
  /** AWS IoT certificate provider name (one per account). */
  certificateProviderName: string;
  /**
   * Whether to create the certificate provider (default true). `-c certificateProvider=false` on a deployed stack
   * deletes it: CreateCertificateFromCsr goes back to AWS's own signing for the WHOLE account (docs/aws-deploy.md).
   */
  certificateProvider: boolean;
  /** Fleet provisioning template name (devices publish to $aws/provisioning-templates/<name>/provision/json). */
  templateName: string;
  /** Domain configuration name. */
  domainConfigurationName: string;
  /**
   * The MQTT client id prefix the claim certificate may connect with (default `provision-`): the claim policy allows
   * `iot:Connect` on `client/<prefix>*` only, so the shared claim certificate cannot take a real device's client id
   * (a device connects with its thing name, which must not start with this prefix; docs/aws-deploy.md).
   */
  claimClientIdPrefix: string;
  /** Custom domain (customer-managed) with its ACM server certificate; absent: an AWS-managed domain. */
  customDomain?: { domainName: string; serverCertificateArn: string; validationCertificateArn?: string; ocspAuthorizedResponderArn?: string };
  /** An existing Secrets Manager secret holding the Fleet PKI API key (its complete ARN); absent: the stack creates one. */
  apiKeySecretArn?: string;
}

export const FUNCTION_NAMES = ['certificate-provider', 'client-certificate-check', 'ocsp-staple'] as const;
export type FunctionName = (typeof FUNCTION_NAMES)[number];

const NAME = /^[\w=,@-]{1,128}$/;
const DOMAIN_CONFIGURATION_NAME = /^[\w.-]{1,128}$/;
/** A client id prefix: letters, digits and `-_.:`, not empty (no `*`, `?` or `$`: policy wildcards and variables). */
const CLIENT_ID_PREFIX = /^[\w.:-]{1,64}$/;
const ACM_ARN = /^arn:aws(-cn|-us-gov|-iso-b|-iso)?:acm:[a-z]{2}-(gov-|iso-|isob-)?[a-z]{4,9}-\d:\d{12}:certificate\/[a-zA-Z0-9/-]+$/;
const SECRET_ARN = /^arn:aws(-cn|-us-gov)?:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

type Context = (key: string) => unknown;

function text(context: Context, key: string): string | undefined {
  const value = context(key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new Error(`context "${key}" must be a string`);
  return value.trim();
}

function matching(context: Context, key: string, pattern: RegExp, fallback?: string): string | undefined {
  const value = text(context, key) ?? fallback;
  if (value !== undefined && !pattern.test(value)) throw new Error(`context "${key}" is not valid: "${value}" does not match ${pattern}`);
  return value;
}

function flag(context: Context, key: string, fallback: boolean): boolean {
  const value = context(key);
  if (value === undefined || value === null || value === '') return fallback;
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new Error(`context "${key}" must be true or false`);
}

export function readSettings(context: Context, repositoryRoot: string): DeploySettings {
  const runtime = text(context, 'runtime') ?? 'nodejs22.x';
  if (runtime !== 'nodejs22.x' && runtime !== 'nodejs24.x') throw new Error('context "runtime" must be nodejs22.x or nodejs24.x');
  const domainName = matching(context, 'domainName', DOMAIN);
  const serverCertificateArn = matching(context, 'serverCertificateArn', ACM_ARN);
  if (Boolean(domainName) !== Boolean(serverCertificateArn)) throw new Error('context "domainName" and "serverCertificateArn" go together: give both (custom domain) or neither (AWS-managed domain)');
  const lambdaZipDir = path.resolve(repositoryRoot, text(context, 'lambdaZipDir') ?? 'dist-lambdas');
  return {
    lambdaZipDir,
    runtime,
    certificateProviderName: matching(context, 'certificateProviderName', NAME, 'fleet-pki')!,
    certificateProvider: flag(context, 'certificateProvider', true),
    templateName: matching(context, 'templateName', NAME, 'fleet-pki-provisioning')!,
    domainConfigurationName: matching(context, 'domainConfigurationName', DOMAIN_CONFIGURATION_NAME, 'fleet-pki')!,
    claimClientIdPrefix: matching(context, 'claimClientIdPrefix', CLIENT_ID_PREFIX, 'provision-')!,
    customDomain:
      domainName && serverCertificateArn
        ? {
            domainName,
            serverCertificateArn,
            validationCertificateArn: matching(context, 'validationCertificateArn', ACM_ARN),
            ocspAuthorizedResponderArn: matching(context, 'ocspAuthorizedResponderArn', ACM_ARN),
          }
        : undefined,
    apiKeySecretArn: matching(context, 'apiKeySecretArn', SECRET_ARN),
  };
}

/** The zip of one function; a missing one fails the synth with the command that makes it. */
export function lambdaZip(settings: DeploySettings, name: FunctionName): string {
  const file = path.join(settings.lambdaZipDir, `${name}.zip`);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`npm run build:lambdas\` at the repository root first (docs/aws-deploy.md)`);
  return file;
}
