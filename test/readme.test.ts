import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { README_BLOCKS, renderReadme } from '../tools/readme-blocks.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('starts with the two set-up commands', () => {
    const head = readme.split('\n').slice(0, 10).join('\n');
    expect(head).toContain('npm ci && npm start');
    expect(head).toContain('npm ci && npm test');
  });

  it.each(Object.keys(README_BLOCKS))('has the generated block %s, up to date with the code (run `npm run docs`)', (name) => {
    expect(readme).toContain(`<!-- generated:${name} -->`);
    expect(renderReadme(readme)).toBe(readme);
  });
});
