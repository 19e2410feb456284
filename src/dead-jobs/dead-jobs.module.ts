import { Module } from '@nestjs/common';
import { DeadJobsController } from './dead-jobs.controller';
import { DeadJobsService } from './dead-jobs.service';

/** Dead outbox jobs: list and retry (the outbox itself is in jobs/). */
@Module({
  controllers: [DeadJobsController],
  providers: [DeadJobsService],
})
export class DeadJobsModule {}
