import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { IotModule } from '../iot/iot.module';
import { RotationModule } from '../rotation/rotation.module';
import { FleetAuditRepository } from './fleet-audit.repository';
import { FleetAuditsController } from './fleet-audits.controller';
import { FleetAuditsService } from './fleet-audits.service';
import { FleetInventory } from './fleet-inventory.repository';
import { TypeOrmFleetInventory } from './typeorm-fleet-inventory.repository';
import { TypeOrmFleetAuditRepository } from './typeorm-fleet-audit.repository';

/** Fleet security audits. */
@Module({
  imports: [AuthoritiesModule, IotModule, RotationModule],
  controllers: [FleetAuditsController],
  providers: [FleetAuditsService, { provide: FleetAuditRepository, useClass: TypeOrmFleetAuditRepository }, { provide: FleetInventory, useClass: TypeOrmFleetInventory }],
})
export class FleetModule {}
