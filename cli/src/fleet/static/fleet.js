// The Peregrine fleet view. Plain DOM, no library. Every value from the
// server goes into the page as text (textContent), never as markup.
'use strict';

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

// A latency in milliseconds, in the unit that reads best (a replayed
// capture's alerts are years old when they arrive).
function latency(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return ms.toFixed(1) + ' ms';
  const seconds = ms / 1000;
  if (seconds < 120) return seconds.toFixed(1) + ' s';
  if (seconds < 7200) return (seconds / 60).toFixed(1) + ' min';
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + ' h';
  return (seconds / 86400).toFixed(0) + ' d';
}

function ago(seconds) {
  if (seconds < 60) return seconds + ' s ago';
  if (seconds < 3600) return Math.floor(seconds / 60) + ' min ago';
  if (seconds < 86400) return Math.floor(seconds / 3600) + ' h ago';
  return Math.floor(seconds / 86400) + ' d ago';
}

function nodeRow(name, node) {
  const row = document.createElement('tr');
  row.dataset.node = name;
  if (node.quiet) row.classList.add('quiet');
  if (node.drop_reports > 0) row.classList.add('dropping');
  row.append(
    el('td', name, 'name'),
    el('td', node.alerts, 'num alerts'),
    el('td', node.drop_reports, 'num drops'),
    el('td', node.dropped_events, 'num dropped'),
    el('td', ago(node.silent_s), 'heard'),
    el('td', node.last_alert_time || '-'),
    el('td', latency(node.latency_p50_ms), 'num'),
    el('td', latency(node.latency_p99_ms), 'num'),
    el('td', node.quiet ? 'QUIET' : 'ok', 'state'),
  );
  if (node.last_heard) row.title = 'last heard at ' + node.last_heard;
  return row;
}

function alertRow(alert) {
  const row = document.createElement('tr');
  row.className = 'prio-' + alert.priority;
  const priority = el('td');
  priority.append(el('span', alert.priority, 'badge prio-' + alert.priority));
  row.append(
    el('td', alert.time, 'time'),
    el('td', alert.node, 'node'),
    priority,
    el('td', alert.rule),
    el('td', alert.source),
    el('td', alert.output, 'output'),
  );
  return row;
}

function render(fleet) {
  $('stream').textContent = 'stream ' + fleet.stream;
  $('quiet-rule').textContent = '(quiet: nothing heard for more than ' + fleet.quiet_after_s + ' s)';
  const names = Object.keys(fleet.nodes).sort();
  const nodes = names.map((name) => fleet.nodes[name]);
  const quiet = names.filter((name) => fleet.nodes[name].quiet);
  $('fleet-nodes').textContent = names.length;
  $('fleet-quiet').textContent = quiet.length;
  $('fleet-quiet').classList.toggle('bad', quiet.length > 0);
  $('fleet-alerts').textContent = nodes.reduce((sum, n) => sum + n.alerts, 0);
  $('fleet-duplicates').textContent = fleet.duplicates;
  const dropped = nodes.reduce((sum, n) => sum + n.dropped_events, 0);
  $('fleet-dropped').textContent = dropped;
  $('fleet-dropped').classList.toggle('bad', dropped > 0);
  $('nodes').tBodies[0].replaceChildren(...names.map((name) => nodeRow(name, fleet.nodes[name])));
  $('latest').tBodies[0].replaceChildren(...fleet.latest.map(alertRow));
  $('latest-count').textContent = '(' + fleet.latest.length + ' newest, all nodes)';
  const problems = [];
  if (!fleet.nats_connected) problems.push('Not connected to NATS: the nodes may be quiet only to this view');
  if (quiet.length > 0) problems.push('Quiet: ' + quiet.join(', '));
  const banner = $('banner');
  banner.hidden = problems.length === 0;
  banner.textContent = problems.join(' · ');
}

function setLink(up) {
  $('link').textContent = up ? 'live' : 'no answer';
  $('link').className = 'link ' + (up ? 'up' : 'down');
}

async function refresh() {
  try {
    const response = await fetch('/console/api/fleet', { credentials: 'same-origin', cache: 'no-store' });
    if (!response.ok) throw new Error('/console/api/fleet: ' + response.status);
    render(await response.json());
    setLink(true);
  } catch (e) {
    setLink(false);
    console.error(e);
  }
}

document.addEventListener('DOMContentLoaded', () => {
  const run = () => refresh().finally(() => setTimeout(run, 1000));
  run();
});
