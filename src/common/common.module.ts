import { Global, Module } from '@nestjs/common';
import { Clock, SystemClock } from './clock';

/** The clock port, bound to the system clock (tests can override it). */
@Global()
@Module({
  providers: [{ provide: Clock, useClass: SystemClock }],
  exports: [Clock],
})
export class CommonModule {}
