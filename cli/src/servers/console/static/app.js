// The Peregrine console. Plain DOM, no library. Every value from the
// server goes into the page as text (textContent), never as markup.
'use strict';

const KEEP = 1000; // alerts kept in the page
const PRIORITIES = ['Emergency', 'Alert', 'Critical', 'Error', 'Warning', 'Notice', 'Informational', 'Debug'];
const COLOURS = {
  Emergency: '#7b0000', Alert: '#b00020', Critical: '#d32f2f', Error: '#f4511e',
  Warning: '#f9a825', Notice: '#1e88e5', Informational: '#43a047', Debug: '#9e9e9e',
};

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

async function getJson(path) {
  const response = await fetch(path, { credentials: 'same-origin', cache: 'no-store' });
  if (!response.ok) throw new Error(path + ': ' + response.status);
  return response.json();
}

// ---- alerts ----------------------------------------------------------

const alerts = []; // newest first
const filters = { priority: new Set(), rule: new Set(), source: new Set(), tag: new Set(), image: new Set() };
let paused = false;
let missedWhilePaused = 0;
let selected = null;
let rulesByName = new Map();

function dimensionValues(alert, dim) {
  switch (dim) {
    case 'priority': return [alert.priority];
    case 'rule': return [alert.rule];
    case 'source': return [alert.source];
    case 'tag': return alert.tags || [];
    case 'image': return alert.image ? [alert.image] : [];
    default: return [];
  }
}

function searchText(alert) {
  if (alert._text === undefined) {
    const parts = [alert.rule, alert.output, alert.source, alert.priority, alert.container || '', alert.image || ''];
    for (const [k, v] of Object.entries(alert.fields || {})) parts.push(k + '=' + (v === null ? '' : v));
    alert._text = parts.join('\n').toLowerCase();
  }
  return alert._text;
}

function matches(alert) {
  for (const dim of Object.keys(filters)) {
    const wanted = filters[dim];
    if (wanted.size === 0) continue;
    if (!dimensionValues(alert, dim).some((v) => wanted.has(v))) return false;
  }
  const query = $('search').value.trim().toLowerCase();
  if (query && !query.split(/\s+/).every((word) => searchText(alert).includes(word))) return false;
  return true;
}

function alertRow(alert) {
  const row = el('tr', null, 'alert-row prio-' + alert.priority);
  row.dataset.id = alert.id;
  row.appendChild(el('td', alert.time.replace('T', ' ').replace(/\.(\d{3})\d*Z$/, '.$1Z'), 'time'));
  const prio = el('td');
  prio.appendChild(el('span', alert.priority, 'badge prio-' + alert.priority));
  row.appendChild(prio);
  row.appendChild(el('td', alert.rule, 'rule'));
  row.appendChild(el('td', alert.source, 'source'));
  row.appendChild(el('td', [alert.container, alert.pod].filter(Boolean).join(' / '), 'container'));
  row.appendChild(el('td', alert.output, 'output'));
  row.addEventListener('click', () => showDetail(alert));
  return row;
}

function renderList() {
  const body = document.querySelector('#alerts tbody');
  const rows = document.createDocumentFragment();
  let shown = 0;
  for (const alert of alerts) {
    if (!matches(alert)) continue;
    rows.appendChild(alertRow(alert));
    shown += 1;
  }
  body.replaceChildren(rows);
  updateShown(shown);
}

function updateShown(shown) {
  const count = shown === undefined ? document.querySelectorAll('#alerts tbody tr').length : shown;
  let text = count + ' of ' + alerts.length + ' alerts shown';
  if (paused) text += ' · paused' + (missedWhilePaused ? ' (' + missedWhilePaused + ' new)' : '');
  $('shown').textContent = text;
}

let newestId = 0;

function takeAlert(alert) {
  // A reconnected stream starts again with the alerts the server keeps.
  if (alert.id <= newestId) return;
  newestId = alert.id;
  alerts.unshift(alert);
  if (alerts.length > KEEP) alerts.length = KEEP;
  if (paused) {
    missedWhilePaused += 1;
    updateShown();
    return;
  }
  const body = document.querySelector('#alerts tbody');
  if (matches(alert)) body.insertBefore(alertRow(alert), body.firstChild);
  while (body.children.length > KEEP) body.removeChild(body.lastChild);
  updateShown();
}

function setPaused(value) {
  paused = value;
  $('pause').textContent = paused ? 'Resume' : 'Pause';
  $('pause').classList.toggle('on', paused);
  if (!paused) {
    missedWhilePaused = 0;
    renderList();
  } else {
    updateShown();
  }
}

function showDetail(alert) {
  selected = alert;
  $('detail').hidden = false;
  $('detail-rule').textContent = alert.rule;
  $('detail-meta').textContent = [alert.priority, alert.time, alert.source, alert.hostname].join(' · ');
  $('detail-output').textContent = alert.output;
  const fields = document.querySelector('#detail-fields tbody');
  const rows = document.createDocumentFragment();
  for (const [k, v] of Object.entries(alert.fields || {})) {
    const row = el('tr');
    row.appendChild(el('th', k));
    row.appendChild(el('td', v === null ? '<NA>' : v));
    rows.appendChild(row);
  }
  fields.replaceChildren(rows);
  const rule = rulesByName.get(alert.rule);
  $('detail-desc').textContent = rule ? rule.description : '';
  $('detail-tags').textContent = (alert.tags || []).join(', ');
  $('detail-condition').textContent = rule ? rule.condition : '';
  $('detail-raw').textContent = JSON.stringify(alert.raw, null, 2);
  if (!rule) loadRules().then(() => { if (selected === alert) showDetail(alert); }).catch(() => {});
}

function connect() {
  const source = new EventSource('/console/api/alerts');
  source.addEventListener('open', () => setLink(true));
  source.addEventListener('alert', (event) => {
    try {
      takeAlert(JSON.parse(event.data));
    } catch (e) {
      console.error(e);
    }
  });
  source.addEventListener('dropped', () => {
    // Too slow: the server dropped this stream. Start over from what it keeps.
    source.close();
    alerts.length = 0;
    newestId = 0;
    setLink(false);
    setTimeout(connect, 500);
  });
  source.addEventListener('error', () => setLink(false));
  renderList();
}

function setLink(up) {
  $('link').textContent = up ? 'live' : 'reconnecting';
  $('link').className = 'link ' + (up ? 'up' : 'down');
}

// ---- filters, counts, timeline -----------------------------------------

function renderFacet(dim, counts) {
  const list = document.querySelector('.facet[data-dim="' + dim + '"] ul');
  const entries = Object.entries(counts || {});
  if (dim === 'priority') entries.sort((a, b) => PRIORITIES.indexOf(a[0]) - PRIORITIES.indexOf(b[0]));
  else entries.sort((a, b) => b[1] - a[1]);
  const items = document.createDocumentFragment();
  for (const [value, count] of entries.slice(0, 50)) {
    const item = el('li', null, 'chip' + (filters[dim].has(value) ? ' on' : ''));
    item.dataset.dim = dim;
    item.dataset.value = value;
    if (dim === 'priority') item.appendChild(el('span', '', 'dot prio-' + value));
    item.appendChild(el('span', value, 'value'));
    item.appendChild(el('span', count, 'count'));
    item.addEventListener('click', () => {
      if (filters[dim].has(value)) filters[dim].delete(value);
      else filters[dim].add(value);
      item.classList.toggle('on', filters[dim].has(value));
      renderList();
    });
    items.appendChild(item);
  }
  list.replaceChildren(items);
}

function drawTimeline(timeline) {
  const canvas = $('timeline');
  const context = canvas.getContext('2d');
  context.clearRect(0, 0, canvas.width, canvas.height);
  const totals = timeline.map((m) => Object.values(m.by_priority).reduce((a, b) => a + b, 0));
  const max = Math.max(1, ...totals);
  const width = canvas.width / timeline.length;
  timeline.forEach((minute, i) => {
    let y = canvas.height;
    // Least severe at the bottom, most severe on top.
    for (const priority of [...PRIORITIES].reverse()) {
      const n = minute.by_priority[priority] || 0;
      if (!n) continue;
      const h = (n / max) * (canvas.height - 4);
      context.fillStyle = COLOURS[priority];
      context.fillRect(i * width, y - h, Math.max(1, width - 1), h);
      y -= h;
    }
  });
  canvas.title = 'Alerts per minute, last hour (peak ' + max + ')';
  $('timeline-legend').textContent = 'per minute, last hour · peak ' + max;
}

async function refreshSummary() {
  const summary = await getJson('/console/api/summary');
  renderFacet('priority', summary.by_priority);
  renderFacet('rule', summary.by_rule);
  renderFacet('source', summary.by_source);
  renderFacet('tag', summary.by_tag);
  renderFacet('image', summary.by_image);
  drawTimeline(summary.timeline);
}

// ---- rules -----------------------------------------------------------

let rulesData = null;
let selectedRule = null;

async function loadRules() {
  rulesData = await getJson('/console/api/rules');
  rulesByName = new Map(rulesData.rules.map((r) => [r.name, r]));
  return rulesData;
}

function renderRules() {
  if (!rulesData) return;
  const query = $('rules-search').value.trim().toLowerCase();
  const body = document.querySelector('#rules tbody');
  const rows = document.createDocumentFragment();
  let shown = 0;
  for (const rule of rulesData.rules) {
    const text = (rule.name + '\n' + rule.tags.join(' ') + '\n' + rule.condition + '\n' + rule.source).toLowerCase();
    if (query && !text.includes(query)) continue;
    const row = el('tr', null, 'rule-row' + (rule.enabled ? '' : ' disabled'));
    row.appendChild(el('td', rule.name));
    row.appendChild(el('td', rule.enabled ? 'yes' : 'no'));
    const prio = el('td');
    prio.appendChild(el('span', rule.priority, 'badge prio-' + rule.priority));
    row.appendChild(prio);
    row.appendChild(el('td', rule.source));
    row.appendChild(el('td', rule.fired, 'fired'));
    row.appendChild(el('td', rule.tags.join(', ')));
    row.addEventListener('click', () => { selectedRule = rule.name; showRule(rule); });
    rows.appendChild(row);
    shown += 1;
  }
  body.replaceChildren(rows);
  $('rules-count').textContent = shown + ' of ' + rulesData.rules.length + ' rules · '
    + rulesData.rules.filter((r) => r.enabled).length + ' enabled';
  const warnings = $('rules-warnings');
  warnings.replaceChildren(...rulesData.warnings.map((w) => el('li', w)));
  if (selectedRule && rulesByName.has(selectedRule)) showRule(rulesByName.get(selectedRule));
}

function showRule(rule) {
  $('rule-detail').hidden = false;
  $('rule-name').textContent = rule.name;
  $('rule-desc').textContent = rule.description;
  $('rule-condition').textContent = rule.condition;
  $('rule-expanded').textContent = rule.expanded;
}

// ---- try a condition -------------------------------------------------

async function tryCondition() {
  const condition = $('try-condition').value;
  $('try-status').textContent = 'trying…';
  $('try-error').hidden = true;
  let answer;
  try {
    answer = await getJson('/console/api/try?condition=' + encodeURIComponent(condition));
  } catch (e) {
    $('try-status').textContent = String(e);
    return;
  }
  const table = $('try-matches');
  if (answer.error) {
    $('try-status').textContent = '';
    const error = $('try-error');
    error.hidden = false;
    error.textContent = answer.error.code
      ? answer.error.code + ' (' + answer.error.title + '): ' + answer.error.message
      : answer.error.message;
    table.hidden = true;
    return;
  }
  let status = answer.matched + ' of ' + answer.tried + ' events matched';
  if (answer.tried < answer.kept) status += ' (' + answer.kept + ' kept; stopped at the time limit)';
  if (answer.matched > answer.shown) status += ' · newest ' + answer.shown + ' shown';
  status += ' · ' + answer.millis + ' ms';
  if (answer.note) status += ' · ' + answer.note;
  $('try-status').textContent = status;
  table.querySelector('thead tr').replaceChildren(...answer.fields.map((f) => el('th', f)));
  table.querySelector('tbody').replaceChildren(...answer.matches.map((m) => {
    const row = el('tr', null, 'try-row');
    for (const f of answer.fields) row.appendChild(el('td', m[f]));
    return row;
  }));
  table.hidden = answer.matches.length === 0;
}

// ---- health ----------------------------------------------------------

let lastHealth = null;

function metricValue(metrics, name, labels) {
  const found = metrics.find((m) => m.name === name
    && Object.entries(labels || {}).every(([k, v]) => m.labels[k] === v));
  return found ? found.value : undefined;
}

function formatDuration(seconds) {
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return (d ? d + 'd ' : '') + (h ? h + 'h ' : '') + m + 'm ' + s + 's';
}

function tableRows(id, rows, alarm) {
  const body = document.querySelector('#' + id + ' tbody');
  body.replaceChildren(...rows.map((cells) => {
    const row = el('tr');
    cells.forEach((cell) => row.appendChild(el('td', cell)));
    if (alarm && alarm(cells)) row.className = 'alarm';
    return row;
  }));
}

async function refreshHealth() {
  const health = await getJson('/console/api/health');
  const now = Date.now();
  const metrics = health.metrics;
  const previous = lastHealth;
  const seconds = previous ? Math.max(0.001, (now - previous.at) / 1000) : 0;
  const before = (name, labels) => (previous ? metricValue(previous.metrics, name, labels) : undefined);

  const uptime = metricValue(metrics, 'falcosecurity_peregrine_uptime_seconds');
  $('health-uptime').textContent = uptime === undefined ? '-' : formatDuration(uptime);
  $('health-rules').textContent = String(health.rules_loaded);
  $('health-reloads').textContent = String(health.reloads);
  const rss = metricValue(metrics, 'falcosecurity_peregrine_resident_memory_bytes');
  $('health-memory').textContent = rss === undefined ? '-' : (rss / 1048576).toFixed(1) + ' MiB';
  const cpu = metricValue(metrics, 'falcosecurity_peregrine_cpu_seconds_total');
  $('health-cpu').textContent = cpu === undefined ? '-' : cpu + ' s';

  const rate = (name) => {
    const now = metricValue(metrics, name);
    const then = before(name);
    if (now === undefined) return null;
    return [then === undefined ? '-' : ((now - then) / seconds).toFixed(1), now];
  };
  const rates = [];
  for (const [source, name] of [['syscall', 'falcosecurity_peregrine_events_total'], ['k8s_audit', 'falcosecurity_peregrine_k8s_audit_events_total']]) {
    const r = rate(name);
    if (r) rates.push([source, r[0], r[1]]);
  }
  tableRows('health-rates', rates);

  const problems = [];
  const drops = metrics.filter((m) => /^falcosecurity_peregrine_kernel_(drops|param_faults|sampled_out)/.test(m.name));
  tableRows('health-drops', drops.map((m) => {
    const then = before(m.name, m.labels);
    const cause = m.name.replace(/^falcosecurity_peregrine_kernel_/, '').replace(/_total$/, '')
      + (m.labels.cpu !== undefined ? ' (cpu ' + m.labels.cpu + ')' : '');
    return [cause, m.value, then === undefined ? '-' : m.value - then];
  }), (cells) => cells[1] > 0);
  for (const m of drops) {
    if (m.value > 0 && /drops/.test(m.name)) problems.push('kernel ' + m.name.replace(/^falcosecurity_peregrine_kernel_/, '').replace(/_total$/, '') + ': ' + m.value);
  }

  problems.push(...renderRings(metrics, before, seconds));

  const outputs = new Map();
  for (const m of metrics) {
    if (m.name === 'falcosecurity_peregrine_output_alerts_total') {
      if (!outputs.has(m.labels.output)) outputs.set(m.labels.output, {});
      outputs.get(m.labels.output)[m.labels.outcome] = m.value;
    } else if (m.name === 'falcosecurity_peregrine_output_queue_depth') {
      if (!outputs.has(m.labels.output)) outputs.set(m.labels.output, {});
      outputs.get(m.labels.output).queued = m.value;
    }
  }
  const outputRows = [...outputs.entries()].map(([name, o]) => [name, o.sent || 0, o.failed || 0, o.dropped || 0, o.queued || 0]);
  tableRows('health-outputs', outputRows, (cells) => cells[2] > 0 || cells[3] > 0);
  for (const [name, , failed, dropped] of outputRows) {
    if (failed > 0) problems.push('output ' + name + ' failed ' + failed + ' alerts');
    if (dropped > 0) problems.push('output ' + name + ' dropped ' + dropped + ' alerts');
  }
  $('health-warnings').replaceChildren(...(health.warnings || []).map((w) => el('li', w)));

  $('tab-health').classList.toggle('alarm', problems.length > 0);
  $('tab-health').textContent = problems.length ? 'Health ⚠' : 'Health';
  const banner = $('banner');
  banner.hidden = problems.length === 0;
  banner.textContent = problems.length ? '⚠ ' + problems.join(' · ') : '';
  lastHealth = { at: now, metrics };
}

// The kernel rings per CPU (drops by cause, fill) and the reading
// thread's CPU; returns the problems for the banner.
function renderRings(metrics, before, seconds) {
  const problems = [];
  const readerCpu = metricValue(metrics, 'falcosecurity_peregrine_reader_cpu_seconds_total');
  if (readerCpu === undefined) {
    $('health-reader-cpu').textContent = '-';
  } else {
    const then = before('falcosecurity_peregrine_reader_cpu_seconds_total');
    const share = then === undefined || !seconds ? '' : ' · ' + Math.round(((readerCpu - then) / seconds) * 100) + '% of a core';
    $('health-reader-cpu').textContent = readerCpu.toFixed(2) + ' s' + share;
  }
  const cpus = new Map();
  const cpu = (n) => { if (!cpus.has(n)) cpus.set(n, { drops: {} }); return cpus.get(n); };
  for (const m of metrics) {
    if (m.name === 'falcosecurity_peregrine_kernel_cpu_events_total') cpu(m.labels.cpu).events = m.value;
    else if (m.name === 'falcosecurity_peregrine_kernel_cpu_drops_total') cpu(m.labels.cpu).drops[m.labels.cause] = m.value;
    else if (m.name === 'falcosecurity_peregrine_ring_used_bytes') cpu(m.labels.cpu).used = m.value;
    else if (m.name === 'falcosecurity_peregrine_ring_size_bytes') cpu(m.labels.cpu).size = m.value;
  }
  const causes = ['buffer', 'page_fault', 'too_large', 'reentry'];
  const rows = [...cpus.entries()].sort((a, b) => Number(a[0]) - Number(b[0])).map(([n, c]) => {
    const fill = c.size ? (c.used / c.size) * 100 : 0;
    const cells = [n, c.events || 0, ...causes.map((k) => {
      const now = c.drops[k] || 0;
      const then = before('falcosecurity_peregrine_kernel_cpu_drops_total', { cpu: n, cause: k });
      return then === undefined || now === then ? String(now) : now + ' (+' + (now - then) + ')';
    }), fill.toFixed(1) + '%'];
    for (const k of causes) {
      if ((c.drops[k] || 0) > 0) problems.push('cpu ' + n + ' dropped ' + c.drops[k] + ' (' + k + ')');
    }
    if (fill >= 80) problems.push('cpu ' + n + ' ring ' + fill.toFixed(0) + '% full');
    return cells;
  });
  tableRows('health-cpus', rows, (cells) => cells.slice(2, 6).some((v) => parseInt(v, 10) > 0) || parseFloat(cells[6]) >= 80);
  return problems;
}

// ---- views and start -------------------------------------------------

function showView(name) {
  for (const tab of document.querySelectorAll('.tab')) tab.classList.toggle('active', tab.dataset.view === name);
  for (const view of document.querySelectorAll('.view')) view.hidden = view.id !== 'view-' + name;
  if (name === 'rules') loadRules().then(renderRules).catch(console.error);
}

function every(ms, task) {
  const run = () => task().catch((e) => console.error(e)).finally(() => setTimeout(run, ms));
  run();
}

document.addEventListener('DOMContentLoaded', () => {
  for (const tab of document.querySelectorAll('.tab')) tab.addEventListener('click', () => showView(tab.dataset.view));
  $('pause').addEventListener('click', () => setPaused(!paused));
  $('search').addEventListener('input', () => renderList());
  $('clear-filters').addEventListener('click', () => {
    for (const set of Object.values(filters)) set.clear();
    $('search').value = '';
    for (const chip of document.querySelectorAll('.chip.on')) chip.classList.remove('on');
    renderList();
  });
  $('detail-close').addEventListener('click', () => { $('detail').hidden = true; selected = null; });
  $('rules-search').addEventListener('input', renderRules);
  $('try-run').addEventListener('click', () => tryCondition());
  $('try-condition').addEventListener('keydown', (e) => { if (e.key === 'Enter') tryCondition(); });
  connect();
  loadRules().catch(console.error);
  every(2000, refreshSummary);
  every(2000, refreshHealth);
  every(5000, async () => { if (!$('view-rules').hidden) { await loadRules(); renderRules(); } });
});
