import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { Public } from '../common/access.decorators';
import { ApiProblems } from '../common/openapi';
import { AuthorityRepository } from '../authorities/authority.repository';
import { DomainError, Errors } from '../common/errors';
import { KeyManagers } from '../keys/key-manager';
import { MetricsService } from '../metrics/metrics.service';

export class HealthDto {
  @ApiProperty({ example: 'ok' }) status: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, example: { database: 'ok', 'authority:6c4e9db1-4762-4f1a-b415-2a7f2406bd17': 'ok' } })
  checks: Record<string, string>;
}

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly keys: KeyManagers,
    private readonly authorities: AuthorityRepository,
    private readonly metrics: MetricsService,
  ) {}

  @Get('healthz')
  @Public()
  @ApiOperation({ summary: 'Liveness: the process answers', description: 'Public. Checks nothing beyond the process answering.' })
  @ApiOkResponse({ type: HealthDto, description: 'The process is alive' })
  healthz(): HealthDto {
    return { status: 'ok', checks: {} };
  }

  @Get('readyz')
  @Public()
  @ApiOperation({
    summary: 'Readiness: database reachable, every active authority key able to sign',
    description: 'Public. Answers 503 NOT_READY, with the state of each check, when the database or an active authority’s key (local or AWS KMS) is not usable.',
  })
  @ApiOkResponse({ type: HealthDto, description: 'Every check passed' })
  @ApiProblems(Errors.notReady)
  async readyz(): Promise<HealthDto> {
    const checks: Record<string, string> = {};
    try {
      await this.dataSource.query('SELECT 1');
      checks.database = 'ok';
    } catch {
      checks.database = 'unreachable';
    }
    if (checks.database === 'ok') {
      // Every active authority's key must be able to sign (local: decrypts; KMS: DescribeKey, cached briefly).
      for (const authority of await this.authorities.listAll()) {
        if (authority.status !== 'active') continue;
        try {
          await this.keys.get(authority.keyBackend).checkKey(authority.keyRef, authority.keySpec);
          checks[`authority:${authority.id}`] = 'ok';
        } catch (err) {
          checks[`authority:${authority.id}`] = `${authority.keyBackend} key ${err instanceof DomainError ? err.code : 'failing'}`;
        }
      }
    }
    const failed = Object.entries(checks).filter(([, state]) => state !== 'ok');
    if (failed.length) {
      throw Errors.notReady(`not ready: ${failed.map(([name, state]) => `${name} ${state}`).join(', ')}`, { checks });
    }
    return { status: 'ok', checks };
  }

  @Get('metrics')
  @Public()
  @Header('Content-Type', 'text/plain; version=0.0.4')
  @ApiOperation({ summary: 'Prometheus metrics', description: 'Public. Prometheus text exposition format.' })
  @ApiOkResponse({ description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } })
  metricsText(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
