// Chat demo: rooms, history on join, presence list, typing indicator (ephemeral).
import { Client } from '/sdk/roomd.min.js';
import { colorFor, devBanner, h, myName, roomFromURL, safeColor, setMyName, showStatus, textOf, token } from '/common.js';

const ROOMS = ['chat:lobby', 'chat:random', 'chat:help'];
const roomName = roomFromURL('chat:lobby');
const $ = (id) => document.getElementById(id);
devBanner($('dev'));
$('roomname').textContent = roomName;
$('dashlink').href = '/dashboard/?room=' + encodeURIComponent(roomName);
document.title = roomName + ' · roomd chat';

let name = myName();
const color = () => colorFor(name);
$('name').value = name;

// room list
for (const r of [...new Set([...ROOMS, roomName])]) {
  const a = h('a', { href: '?room=' + encodeURIComponent(r), class: r === roomName ? 'active' : '' }, r);
  $('rooms').append(h('li', {}, a));
}
$('goroom').addEventListener('submit', (e) => {
  e.preventDefault();
  let r = $('newroom').value.trim();
  if (!r) return;
  if (!r.includes(':')) r = 'chat:' + r;
  location.search = '?room=' + encodeURIComponent(r);
});

const client = new Client(location.origin, { token });
const room = client.room(roomName, { presence: { name, color: color() }, history: 50 });
window.demo = { client, room };

client.on('status', (s) => showStatus($('status'), s));
client.on('error', (e) => console.warn('roomd:', e.message));
room.on('error', (e) => sys('Error: ' + e.message));

// ---- messages ----
const list = $('messages');
const shown = new Set();
let lastAuthor = '';
let lastTs = 0;

function sys(text) {
  list.append(h('div', { class: 'sys' }, h('span', {}, text)));
  lastAuthor = '';
  scroll();
}

function scroll() {
  list.scrollTop = list.scrollHeight;
}

function show(m) {
  if (shown.has(m.seq)) return;
  shown.add(m.seq);
  $('empty')?.remove();
  const d = m.data && typeof m.data === 'object' ? m.data : { text: String(m.data) };
  const who = textOf(d.name, textOf(m.user, 'anonymous'));
  const col = safeColor(d.color, colorFor(who));
  const cont = who === lastAuthor && m.ts - lastTs < 120000;
  lastAuthor = who;
  lastTs = m.ts;
  const time = new Date(m.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  list.append(
    h('div', { class: 'msg' + (cont ? ' cont' : ''), 'data-seq': m.seq },
      h('div', { class: 'avatar', style: { background: col } }, who.slice(0, 1).toUpperCase()),
      h('div', { class: 'body' },
        h('div', { class: 'meta' }, h('b', { style: { color: col } }, who), h('time', {}, time)),
        h('div', { class: 'text' }, String(d.text ?? '')))));
  scroll();
}

room.on('message', (m) => {
  show(m);
  clearTyping(m.conn);
});
room.on('reset', (r) => {
  if (r.epoch !== r.previousEpoch) shown.clear(); // a new epoch numbers its messages from 1 again
  sys('Reconnected after a long gap: some messages may be missing.');
});

$('composer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text) return;
  $('text').value = '';
  room.broadcast({ typing: false, name }, 'typing');
  lastTypingSent = 0;
  try {
    const seq = await room.publish({ text, name, color: color() });
    if (!shown.has(seq)) show({ seq, data: { text, name, color: color() }, ts: Date.now(), conn: client.conn });
  } catch (err) {
    sys('Not sent: ' + err.message);
  }
});

// ---- presence ----
function renderPeople() {
  const ul = $('people');
  ul.textContent = '';
  const people = [...room.presence.values()].sort((a, b) => label(a).localeCompare(label(b)));
  for (const m of people) {
    const me = m.conn === client.conn;
    ul.append(
      h('li', { class: me ? 'me' : '', 'data-conn': m.conn },
        h('span', { class: 'dot', style: { background: safeColor(m.data?.color, colorFor(label(m))) } }),
        h('span', { class: 'who' }, label(m)),
        typing.has(m.conn) ? h('span', { class: 'tag' }, 'typing') : null));
  }
  // in large-room mode the list is a sample and the count is the server's
  $('count').textContent = room.presenceCount;
}
const label = (m) => textOf(m.data?.name, textOf(m.user, String(m.conn)));

room.on('presence', (p) => {
  for (const m of p.leave) clearTyping(m.conn);
  renderPeople();
});

$('nameform').addEventListener('submit', (e) => {
  e.preventDefault();
  const n = $('name').value.trim();
  if (!n) return;
  name = n;
  setMyName(n);
  room.updatePresence({ name, color: color() }).catch((err) => sys('Could not rename: ' + err.message));
});

// ---- typing indicator (ephemeral) ----
const typing = new Map(); // conn -> { name, timer }
let lastTypingSent = 0;

$('text').addEventListener('input', () => {
  const now = Date.now();
  if ($('text').value && now - lastTypingSent > 1000) {
    lastTypingSent = now;
    room.broadcast({ typing: true, name }, 'typing');
  }
});

function clearTyping(conn) {
  const t = typing.get(conn);
  if (!t) return;
  clearTimeout(t.timer);
  typing.delete(conn);
  renderTyping();
}

function renderTyping() {
  const names = [...typing.values()].map((t) => t.name);
  $('typing').textContent =
    names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : 'Several people are typing…';
  renderPeople();
}

room.on('ephemeral', (e) => {
  if (e.conn === client.conn || !e.data || typeof e.data !== 'object') return;
  if (!e.data.typing) return clearTyping(e.conn);
  clearTimeout(typing.get(e.conn)?.timer);
  typing.set(e.conn, { name: textOf(e.data.name, textOf(e.user, 'someone')), timer: setTimeout(() => clearTyping(e.conn), 3000) });
  renderTyping();
});

// ---- go ----
list.append(h('div', { class: 'empty', id: 'empty' }, 'No messages yet. Say hello!'));
room.join().then(
  () => {
    renderPeople();
    document.body.dataset.joined = '1';
    $('text').focus();
  },
  (err) => sys('Could not join ' + roomName + ': ' + err.message),
);
