import { Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { DatabaseProbe } from './database-probe';
import { dataSourceOptions } from './data-source-options';
import { Transactions } from './transactions';
import { MetricsService } from '../metrics/metrics.service';
import { GROUP_COMMIT_OPTIONS, GroupCommitOptions, TypeOrmTransactions } from './typeorm-transactions';
import { TypeOrmLogger } from './typeorm-logger';
import { IdempotencyRecords } from './idempotency-records';
import { TypeOrmIdempotencyRecords } from './typeorm-idempotency-records';
import { IdempotencyInterceptor } from './idempotency.interceptor';
import { Pruner } from './pruner';

@Global()
@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({ ...dataSourceOptions(config.database), migrationsRun: true, logger: new TypeOrmLogger(), maxQueryExecutionTime: 1000 }),
    }),
  ],
  providers: [
    {
      provide: GROUP_COMMIT_OPTIONS,
      inject: [APP_CONFIG, MetricsService],
      useFactory: (config: AppConfig, metrics: MetricsService): GroupCommitOptions => ({
        ...config.groupCommit,
        observeGroup: (size) => metrics.groupCommitSize.observe(size),
      }),
    },
    TypeOrmTransactions,
    { provide: Transactions, useExisting: TypeOrmTransactions },
    DatabaseProbe,
    { provide: IdempotencyRecords, useClass: TypeOrmIdempotencyRecords },
    Pruner,
    IdempotencyInterceptor,
    { provide: APP_INTERCEPTOR, useExisting: IdempotencyInterceptor },
  ],
  exports: [TypeOrmTransactions, Transactions, DatabaseProbe, IdempotencyRecords, IdempotencyInterceptor, Pruner],
})
export class DatabaseModule {}
