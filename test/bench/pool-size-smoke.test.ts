/**
 * Keeps the pool-size bench row from rotting: runs it once on the test emulators and checks
 * the shape of its result and its invariant (500 idle hosts within 1.5x of 10, in capacity
 * units). The figures themselves belong to `npm run bench`.
 */
import { describe, expect, inject, it } from 'vitest';
import { renderResult } from '../../bench/lib/report.ts';
import { poolSizeBenchmark } from '../../bench/pool-size.ts';

describe('pool-size bench row', () => {
  it('measures a warm acquisition on 10 and 500 idle hosts, and the plan without the index', async () => {
    const env = { dynamoEndpoint: inject('dynamoEndpoint'), sqsEndpoint: inject('sqsEndpoint') };
    const result = await poolSizeBenchmark({
      env,
      runs: 1,
      quick: true,
      cores: 2,
      log: () => {},
    });
    expect(result.violations).toEqual([]);
    const cu = result.rows.map((r) => r.figure.median);
    const [small, large, hidden, ratio] = cu;
    expect(small).toBeGreaterThan(0);
    expect(large).toBeLessThanOrEqual(1.5 * small!);
    // Without the index the same acquisition reads all 500: the row can tell them apart.
    expect(hidden).toBeGreaterThan(1.5 * small!);
    expect(ratio).toBeCloseTo(large! / small!, 2);
    expect(renderResult(result)).toContain('500 idle hosts');
  }, 120_000);
});
