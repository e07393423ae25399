// A vitest setup file: every fast-check property in `npm test` runs from one fixed seed (a test
// that passes its own seed keeps it), so a green run means the same cases pass every time.
// Under SOAK=1 the seed is random; either way fast-check's failure report names the seed, and
// FC_SEED=<seed> replays it.

import fc from 'fast-check';
import { seedFrom } from './seeds.js';

fc.configureGlobal({ ...fc.readConfigureGlobal(), seed: seedFrom('FC_SEED', 20_240_611) });
