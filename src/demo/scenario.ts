/**
 * The demo's little Django site and the admin activity it pretends to see: a bookshop with a
 * catalog and orders, four users with different permissions, and a stream of add / change /
 * delete events shaped like the guide's LogEntry events.
 */
import type { SiteSpec } from './schema.js';

export const DEMO_SITE: SiteSpec = {
  models: [
    { label: 'auth.group', verboseName: 'group' },
    { label: 'auth.user', verboseName: 'user' },
    { label: 'catalog.author', verboseName: 'author' },
    { label: 'catalog.book', verboseName: 'book' },
    { label: 'shop.order', verboseName: 'order' },
  ],
  groups: [{ name: 'Shop staff', permissions: ['shop.change_order'] }],
  users: [
    { username: 'admin', superuser: true },
    { username: 'alice', permissions: ['catalog.view_book'] },
    { username: 'bob', groups: ['Shop staff'] },
    { username: 'carol' },
  ],
};

/** What the page says about each demo user. */
export const DEMO_USERS: readonly { readonly username: string; readonly role: string }[] = [
  { username: 'admin', role: 'superuser: sees every model' },
  { username: 'alice', role: 'may view books' },
  { username: 'bob', role: 'may change orders (group "Shop staff")' },
  { username: 'carol', role: 'no permissions: sees nothing' },
];

interface Subject {
  readonly label: string;
  readonly verboseName: string;
  readonly objects: readonly string[];
  readonly fields: readonly string[];
  /** Who edits this model in the admin. */
  readonly editors: readonly string[];
}

const SUBJECTS: readonly Subject[] = [
  {
    label: 'catalog.book',
    verboseName: 'book',
    objects: ['Dune', 'Le Petit Prince', 'Neuromancer', 'Middlemarch', 'Kafka on the Shore'],
    fields: ['Title', 'Price', 'Stock', 'Cover'],
    editors: ['admin'],
  },
  {
    label: 'catalog.author',
    verboseName: 'author',
    objects: ['Ursula K. Le Guin', 'Antoine de Saint-Exupéry', 'Toni Morrison', 'Italo Calvino'],
    fields: ['Name', 'Biography'],
    editors: ['admin'],
  },
  {
    label: 'shop.order',
    verboseName: 'order',
    objects: ['Order #1042', 'Order #1043', 'Order #1044', 'Order #1045'],
    fields: ['Status', 'Shipping address', 'Tracking number'],
    editors: ['admin', 'bob'],
  },
  {
    label: 'auth.group',
    verboseName: 'group',
    objects: ['Editors', 'Shop staff', 'Reviewers'],
    fields: ['Permissions'],
    editors: ['admin'],
  },
  {
    label: 'auth.user',
    verboseName: 'user',
    objects: ['dave', 'erin', 'frank'],
    fields: ['Email address', 'First name', 'Staff status'],
    editors: ['admin'],
  },
];

export type Action = 'add' | 'change' | 'delete';

export interface AdminEvent {
  readonly model: string;
  readonly object: string;
  readonly message: string;
  readonly timestamp: string;
  readonly user: string;
  readonly content_type_id: number;
  readonly object_id: string;
}

/** Django's wording for a list of field names: "A", "A and B", "A, B and C". */
function joinFields(fields: readonly string[]): string {
  return fields.length < 2
    ? fields.join('')
    : `${fields.slice(0, -1).join(', ')} and ${fields.at(-1)}`;
}

/**
 * Serializes like Python's json.dumps, which is what Django's receiver publishes: ", " and ": "
 * separators and non-ASCII as \u escapes. sidecast forwards these bytes unchanged.
 */
export function pythonJson(event: object): string {
  const text = Object.entries(event)
    .map(([key, value]) => `${JSON.stringify(key)}: ${JSON.stringify(value)}`)
    .join(', ');
  return `{${text}}`.replace(
    /[\u007f-\uffff]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * Makes admin events for the models whose content type ids are given; `random` picks what
 * happens next (injectable so tests can script it).
 */
export function createEventSource(
  contentTypes: ReadonlyMap<string, number>,
  random: () => number = Math.random,
): (action?: Action, label?: string) => AdminEvent {
  let nextId = 100;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  return (action = pick(['add', 'change', 'change', 'delete'] as const), label) => {
    const subject = label
      ? SUBJECTS.find((candidate) => candidate.label === label)
      : pick(SUBJECTS);
    const typeId = subject && contentTypes.get(subject.label);
    if (!subject || typeId === undefined) throw new Error(`no demo model "${label}"`);
    const some = subject.fields.filter(() => random() < 0.4);
    const fields = some.length ? some : [pick(subject.fields)];
    const message = {
      add: 'Added.',
      change: `Changed ${joinFields(fields)}.`,
      delete: '', // deletions store no change message
    }[action];
    return {
      model: subject.verboseName,
      object: pick(subject.objects),
      message,
      // Python's isoformat: microseconds and an explicit UTC offset.
      timestamp: new Date().toISOString().replace('Z', '000+00:00'),
      user: pick(subject.editors),
      content_type_id: typeId,
      object_id: String(nextId++),
    };
  };
}

/** Publishes a random admin event every `intervalMs` to 2 × `intervalMs`, until stopped. */
export function simulateActivity(
  next: () => AdminEvent,
  publish: (payload: string) => Promise<void>,
  intervalMs: number,
  onError: (error: unknown) => void,
): () => void {
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer = setTimeout(
      () => {
        publish(pythonJson(next())).catch(onError);
        schedule();
      },
      intervalMs * (1 + Math.random()),
    );
  };
  schedule();
  return () => clearTimeout(timer);
}
