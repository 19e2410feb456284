import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Public } from '../common/access.decorators';
import { Errors } from '../common/errors';
import { ApiProblems } from '../common/openapi';
import { MetricsService } from '../metrics/metrics.service';
import { HealthService } from './health.service';

export class HealthDto {
  @ApiProperty({ example: 'ok' }) status: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' }, example: { database: 'ok', 'authority:6c4e9db1-4762-4f1a-b415-2a7f2406bd17': 'ok' } })
  checks: Record<string, string>;
}

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthService,
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
    return { status: 'ok', checks: await this.health.readiness() };
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
