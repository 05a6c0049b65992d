"""The HTML report's inline stylesheet and script (no external fonts, scripts or images)."""

from __future__ import annotations

CSS = """
:root { --ink:#1f2430; --muted:#5c6370; --line:#e3e6ec; --bg:#f6f7fb; --card:#fff;
  --accent:#3b5bdb; --pass:#2f9e6e; --fail:#d9480f; --warn:#e67700; --soft:#eef1fb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color:var(--ink); background:var(--bg); }
header { background:linear-gradient(120deg,#1f2a5c,#3b5bdb); color:#fff; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header .sub { opacity:.8; font-size:12.5px; }
.badge { display:inline-block; padding:2px 10px; border-radius:999px; font-size:12px; font-weight:600;
  letter-spacing:.03em; text-transform:uppercase; vertical-align:middle; }
.badge.passed { background:#d3f9e4; color:#0b6e47; } .badge.failed { background:#ffe3d6; color:#a23a06; }
.badge.unverified { background:#e9ecef; color:#495057; }
header .badge { margin-left:10px; font-size:13px; }
nav { position:sticky; top:0; z-index:5; background:#fff; border-bottom:1px solid var(--line);
  padding:8px 32px; display:flex; gap:18px; font-size:13px; }
nav a { color:var(--accent); text-decoration:none; } nav a:hover { text-decoration:underline; }
main { padding:18px 32px 40px; max-width:1320px; }
.facts { display:grid; grid-template-columns:repeat(auto-fill,minmax(210px,1fr)); gap:12px; margin-bottom:8px; }
.fact { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:10px 14px; }
.fact .k { font-size:11px; text-transform:uppercase; letter-spacing:.06em; color:var(--muted); }
.fact .v { font-size:15px; font-weight:600; margin-top:2px; word-break:break-word; }
section { background:var(--card); border:1px solid var(--line); border-radius:12px; padding:16px 20px;
  margin-top:18px; }
section h2 { margin:0 0 12px; font-size:17px; }
section h3 { margin:16px 0 8px; font-size:14px; color:#343a40; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th { text-align:left; font-weight:600; color:var(--muted); font-size:11.5px; text-transform:uppercase;
  letter-spacing:.04em; border-bottom:2px solid var(--line); padding:6px 8px; }
td { border-bottom:1px solid var(--line); padding:5px 8px; vertical-align:top; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
code, .mono { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12px; }
.bar { height:10px; border-radius:3px; background:var(--accent); min-width:2px; }
.bar.export { background:#5c7cfa; } .bar.lower { background:#20c997; }
.barcell { width:40%; }
.chip { display:inline-block; border-radius:6px; padding:0 7px; font-size:11.5px; font-weight:600;
  margin-right:4px; white-space:nowrap; }
.chip.export { background:#e5eaff; color:#364fc7; } .chip.lower { background:#d7f5ec; color:#087f5b; }
.chip.native { background:#e6fcf5; color:#087f5b; } .chip.composite { background:#fff4e6; color:#d9480f; }
.chip.custom_layer { background:#fff0f6; color:#c2255c; }
.chip.mil { background:var(--soft); color:#364fc7; font-weight:500; }
.hgrid { display:grid; grid-template-columns:repeat(auto-fit,minmax(380px,1fr)); gap:18px; }
td.cnt { text-align:right; font-variant-numeric:tabular-nums; width:1%; white-space:nowrap; }
td.cnt.up { background:#fff4e6; color:#c05600; font-weight:600; }
td.cnt.down { background:#e6fcf5; color:#087f5b; font-weight:600; }
td.cnt.zero { color:#adb5bd; }
.hbar { display:inline-block; height:8px; border-radius:2px; background:#91a7ff; vertical-align:middle;
  margin-left:6px; }
.legend { font-size:12px; color:var(--muted); margin:4px 0 8px; }
.scroll { max-height:520px; overflow:auto; border:1px solid var(--line); border-radius:8px; }
.scroll thead th { position:sticky; top:0; background:#fff; }
.filter { margin:0 0 10px; padding:6px 10px; border:1px solid var(--line); border-radius:8px; width:320px;
  font-size:13px; }
.parity { border-left:4px solid var(--pass); padding-left:14px; margin:12px 0 22px; }
.parity.fail { border-left-color:var(--fail); }
.ok { color:var(--pass); font-weight:600; } .bad { color:var(--fail); font-weight:600; }
figure { margin:10px 0 4px; } figure svg { max-width:100%; height:auto; }
figcaption { font-size:12px; color:var(--muted); }
ul.warnings { list-style:none; padding:0; margin:0; }
ul.warnings li { padding:7px 10px; border-radius:8px; margin-bottom:6px; background:#fff9db; }
ul.warnings li.error, ul.warnings li.parity { background:#fff0eb; }
.cat { font-size:11px; font-weight:700; text-transform:uppercase; letter-spacing:.04em; margin-right:8px;
  color:#a35f00; } li.error .cat, li.parity .cat { color:#c92a2a; }
.none { color:var(--muted); font-style:italic; }
details summary { cursor:pointer; color:var(--accent); }
pre.json { max-height:480px; overflow:auto; background:#f8f9fa; padding:10px; border-radius:8px; font-size:11.5px; }
footer { color:var(--muted); font-size:12px; padding:0 32px 24px; }
"""

#: Node-table filter, and a note of each figure's rendered size (read back by the browser tests).
SCRIPT = """
(function () {
  var box = document.getElementById('node-filter');
  if (box) {
    box.addEventListener('input', function () {
      var q = box.value.toLowerCase();
      document.querySelectorAll('#node-table tbody tr').forEach(function (tr) {
        tr.style.display = tr.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
      });
    });
  }
  window.addEventListener('load', function () {
    document.querySelectorAll('figure svg').forEach(function (svg) {
      var r = svg.getBoundingClientRect();
      svg.parentNode.setAttribute('data-rendered', Math.round(r.width) + 'x' + Math.round(r.height));
    });
  });
})();
"""
