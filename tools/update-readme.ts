import { readFileSync, writeFileSync } from 'node:fs';
import { renderReadme } from './readme-blocks.js';

const path = new URL('../README.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = renderReadme(before);
writeFileSync(path, after);
console.log(before === after ? 'README.md is up to date' : 'README.md: generated blocks rewritten');
