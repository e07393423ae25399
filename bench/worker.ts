// Child-process entry for bench/lib/child.ts: runs one task of one benchmark module and
// sends its result back over IPC, then exits.

type Task = (args: never) => Promise<unknown> | unknown;

process.once('message', async (message: { module: string; task: string; args: unknown }) => {
  try {
    const mod = (await import(`./${message.module}.js`)) as { tasks?: Record<string, Task> };
    const task = mod.tasks?.[message.task];
    if (!task) throw new Error(`bench/${message.module}.ts has no task ${message.task}`);
    const result = await task(message.args as never);
    process.send!({ ok: true, result }, () => process.exit(0));
  } catch (error) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    process.send!({ ok: false, error: text }, () => process.exit(1));
  }
});
