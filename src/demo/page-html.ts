/**
 * The demo page: pick users, get one column per user, each column a real sidecast/client
 * connection authenticated as that user. Everything the page shows comes from the bus through
 * sidecast; nothing is faked in the browser.
 */
const STYLE = `
:root {
  --bg: #f5f6f8; --card: #fff; --ink: #1d2330; --muted: #667085; --line: #e4e7ec;
  --accent: #3658d1; --add: #16803c; --change: #2f5fd0; --delete: #c23030;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); }
header { padding: 28px 32px 8px; max-width: 1200px; margin: 0 auto; }
h1 { margin: 0 0 6px; font-size: 26px; letter-spacing: -0.01em; }
h1 span { color: var(--accent); }
header p { margin: 0; color: var(--muted); max-width: 760px; }
main { padding: 12px 32px 40px; max-width: 1200px; margin: 0 auto; }
.picker { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0 22px; }
.picker button {
  display: flex; flex-direction: column; align-items: flex-start; gap: 2px; cursor: pointer;
  border: 1px solid var(--line); background: var(--card); border-radius: 10px; padding: 9px 14px;
  font: inherit; color: inherit; min-width: 170px; text-align: left;
  transition: border-color 0.15s, box-shadow 0.15s;
}
.picker button:hover { border-color: var(--accent); }
.picker button[aria-pressed="true"] { border-color: var(--accent); box-shadow: 0 0 0 2px #3658d133; }
.picker b { font-size: 15px; }
.picker small { color: var(--muted); font-size: 12.5px; }
.columns { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 16px; }
.hint { color: var(--muted); padding: 40px 0; text-align: center; grid-column: 1 / -1; }
.column {
  background: var(--card); border: 1px solid var(--line); border-radius: 12px; overflow: hidden;
  display: flex; flex-direction: column; min-height: 320px; box-shadow: 0 1px 2px #1018280d;
}
.column > div { padding: 12px 14px; border-bottom: 1px solid var(--line); }
.column h2 { margin: 0; font-size: 16px; display: flex; align-items: center; gap: 8px; }
.column h2 .count { margin-left: auto; color: var(--muted); font-weight: 500; font-size: 13px; }
.column .role { color: var(--muted); font-size: 12.5px; }
.state {
  font-size: 11.5px; font-weight: 600; border-radius: 99px; padding: 1px 8px; background: #eef0f4;
  color: var(--muted); text-transform: uppercase; letter-spacing: 0.03em;
}
.state[data-state="open"] { background: #e3f5e8; color: var(--add); }
.state[data-state="reconnecting"] { background: #fff4dc; color: #9a6400; }
.state[data-state="unauthorized"] { background: #fde8e8; color: var(--delete); }
ol { list-style: none; margin: 0; padding: 6px 0; overflow-y: auto; max-height: 60vh; }
ol:empty::after { content: "Waiting for events this user may see…"; display: block; padding: 14px; color: var(--muted); font-size: 13px; }
li { padding: 8px 14px 8px 12px; border-left: 3px solid transparent; animation: arrive 0.6s ease-out; }
li + li { border-top: 1px solid #f0f2f5; }
li[data-action="add"] { border-left-color: var(--add); }
li[data-action="change"] { border-left-color: var(--change); }
li[data-action="delete"] { border-left-color: var(--delete); }
li .what { font-weight: 600; }
li .verb { font-size: 11px; font-weight: 700; text-transform: uppercase; margin-right: 6px; }
li[data-action="add"] .verb { color: var(--add); }
li[data-action="change"] .verb { color: var(--change); }
li[data-action="delete"] .verb { color: var(--delete); }
li .meta { color: var(--muted); font-size: 12px; }
@keyframes arrive { from { background: #fffbe6; } to { background: transparent; } }
`;

/** Runs in the browser; served as an inline module that imports the real client. */
const SCRIPT = `
import { createClient } from '/client/index.js';

const users = await (await fetch('/demo/users')).json();
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
const picker = document.querySelector('.picker');
const grid = document.querySelector('.columns');
const hint = document.querySelector('.hint');
const open = new Map();

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function actionOf(event) {
  if (event.message === 'Added.') return 'add';
  return event.message === '' ? 'delete' : 'change';
}

function addColumn(user) {
  const column = el('section', 'column');
  column.dataset.user = user.username;
  const head = el('div');
  const title = el('h2', '', user.username);
  const state = el('span', 'state', 'connecting');
  const count = el('span', 'count', '0 events');
  title.append(state, count);
  head.append(title, el('div', 'role', user.role));
  const list = el('ol');
  column.append(head, list);
  grid.append(column);
  let received = 0;
  const client = createClient({
    url,
    async getToken() {
      const response = await fetch('/demo/token?user=' + encodeURIComponent(user.username));
      if (response.status === 404) return null;
      if (!response.ok) throw new Error('token endpoint answered ' + response.status);
      return response.text();
    },
    onState({ state: name }) {
      state.textContent = name;
      state.dataset.state = name;
      column.dataset.state = name;
    },
    onEvent(event, raw) {
      const action = actionOf(event);
      const item = el('li');
      item.dataset.action = action;
      item.dataset.raw = raw;
      const line = el('div');
      line.append(el('span', 'verb', { add: 'added', change: 'changed', delete: 'deleted' }[action]));
      line.append(el('span', 'what', event.model + ' “' + event.object + '”'));
      item.append(line);
      if (action === 'change') item.append(el('div', '', event.message));
      const time = new Date(event.timestamp).toLocaleTimeString();
      item.append(el('div', 'meta', 'by ' + event.user + ' · ' + time));
      list.prepend(item);
      while (list.children.length > 60) list.lastChild.remove();
      count.textContent = ++received + (received === 1 ? ' event' : ' events');
    },
  });
  open.set(user.username, { column, client });
}

function toggle(user, button) {
  const current = open.get(user.username);
  if (current) {
    current.client.close();
    current.column.remove();
    open.delete(user.username);
  } else addColumn(user);
  button.setAttribute('aria-pressed', String(!current));
  hint.hidden = open.size > 0;
  history.replaceState(null, '', '#' + [...open.keys()].join(','));
}

const chosen = new Set(location.hash.slice(1).split(',').filter(Boolean));
for (const user of users) {
  const button = el('button');
  button.type = 'button';
  button.dataset.user = user.username;
  button.setAttribute('aria-pressed', 'false');
  button.append(el('b', '', user.username), el('small', '', user.role));
  button.addEventListener('click', () => toggle(user, button));
  picker.append(button);
  if (chosen.has(user.username)) toggle(user, button);
}
document.body.dataset.ready = 'true';
`;

export function demoPageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sidecast demo</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1><span>sidecast</span> demo</h1>
  <p>A pretend Django admin adds, changes and deletes objects every second or two and publishes
  each action on the bus. Pick users: each column is a browser client connected as that user,
  and sidecast forwards only the events about models the user may view or change.</p>
</header>
<main>
  <nav class="picker" aria-label="Users"></nav>
  <div class="columns"><p class="hint">Pick one or more users above to watch their notifications.</p></div>
</main>
<script type="module">${SCRIPT}</script>
</body>
</html>
`;
}
