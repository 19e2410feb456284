import { Global, Module } from '@nestjs/common';
import { AuditController } from './audit.controller';
import { AuditRepository } from './audit.repository';
import { AuditService } from './audit.service';
import { TypeOrmAuditRepository } from './typeorm-audit.repository';

/** The audit log: global, since every state change in every feature records into it. */
@Global()
@Module({
  controllers: [AuditController],
  providers: [AuditService, { provide: AuditRepository, useClass: TypeOrmAuditRepository }],
  exports: [AuditService],
})
export class AuditModule {}
