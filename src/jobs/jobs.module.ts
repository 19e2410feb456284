import { Global, Module } from '@nestjs/common';
import { OutboxRepository } from './outbox.repository';
import { OutboxService } from './outbox.service';
import { TypeOrmOutboxRepository } from './typeorm-outbox.repository';

/** The durable outbox, for every feature that has side effects outside the database. */
@Global()
@Module({
  providers: [OutboxService, { provide: OutboxRepository, useClass: TypeOrmOutboxRepository }],
  exports: [OutboxService, OutboxRepository],
})
export class JobsModule {}
