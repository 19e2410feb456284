import * as http from 'node:http';
import * as https from 'node:https';
import { Logger } from '@nestjs/common';
import { GetRegistrationCodeCommand, IoTClient, RegisterCACertificateCommand, UpdateCACertificateCommand } from '@aws-sdk/client-iot';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { DomainError } from '../common/errors';
import { IotConfig } from '../config/config';
import { iotDomainError } from './iot-errors';
import { IotRegistry, RegisterCaInput } from './iot-registry';

export function iotClient(config: IotConfig): IoTClient {
  const agentOptions = { keepAlive: true, maxSockets: 64 };
  return new IoTClient({
    region: config.region,
    endpoint: config.endpoint,
    maxAttempts: config.maxAttempts,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: Math.min(config.requestTimeoutMs, 3000),
      requestTimeout: config.requestTimeoutMs,
      httpAgent: new http.Agent(agentOptions),
      httpsAgent: new https.Agent(agentOptions),
    }),
  });
}

/** AWS IoT through @aws-sdk/client-iot (REST-JSON). */
export class AwsIotRegistry extends IotRegistry {
  private readonly logger = new Logger('IoT');

  constructor(private readonly client: IoTClient) {
    super();
  }

  async registrationCode(): Promise<string> {
    const result = await this.call('GetRegistrationCode', () => this.client.send(new GetRegistrationCodeCommand({})));
    if (!result.registrationCode) throw iotDomainError({ name: 'EmptyResponse', $metadata: {} });
    return result.registrationCode;
  }

  async registerCaCertificate(input: RegisterCaInput): Promise<{ certificateId: string; certificateArn: string }> {
    const result = await this.call('RegisterCACertificate', () =>
      this.client.send(
        new RegisterCACertificateCommand({
          caCertificate: input.caCertificatePem,
          verificationCertificate: input.verificationCertificatePem,
          certificateMode: input.certificateMode,
          setAsActive: input.setAsActive,
          allowAutoRegistration: input.allowAutoRegistration,
          registrationConfig: input.registrationConfig,
        }),
      ),
    );
    return { certificateId: result.certificateId!, certificateArn: result.certificateArn! };
  }

  async deactivateCaCertificate(certificateId: string): Promise<void> {
    await this.call('UpdateCACertificate', () =>
      this.client.send(new UpdateCACertificateCommand({ certificateId, newStatus: 'INACTIVE', newAutoRegistrationStatus: 'DISABLE' })),
    );
  }

  private async call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (err) {
      if (err instanceof DomainError) throw err;
      const mapped = iotDomainError(err);
      this.logger.warn(`${operation} failed: ${(err as Error).name}: ${String((err as Error).message).slice(0, 300)} → ${mapped.code}`);
      throw mapped;
    }
  }
}
