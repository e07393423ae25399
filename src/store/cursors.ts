/** Named positions (e.g. a sync cursor) that advance only inside the transaction that used them. */
export interface CursorsPort {
  get(name: string): Promise<string | undefined>;
  set(name: string, value: string, now: number): Promise<void>;
}
