import { Aws, CfnOutput, CfnParameter, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as iot from 'aws-cdk-lib/aws-iot';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { DeploySettings, FunctionName, lambdaZip } from './settings';

/**
 * Fleet PKI in an AWS IoT account (docs/aws-deploy.md):
 * - three Lambda functions from the zips of `npm run build:lambdas`: `certificate-provider` (signs every
 *   CreateCertificateFromCsr of the account through Fleet PKI), `client-certificate-check` (the pre-authentication
 *   callback of the domain configuration: refuses revoked certificates at CONNECT) and `ocsp-staple` (OCSP answers
 *   for a custom domain's server certificate);
 * - the AWS IoT certificate provider (one per account: it takes over CreateCertificateFromCsr for the WHOLE account);
 * - a fleet provisioning template bound to a Fleet PKI claim and to the AWS IoT policy of a Fleet PKI policy template,
 *   its provisioning role, and the AWS IoT policy the claim certificate needs for the provisioning topics;
 * - the domain configuration with the pre-authentication callback (and, on a custom domain, the OCSP Lambda);
 * - the Secrets Manager secret holding the Fleet PKI API key (created, or an existing one imported).
 *
 * IAM: one role per function, each with an inline policy naming exactly its log group and (for the two that call
 * authenticated routes) the one secret; no AWS managed policy. Lambda invoke permissions go to iot.amazonaws.com
 * only, with SourceAccount and SourceArn. test/e2e/deploy-least-privilege.e2e.ts checks the synthesized template.
 */
export class FleetPkiAwsStack extends Stack {
  constructor(scope: Construct, id: string, settings: DeploySettings, props: StackProps = {}) {
    super(scope, id, {
      description: 'Fleet PKI: certificate provider, pre-authentication and OCSP stapling Lambdas for AWS IoT Core (docs/aws-deploy.md)',
      ...props,
    });

    const fleetPkiUrl = new CfnParameter(this, 'FleetPkiUrl', {
      type: 'String',
      description: 'Base URL of the Fleet PKI service, e.g. https://pki.example.com (the Lambdas call its API and /ocsp)',
      allowedPattern: '^https://[^\\s/]+(/[^\\s]*)?$',
      constraintDescription: 'an https:// URL',
    });
    const claimId = new CfnParameter(this, 'FleetPkiClaimId', {
      type: 'String',
      description: 'The Fleet PKI claim (UUID) whose claim certificate devices use for fleet provisioning',
      allowedPattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
      constraintDescription: 'a UUID',
    });
    const devicePolicyName = new CfnParameter(this, 'DevicePolicyName', {
      type: 'String',
      default: 'fleet-default',
      description: 'The AWS IoT policy that RegisterThing attaches: the AWS name of a Fleet PKI policy template (POST /v1/iot/policies)',
      allowedPattern: '^[\\w+=,.@-]{1,128}$',
    });
    const timeoutMs = new CfnParameter(this, 'FleetPkiTimeoutMs', {
      type: 'Number',
      default: 1500,
      minValue: 100,
      maxValue: 10000,
      description: 'Timeout of one call from a Lambda to Fleet PKI, in milliseconds (FLEET_PKI_TIMEOUT_MS); every invocation also ends its calls 500 ms before its Lambda timeout',
    });
    const statusCacheSeconds = new CfnParameter(this, 'StatusCacheSeconds', {
      type: 'Number',
      default: 10,
      minValue: 0,
      maxValue: 300,
      description: 'How long client-certificate-check may reuse a certificate status it read (STATUS_CACHE_SECONDS): the bound on how late a revocation can take effect at CONNECT',
    });
    const caBundle = new CfnParameter(this, 'FleetPkiCaBundle', {
      type: 'String',
      default: '',
      description: 'Optional PEM of the CA that signed the Fleet PKI server certificate, when it is not publicly trusted (FLEET_PKI_CA_BUNDLE)',
    });

    // The API key of the integration role (certificate-provider and client-certificate-check read it at cold start
    // and cache it). Created by the stack with a random placeholder unless an existing secret is named; the operator then
    // puts the key in it (docs/aws-deploy.md, step 3). Retained on stack deletion: it is a credential others may still use.
    const secret = settings.apiKeySecretArn
      ? secretsmanager.Secret.fromSecretCompleteArn(this, 'ApiKeySecret', settings.apiKeySecretArn)
      : new secretsmanager.Secret(this, 'ApiKeySecret', {
          description: 'Fleet PKI API key of the AWS integration role (docs/aws-deploy.md); set with put-secret-value',
          removalPolicy: RemovalPolicy.RETAIN,
        });

    const runtime = settings.runtime === 'nodejs24.x' ? lambda.Runtime.NODEJS_24_X : lambda.Runtime.NODEJS_22_X;
    const commonEnvironment = {
      FLEET_PKI_URL: fleetPkiUrl.valueAsString,
      FLEET_PKI_TIMEOUT_MS: timeoutMs.valueAsString,
      FLEET_PKI_CA_BUNDLE: caBundle.valueAsString,
    };

    const makeFunction = (name: FunctionName, options: { timeout: Duration; environment: Record<string, string>; readsSecret: boolean; description: string }) => {
      const logGroup = new logs.LogGroup(this, `${pascal(name)}Logs`, {
        logGroupName: `/fleet-pki/lambda/${name}`,
        retention: logs.RetentionDays.ONE_MONTH,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const role = new iam.Role(this, `${pascal(name)}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Fleet PKI ${name} Lambda: its own log group${options.readsSecret ? ' and the API key secret' : ''}, nothing else`,
      });
      // Log streams of this function's log group only (the ARN ends in :* and so covers its log-stream resources).
      role.addToPolicy(new iam.PolicyStatement({ sid: 'OwnLogGroup', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] }));
      if (options.readsSecret) {
        role.addToPolicy(new iam.PolicyStatement({ sid: 'ApiKeySecret', actions: ['secretsmanager:GetSecretValue'], resources: [secret.secretArn] }));
      }
      return new lambda.Function(this, `${pascal(name)}Function`, {
        description: options.description,
        runtime,
        architecture: lambda.Architecture.ARM_64,
        handler: 'index.handler',
        code: lambda.Code.fromAsset(lambdaZip(settings, name)),
        memorySize: 256,
        timeout: options.timeout,
        role,
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        environment: { ...commonEnvironment, ...options.environment },
      });
    };

    const certificateProviderFn = makeFunction('certificate-provider', {
      description: 'AWS IoT certificate provider: signs CreateCertificateFromCsr through Fleet PKI',
      timeout: Duration.seconds(15),
      environment: { FLEET_PKI_API_KEY_SECRET_ID: secret.secretArn },
      readsSecret: true,
    });
    const clientCheckFn = makeFunction('client-certificate-check', {
      description: 'AWS IoT pre-authentication: refuses revoked client certificates at CONNECT (fails closed)',
      timeout: Duration.seconds(5),
      environment: { FLEET_PKI_API_KEY_SECRET_ID: secret.secretArn, STATUS_CACHE_SECONDS: statusCacheSeconds.valueAsString },
      readsSecret: true,
    });
    const ocspFn = makeFunction('ocsp-staple', {
      description: 'AWS IoT OCSP stapling: asks the Fleet PKI OCSP responder for the domain server certificate',
      timeout: Duration.seconds(15),
      environment: {},
      readsSecret: false,
    });

    // --- Certificate provider. ONE per account: from its creation on, every CreateCertificateFromCsr in the account
    // (this region) goes to certificate-provider; deleting it restores AWS's own signing (docs/aws-deploy.md).
    let provider: iot.CfnCertificateProvider | undefined;
    if (settings.certificateProvider) {
      const providerPermission = new lambda.CfnPermission(this, 'CertificateProviderInvoke', {
        action: 'lambda:InvokeFunction',
        functionName: certificateProviderFn.functionArn,
        principal: 'iot.amazonaws.com',
        sourceAccount: Aws.ACCOUNT_ID,
        sourceArn: `arn:${Aws.PARTITION}:iot:${Aws.REGION}:${Aws.ACCOUNT_ID}:certificateprovider/${settings.certificateProviderName}`,
      });
      provider = new iot.CfnCertificateProvider(this, 'CertificateProvider', {
        certificateProviderName: settings.certificateProviderName,
        lambdaFunctionArn: certificateProviderFn.functionArn,
        accountDefaultForOperations: ['CreateCertificateFromCsr'],
      });
      provider.addResourceDependency(providerPermission);
    }

    // --- Fleet provisioning template: RegisterThing creates the thing named by the certificate's CN, activates the
    // certificate Fleet PKI issued and attaches the Fleet PKI policy template's AWS IoT policy.
    const provisioningRole = new iam.Role(this, 'ProvisioningRole', {
      assumedBy: new iam.ServicePrincipal('iot.amazonaws.com'),
      description: 'Fleet PKI provisioning template: creates things, activates certificates, attaches the one device policy',
    });
    const iotArn = (resource: string) => `arn:${Aws.PARTITION}:iot:${Aws.REGION}:${Aws.ACCOUNT_ID}:${resource}`;
    provisioningRole.addToPolicy(new iam.PolicyStatement({ sid: 'Things', actions: ['iot:CreateThing', 'iot:DescribeThing'], resources: [iotArn('thing/*')] }));
    provisioningRole.addToPolicy(new iam.PolicyStatement({ sid: 'Certificates', actions: ['iot:DescribeCertificate', 'iot:UpdateCertificate', 'iot:AttachPolicy'], resources: [iotArn('cert/*')] }));
    provisioningRole.addToPolicy(new iam.PolicyStatement({ sid: 'DevicePolicy', actions: ['iot:GetPolicy'], resources: [iotArn(`policy/${devicePolicyName.valueAsString}`)] }));
    // The Service Authorization Reference lists no resource type for AttachThingPrincipal: only "*" works
    // (docs/aws-deploy.md, "IAM exceptions"; the least-privilege test allows exactly this statement).
    provisioningRole.addToPolicy(new iam.PolicyStatement({ sid: 'AttachThingPrincipalHasNoResourceType', actions: ['iot:AttachThingPrincipal'], resources: ['*'] }));

    // The thing name comes from the certificate, never from the device: `AWS::IoT::Certificate::CommonName` is
    // resolved by AWS IoT from the certificate being provisioned (a parameter of that name sent by the device does not
    // replace it), and Fleet PKI's device certificates carry the thing name Fleet PKI recorded (the claim's thing-name
    // template applied to the serial) as their CN. A claim holder therefore gets exactly the thing its certificate
    // names, and the AWS thing name is Fleet PKI's thingName (docs/aws-fleet-provisioning.md, "Thing name binding").
    const templateBody = {
      Parameters: {
        'AWS::IoT::Certificate::CommonName': { Type: 'String' },
        'AWS::IoT::Certificate::Id': { Type: 'String' },
      },
      Resources: {
        thing: {
          Type: 'AWS::IoT::Thing',
          Properties: { ThingName: { Ref: 'AWS::IoT::Certificate::CommonName' }, AttributePayload: { fleetPkiClaim: claimId.valueAsString } },
        },
        certificate: {
          Type: 'AWS::IoT::Certificate',
          Properties: { CertificateId: { Ref: 'AWS::IoT::Certificate::Id' }, Status: 'ACTIVE' },
        },
        policy: {
          Type: 'AWS::IoT::Policy',
          Properties: { PolicyName: devicePolicyName.valueAsString },
        },
      },
    };
    const template = new iot.CfnProvisioningTemplate(this, 'ProvisioningTemplate', {
      templateName: settings.templateName,
      description: 'Fleet PKI fleet provisioning by claim: certificates signed by Fleet PKI through the certificate provider',
      enabled: true,
      templateType: 'FLEET_PROVISIONING',
      provisioningRoleArn: provisioningRole.roleArn,
      templateBody: this.toJsonString(templateBody),
      tags: [{ key: 'fleet-pki:claim-id', value: claimId.valueAsString }],
    });
    template.node.addDependency(provisioningRole);

    // The AWS IoT policy of the claim certificate: connect with a client id under the claim prefix only (so the shared
    // claim certificate cannot take a device's client id and disconnect it), and the two fleet provisioning topic
    // families only.
    const claimPolicy = new iot.CfnPolicy(this, 'ClaimPolicy', {
      policyName: `${settings.templateName}-claim`,
      policyDocument: {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'iot:Connect', Resource: iotArn(`client/${settings.claimClientIdPrefix}*`) },
          {
            Effect: 'Allow',
            Action: ['iot:Publish', 'iot:Receive'],
            Resource: [iotArn('topic/$aws/certificates/create-from-csr/*'), iotArn(`topic/$aws/provisioning-templates/${settings.templateName}/provision/*`)],
          },
          {
            Effect: 'Allow',
            Action: 'iot:Subscribe',
            Resource: [iotArn('topicfilter/$aws/certificates/create-from-csr/*'), iotArn(`topicfilter/$aws/provisioning-templates/${settings.templateName}/provision/*`)],
          },
        ],
      },
    });

    // --- Domain configuration: X.509 over MQTT with the pre-authentication callback (clients must send SNI).
    const domainConfigurationArns = iotArn(`domainconfiguration/${settings.domainConfigurationName}/*`);
    const preAuthPermission = new lambda.CfnPermission(this, 'ClientCertificateCheckInvoke', {
      action: 'lambda:InvokeFunction',
      functionName: clientCheckFn.functionArn,
      principal: 'iot.amazonaws.com',
      sourceAccount: Aws.ACCOUNT_ID,
      sourceArn: domainConfigurationArns,
    });
    const custom = settings.customDomain;
    let ocspPermission: lambda.CfnPermission | undefined;
    if (custom) {
      ocspPermission = new lambda.CfnPermission(this, 'OcspStapleInvoke', {
        action: 'lambda:InvokeFunction',
        functionName: ocspFn.functionArn,
        principal: 'iot.amazonaws.com',
        sourceAccount: Aws.ACCOUNT_ID,
        sourceArn: domainConfigurationArns,
      });
    }
    const domain = new iot.CfnDomainConfiguration(this, 'DomainConfiguration', {
      domainConfigurationName: settings.domainConfigurationName,
      domainConfigurationStatus: 'ENABLED',
      serviceType: 'DATA',
      authenticationType: 'AWS_X509',
      applicationProtocol: 'SECURE_MQTT',
      clientCertificateConfig: { clientCertificateCallbackArn: clientCheckFn.functionArn },
      ...(custom
        ? {
            domainName: custom.domainName,
            serverCertificateArns: [custom.serverCertificateArn],
            validationCertificateArn: custom.validationCertificateArn,
            serverCertificateConfig: {
              enableOcspCheck: true,
              ocspLambdaArn: ocspFn.functionArn,
              ocspAuthorizedResponderArn: custom.ocspAuthorizedResponderArn,
            },
          }
        : {}),
    });
    domain.addResourceDependency(preAuthPermission);
    if (ocspPermission) domain.addResourceDependency(ocspPermission);

    if (provider) new CfnOutput(this, 'CertificateProviderArn', { value: provider.attrArn, description: 'Deleting it gives CreateCertificateFromCsr back to AWS for the WHOLE account' });
    new CfnOutput(this, 'ProvisioningTemplateName', { value: template.ref });
    new CfnOutput(this, 'ClaimPolicyName', { value: claimPolicy.ref, description: 'Attach to the claim certificate registered in AWS IoT' });
    new CfnOutput(this, 'ClaimClientIdPrefix', { value: settings.claimClientIdPrefix, description: 'Devices connect with the claim certificate using a client id starting with this' });
    new CfnOutput(this, 'DomainConfigurationName', { value: domain.ref });
    new CfnOutput(this, 'ApiKeySecretArn', { value: secret.secretArn, description: 'Put the Fleet PKI integration API key here' });
    for (const fn of [certificateProviderFn, clientCheckFn, ocspFn]) new CfnOutput(this, `${fn.node.id}Arn`, { value: fn.functionArn });
  }
}

function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, _dash, letter: string) => letter.toUpperCase());
}
