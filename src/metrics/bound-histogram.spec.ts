import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { BoundHistogram } from './bound-histogram';

describe('BoundHistogram', () => {
  it('renders exactly what prom-client renders for the same observations', async () => {
    const bounds = [0.005, 0.01, 0.1, 1];
    const observations: [Record<'method' | 'route', string>, number][] = [
      [{ method: 'GET', route: '/a' }, 0.001],
      [{ method: 'GET', route: '/a' }, 0.005],
      [{ method: 'GET', route: '/a' }, 0.05],
      [{ method: 'POST', route: '/b' }, 2],
      [{ method: 'GET', route: '/a' }, 0.5],
    ];
    const theirs = new Registry();
    const reference = new Histogram({ name: 'h', help: 'help text', labelNames: ['method', 'route'], buckets: bounds, registers: [theirs] });
    const ours = new Registry();
    const bound = new BoundHistogram('h', 'help text', ['method', 'route'], bounds, ours);
    for (const [labels, value] of observations) {
      reference.observe(labels, value);
      bound.series(labels).observe(value);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    assert.match(await ours.metrics(), /h_bucket\{le="0.01",method="GET",route="\/a"\} 2\n/);
  });

  it('hands back the same series for the same labels, and forgets them all on reset', async () => {
    const registry = new Registry();
    const bound = new BoundHistogram('h', 'help', ['route'], [1], registry);
    assert.equal(bound.series({ route: '/x' }), bound.series({ route: '/x' }));
    assert.notEqual(bound.series({ route: '/x' }), bound.series({ route: '/y' }));
    bound.series({ route: '/x' }).observe(3);
    assert.match(await registry.metrics(), /h_count\{route="\/x"\} 1/);
    bound.reset();
    assert.doesNotMatch(await registry.metrics(), /h_count/);
  });
});
