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
import { DataSource } from 'typeorm';
import { LocalPacing, Leases, Pacing } from '../common/pacing';
import { ReplicaRateLimits } from '../common/request-rate-limits';
import { SharedPacing } from './shared-pacing';
import { SharedRequestLimits } from './shared-request-limits';
import { TypeOrmLeases } from './typeorm-leases';

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
    // Replica-wide budgets and leases (docs/limits.md): shared through PostgreSQL; on SQLite one process is the whole service.
    {
      provide: Pacing,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): Pacing => (config.database.driver === 'postgres' ? new SharedPacing(config.database.url) : new LocalPacing()),
    },
    {
      provide: ReplicaRateLimits,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): ReplicaRateLimits | null => (config.database.driver === 'postgres' ? new SharedRequestLimits(config.database.url) : null),
    },
    { provide: Leases, inject: [DataSource], useFactory: (dataSource: DataSource) => new TypeOrmLeases(dataSource) },
  ],
  exports: [Pacing, ReplicaRateLimits, Leases, TypeOrmTransactions, Transactions, DatabaseProbe, IdempotencyRecords, IdempotencyInterceptor, Pruner],
})
export class DatabaseModule {}
