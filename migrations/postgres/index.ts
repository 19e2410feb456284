import { MigrationInterface } from 'typeorm';
import { Init1795649577869 } from './1795649577869-Init';
import { UniqueAuthorityKey1795652846146 } from './1795652846146-UniqueAuthorityKey';
import { IotCaRegistrations1795653175818 } from './1795653175818-IotCaRegistrations';
import { OutboxAndIotStatus1795653401665 } from './1795653401665-OutboxAndIotStatus';
import { LiveOutboxDedupe1795654298851 } from './1795654298851-LiveOutboxDedupe';
import { FactoryClaims1795660765928 } from './1795660765928-FactoryClaims';
import { RotationAndOcsp1795662690640 } from './1795662690640-RotationAndOcsp';
import { PolicyTemplatesAndAudits1795664164817 } from './1795664164817-PolicyTemplatesAndAudits';
import { AuthorityLeafIssuance1796553572584 } from './1796553572584-AuthorityLeafIssuance';
import { VersionedAllowlists1796555848788 } from './1796555848788-VersionedAllowlists';
import { SearchIndexes1796570289287 } from './1796570289287-SearchIndexes';
import { ExternalRootAuthorities1796579908156 } from './1796579908156-ExternalRootAuthorities';
import { EstLabels1796579963034 } from './1796579963034-EstLabels';
import { IdempotencyRecords1796583543662 } from './1796583543662-IdempotencyRecords';
import { AppendOnlyAudit1796600000000 } from './1796600000000-AppendOnlyAudit';
import { ReplicaWideLimits1796600100000 } from './1796600100000-ReplicaWideLimits';

export const POSTGRES_MIGRATIONS: (new () => MigrationInterface)[] = [Init1795649577869, UniqueAuthorityKey1795652846146, IotCaRegistrations1795653175818, OutboxAndIotStatus1795653401665, LiveOutboxDedupe1795654298851, FactoryClaims1795660765928, RotationAndOcsp1795662690640, PolicyTemplatesAndAudits1795664164817, AuthorityLeafIssuance1796553572584, VersionedAllowlists1796555848788, SearchIndexes1796570289287, ExternalRootAuthorities1796579908156, EstLabels1796579963034, IdempotencyRecords1796583543662, AppendOnlyAudit1796600000000, ReplicaWideLimits1796600100000];
