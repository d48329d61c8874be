// The index page: what the server says about itself.
import { devBanner, h } from '/common.js';

const el = document.getElementById('server');
const info = await devBanner(document.getElementById('dev'));
el.textContent = '';
if (!info) {
  el.append(h('span', { class: 'unreachable' }, 'Server unreachable'));
} else {
  const item = (k, v) => el.append(h('span', {}, h('span', { class: 'muted' }, k), ' ', h('b', {}, String(v))));
  item('server', info.name ?? 'roomd');
  item('version', info.version ?? '?');
  item('node', info.node ?? '?');
  item('auth', info.dev ? 'none (dev mode)' : 'tokens required');
}
document.body.dataset.ready = '1';
