// The inspector's stylesheet and script, shipped as text in the package (nothing is loaded from
// the network, and no file beside the compiled code needs copying). The script only makes the
// pages live: the filter form works without it, and every page is whole as the server sends it.

export const STYLESHEET = `
:root { --ink: #1f2933; --muted: #667085; --line: #d9dee5; --bg: #f6f7f9; --accent: #1d4ed8; --warn: #b45309; --bad: #b42318; --good: #067647; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: center; gap: 20px; padding: 10px 20px; background: #111827; color: #fff; }
header .brand { font-weight: 600; }
header nav a { color: #cbd5e1; text-decoration: none; margin-right: 14px; }
header nav a.here { color: #fff; border-bottom: 2px solid #60a5fa; }
header .db { color: #94a3b8; font-size: 12px; margin-left: auto; }
#live { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #374151; color: #e5e7eb; }
#live[data-state="live"] { background: #065f46; }
#live[data-state="stale"] { background: #92400e; }
main { padding: 16px 20px 40px; max-width: 1400px; }
h1 { font-size: 20px; margin: 4px 0 12px; }
h2 { font-size: 16px; margin: 22px 0 8px; }
.note { color: var(--muted); font-size: 13px; }
p.note { margin: 6px 0; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; font-size: 12px; color: #344054; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:hover td { background: #f9fafb; }
a { color: var(--accent); }
a.here { font-weight: 600; text-decoration: none; color: var(--ink); }
table.rules td:first-child { white-space: nowrap; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
form.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; margin-bottom: 12px; background: #fff; padding: 10px 12px; border: 1px solid var(--line); }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 3px; }
form.filters select, form.filters input { font: inherit; padding: 4px 6px; min-width: 120px; }
form.filters button { font: inherit; padding: 5px 14px; }
.pager { margin: 10px 0; display: flex; gap: 16px; }
.change { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; background: #e5e7eb; }
.change-queued, .change-sending { background: #dbeafe; }
.change-awaitingOperation { background: #ede9fe; }
.change-uncertain { background: #fef3c7; }
.outcome-accepted { color: var(--good); }
.outcome-rejected { color: var(--bad); }
.error { color: var(--bad); }
.panel { background: #fff; border: 1px solid var(--line); padding: 10px 14px; margin-bottom: 14px; }
.panel h2 { margin-top: 0; }
.machine-row { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
.machine-row h2 { margin-top: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 14px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; }
svg.machine { background: #fff; border: 1px solid var(--line); max-width: 100%; height: auto; }
svg.machine .region-title { font-weight: 600; font-size: 13px; fill: #344054; }
svg.machine .state rect { fill: #f8fafc; stroke: #cbd5e1; }
svg.machine .state.compound rect { fill: #eef2f7; }
svg.machine .state text { font-size: 12px; fill: #344054; }
svg.machine .state.active rect { fill: #1d4ed8; stroke: #1e3a8a; }
svg.machine .state.active text { fill: #fff; font-weight: 600; }
svg.machine .state.active.compound rect { fill: #93c5fd; }
svg.machine .state.active.compound text { fill: #0f172a; }
details summary { cursor: pointer; color: var(--muted); }
pre { background: #0f172a; color: #e2e8f0; padding: 10px; overflow: auto; font-size: 12px; }
.timeline td { white-space: nowrap; }
.timeline td.detail { white-space: normal; }
`;

export const SCRIPT = `'use strict';
(function () {
  var body = document.body;
  var filters = document.getElementById('filters');
  if (filters) {
    // Empty filters stay out of the address.
    filters.addEventListener('submit', function () {
      Array.prototype.forEach.call(filters.elements, function (el) { if (el.name && el.value === '') el.disabled = true; });
    });
    // A chosen option applies at once; a typed number applies with Enter or the button.
    filters.addEventListener('change', function (event) {
      if (event.target.tagName === 'SELECT') filters.requestSubmit();
    });
  }
  var status = document.getElementById('live');
  if (!status) return;
  if (document.querySelectorAll('[data-parts]').length === 0) {
    status.setAttribute('data-state', 'static');
    status.textContent = 'static page';
    return;
  }
  var base = body.getAttribute('data-base') || '';
  var source = null;
  var watching = null;
  var pending = null; // parts waiting for a refresh: null none, true all, else a list
  var running = false;

  function setState(state, text) {
    status.setAttribute('data-state', state);
    status.textContent = text;
  }

  function want(parts) {
    pending = pending === true || parts === true ? true : (pending || []).concat(parts);
    if (!running) refresh();
  }

  // Fetches the same page again and swaps in the sections whose parts changed.
  function refresh() {
    var parts = pending;
    pending = null;
    running = true;
    fetch(location.href, { credentials: 'same-origin' })
      .then(function (response) {
        if (!response.ok) throw new Error('HTTP ' + response.status);
        return response.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, 'text/html');
        document.querySelectorAll('[data-parts]').forEach(function (section) {
          var own = section.getAttribute('data-parts').split(' ');
          if (parts !== true && !own.some(function (p) { return parts.indexOf(p) >= 0; })) return;
          var fresh = doc.getElementById(section.id);
          if (fresh) section.replaceWith(document.importNode(fresh, true));
        });
        body.setAttribute('data-refreshes', String(Number(body.getAttribute('data-refreshes') || '0') + 1));
        var watch = doc.body.getAttribute('data-watch') || '';
        if (watch !== watching) connect(watch);
      })
      .catch(function (error) { setState('stale', 'could not refresh (' + error.message + ')'); })
      .then(function () {
        running = false;
        if (pending !== null) refresh();
      });
  }

  function connect(watch) {
    if (source) source.close();
    watching = watch;
    body.setAttribute('data-watch', watch);
    source = new EventSource(base + '/events?orders=' + encodeURIComponent(watch));
    // "ready" comes once the server has noted what it will compare against: what changed before
    // it is fetched now, what changes after it is pushed.
    source.addEventListener('ready', function () {
      setState('live', 'live');
      want(true);
    });
    source.addEventListener('changed', function (event) { want(JSON.parse(event.data).parts); });
    source.addEventListener('unavailable', function (event) { setState('stale', 'database not answering: ' + JSON.parse(event.data).code); });
    source.onerror = function () { setState('connecting', 'reconnecting…'); };
  }

  connect(body.getAttribute('data-watch') || '');
})();
`;
