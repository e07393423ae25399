// The README sections generated from code, so the docs cannot drift from the machines:
// `npm run docs` rewrites them; test/readme.test.ts fails when they are stale.

import { orderMachine, operationMachine, rulesToMarkdown, toMermaid } from '../machines/index.js';

export const README_BLOCKS: Readonly<Record<string, () => string>> = {
  'order-diagram': () => `\`\`\`mermaid\n${toMermaid(orderMachine)}\`\`\`\n`,
  'operation-diagram': () => `\`\`\`mermaid\n${toMermaid(operationMachine)}\`\`\`\n`,
  'rules-table': () => rulesToMarkdown(),
};

const BLOCK = /<!-- generated:([a-z-]+) -->\n[\s\S]*?<!-- \/generated -->/g;

/** The README with every generated block replaced by its current content. */
export function renderReadme(readme: string): string {
  return readme.replace(BLOCK, (whole, name: string) => {
    const make = README_BLOCKS[name];
    return make ? `<!-- generated:${name} -->\n${make()}<!-- /generated -->` : whole;
  });
}
