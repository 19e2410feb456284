import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsIn } from 'class-validator';
import { RequestContext } from '../common/actor';
import { Ctx, RequirePermission } from '../common/access.decorators';
import { Errors } from '../common/errors';
import { ApiIdParam, ApiProblems, ApiSecured } from '../common/openapi';
import { PageQueryDto } from '../common/page-query.dto';
import { UuidParam } from '../common/pipes';
import { Permission } from '../common/roles';
import { DeadJobsService } from './dead-jobs.service';

class JobQueryDto extends PageQueryDto {
  @ApiProperty({ enum: ['dead'], description: 'Only dead-lettered jobs are listed' }) @IsIn(['dead']) state: 'dead';
}

class JobSubjectDto {
  @ApiProperty({ example: 'certificate' }) type: string;
  @ApiProperty() id: string;
}

class JobDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ example: 'iot.register-certificate' }) kind: string;
  @ApiProperty({ enum: ['pending', 'running', 'done', 'dead'] }) status: string;
  @ApiProperty({ type: 'integer' }) attempts: number;
  @ApiProperty({ nullable: true, type: String, description: 'The last failure (code and message; no secrets), at most 1,000 characters' }) lastError: string | null;
  @ApiProperty({ type: JobSubjectDto, nullable: true, description: 'What the job works on (a certificate, an authority, …)' }) subject: JobSubjectDto | null;
  @ApiProperty({ format: 'date-time' }) createdAt: string;
  @ApiProperty({ format: 'date-time' }) updatedAt: string;
}

class JobListDto {
  @ApiProperty({ type: [JobDto] }) items: JobDto[];
  @ApiPropertyOptional({ nullable: true, type: String }) nextCursor: string | null;
}

@ApiTags('jobs')
@Controller('v1/jobs')
export class DeadJobsController {
  constructor(private readonly jobs: DeadJobsService) {}

  @Get()
  @RequirePermission(Permission.ReadInventory)
  @ApiOperation({
    summary: 'Dead-lettered outbox jobs, oldest first',
    description: 'Side effects on AWS given up after OUTBOX_MAX_ATTEMPTS (or at once, on a failure no retry can fix). Pass nextCursor as cursor. Any role.',
  })
  @ApiOkResponse({ type: JobListDto })
  @ApiSecured()
  @ApiProblems(Errors.validation, Errors.invalidCursor)
  async listJobs(@Query() query: JobQueryDto): Promise<JobListDto> {
    return this.jobs.list(query.cursor, query.limit ?? 100);
  }

  @Post(':id/retry')
  @HttpCode(200)
  @RequirePermission(Permission.RetryJobs)
  @ApiOperation({
    summary: 'Retry a dead job',
    description: 'Makes the job pending again with a fresh set of attempts, once the fault is fixed; the outbox runs it. Audited (outbox.job-retried). Requires the operator or admin role.',
  })
  @ApiIdParam('job')
  @ApiOkResponse({ type: JobDto, description: 'The job, pending again' })
  @ApiSecured()
  @ApiProblems(Errors.jobNotFound, Errors.jobNotDead)
  async retryJob(@Ctx() ctx: RequestContext, @Param('id', UuidParam) id: string): Promise<JobDto> {
    return this.jobs.retry(ctx, id);
  }
}
