import { describe, expect, it } from 'vitest';
import { latestById } from '../../lib/cli/admin.ts';

describe('latestById (drydock leases/resources)', () => {
  it('shows an object met twice once, in its latest version, where it was first listed', () => {
    const listed = [
      { id: 'a', version: 1, status: 'pending' },
      { id: 'b', version: 3, status: 'active' },
      { id: 'a', version: 4, status: 'destroyed' },
      { id: 'b', version: 2, status: 'acquired' },
    ];
    expect(latestById(listed)).toEqual([
      { id: 'a', version: 4, status: 'destroyed' },
      { id: 'b', version: 3, status: 'active' },
    ]);
  });
});
