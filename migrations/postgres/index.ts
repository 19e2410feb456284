import { MigrationInterface } from 'typeorm';
import { Init1795649577869 } from './1795649577869-Init';

export const POSTGRES_MIGRATIONS: (new () => MigrationInterface)[] = [Init1795649577869];
