/**
 * Control messages: what Django says on the bus's control channel when permissions change.
 *
 *   {"type": "users", "ids": ["42", 43]}   these users changed (user primary keys, str(pk) or numbers)
 *   {"type": "groups", "ids": ["3"]}       these groups' permissions or members changed
 *   {"type": "all"}                        anything may have changed (a permission deleted, a bulk edit)
 *
 * Other fields are ignored, so later versions can add some.
 */

export type ControlMessage =
  | { readonly type: 'users'; readonly ids: readonly string[] }
  | { readonly type: 'groups'; readonly ids: readonly string[] }
  | { readonly type: 'all' };

/** Why a control message was dropped. */
export type ControlDrop = 'malformed' | 'unknown';

/** More ids than this in one message is no permission change but a mistake or an attack. */
export const MAX_CONTROL_IDS = 10_000;
/** The longest primary key text taken: a UUID is 36, a big integer 20. */
const MAX_ID_LENGTH = 255;

function idText(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
  if (typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH) return value;
  return undefined;
}

export function readControlMessage(
  text: string,
):
  | { readonly message: ControlMessage }
  | { readonly dropped: ControlDrop; readonly detail: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { dropped: 'malformed', detail: 'not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { dropped: 'malformed', detail: 'not a JSON object' };
  }
  const { type, ids } = parsed as Record<string, unknown>;
  if (type === 'all') return { message: { type } };
  if (type !== 'users' && type !== 'groups') {
    return typeof type === 'string'
      ? { dropped: 'unknown', detail: `unknown type "${type.slice(0, 40)}"` }
      : { dropped: 'malformed', detail: 'no type' };
  }
  if (!Array.isArray(ids) || ids.length > MAX_CONTROL_IDS) {
    return { dropped: 'malformed', detail: `"ids" must be a list of at most ${MAX_CONTROL_IDS}` };
  }
  const texts: string[] = [];
  for (const id of ids as unknown[]) {
    const text = idText(id);
    if (text === undefined) return { dropped: 'malformed', detail: 'an id is not a key' };
    texts.push(text);
  }
  return { message: { type, ids: texts } };
}
