#!/usr/bin/env node
// The CDK app of the deploy kit (docs/aws-deploy.md). Environment-agnostic on purpose: `cdk synth` needs no AWS
// credentials and makes no lookups (CI runs it offline); `cdk deploy` takes the account and region of the caller.
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { FleetPkiAwsStack } from '../lib/fleet-pki-aws-stack';
import { readSettings } from '../lib/settings';

const app = new App();
const settings = readSettings((key) => app.node.tryGetContext(key), path.resolve(__dirname, '..', '..'));
new FleetPkiAwsStack(app, (app.node.tryGetContext('stackName') as string | undefined) ?? 'FleetPkiAws', settings);
app.synth();
