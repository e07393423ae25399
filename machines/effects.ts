// The effects a machine hands to the engine, typed. XState types every action's `params` as the
// union of all of them, so narrowing an action on `type` alone never narrows `params`; these
// types, keyed by action type, do.

/** One effect with its params: a union discriminated by `type`, from a map of params by type. */
export type EffectOf<Params> = { [T in keyof Params]: { readonly type: T; readonly params: Params[T] } }[keyof Params];

/**
 * The actions among `actions` whose type is a key of `types`, as the effect union. The params are
 * the ones the machine's setup() declares per effect; XState checks every resolver against them.
 */
export function effectsAmong<Params>(
  types: Readonly<Record<keyof Params, true>>,
  actions: readonly { readonly type: string; readonly params?: unknown }[],
): EffectOf<Params>[] {
  return actions.filter((a) => Object.hasOwn(types, a.type)) as EffectOf<Params>[];
}
