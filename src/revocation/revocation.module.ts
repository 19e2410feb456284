import { Module } from '@nestjs/common';
import { AuthoritiesModule } from '../authorities/authorities.module';
import { CrlController } from './crl.controller';
import { CrlService } from './crl.service';

@Module({ imports: [AuthoritiesModule], controllers: [CrlController], providers: [CrlService], exports: [CrlService] })
export class RevocationModule {}
