/**
 * The review pages' stylesheet, served as a file from `/audit/assets/` (the Content Security
 * Policy allows no inline styles). System fonts, no images, readable at any width; colour is
 * never the only signal (every state also has words).
 */
export const AUDIT_CSS = `
:root {
  --ink: #1b2230;
  --muted: #5a6476;
  --line: #d9dee7;
  --paper: #ffffff;
  --wash: #f4f6f9;
  --accent: #1f5fbf;
  --ok: #17663a;
  --ok-wash: #e5f4eb;
  --bad: #a3161a;
  --bad-wash: #fbe7e7;
  --warn: #7a4b00;
  --warn-wash: #fff3d6;
  --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  color-scheme: light;
}

* { box-sizing: border-box; }

body {
  margin: 0;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink);
  background: var(--wash);
}

a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible, [tabindex]:focus-visible {
  outline: 3px solid #f0a500;
  outline-offset: 2px;
}

.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
.skip-link { position: absolute; left: -999px; top: 0; background: var(--paper); padding: .5rem 1rem; z-index: 10; }
.skip-link:focus { left: 1rem; }

header.site {
  display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.5rem;
  padding: .6rem 1.5rem; background: var(--ink); color: #fff;
}
header.site .brand { font-weight: 600; letter-spacing: .02em; }
header.site nav ul { display: flex; gap: 1rem; margin: 0; padding: 0; list-style: none; }
header.site a { color: #fff; text-decoration: none; border-bottom: 2px solid transparent; }
header.site a:hover, header.site a[aria-current="page"] { border-bottom-color: #8fb4ff; }
header.site .who { margin-left: auto; color: #c9d2e3; font-size: .9rem; }

main { max-width: 104rem; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.45rem; margin: 1.2rem 0 .6rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }

.chain {
  border: 1px solid var(--line); border-left-width: 6px; border-radius: 6px;
  padding: .6rem 1rem; margin: 1rem 0; background: var(--paper);
}
.chain strong { display: block; }
.chain p { margin: .2rem 0; }
.chain dl { display: flex; flex-wrap: wrap; gap: .2rem 1.8rem; margin: .3rem 0 0; font-size: .9rem; }
.chain dl div { display: flex; gap: .5rem; }
.chain dt { color: var(--muted); }
.chain dd { margin: 0; font-family: var(--mono); word-break: break-all; }
.chain-verified { border-color: var(--ok); background: var(--ok-wash); }
.chain-verified strong { color: var(--ok); }
.chain-failed { border-color: var(--bad); background: var(--bad-wash); }
.chain-failed strong { color: var(--bad); }
.chain-pending { border-color: #b98500; background: var(--warn-wash); }
.chain-pending strong { color: var(--warn); }
.chain details { margin-top: .3rem; font-size: .85rem; }
.chain details code { word-break: break-all; }

form.filters {
  display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .6rem 1rem;
  align-items: end; background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem;
}
form.filters label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .15rem; }
form.filters input, form.filters select { font: inherit; color: var(--ink); padding: .3rem .45rem; border: 1px solid #b7bfcc; border-radius: 4px; background: #fff; }
form.filters .actions { display: flex; gap: .6rem; align-items: center; }
.hint { font-size: .8rem; color: var(--muted); }

button, .button {
  font: inherit; font-size: .9rem; padding: .3rem .8rem; border-radius: 4px; cursor: pointer;
  border: 1px solid var(--accent); background: var(--accent); color: #fff; text-decoration: none; display: inline-block;
}
button.secondary, .button.secondary { background: #fff; color: var(--accent); }
button:disabled { opacity: .6; cursor: progress; }

.problems { border: 1px solid var(--bad); background: var(--bad-wash); border-radius: 6px; padding: .5rem 1rem; }

.toolbar { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; margin: .8rem 0; }
.toolbar .spacer { flex: 1; }

.table-wrap { overflow-x: auto; background: var(--paper); border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; padding: .6rem .8rem; font-weight: 600; }
caption .hint { font-weight: normal; margin-left: .5rem; }
th, td { padding: .4rem .6rem; border-top: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: #eef1f6; font-size: .82rem; text-transform: uppercase; letter-spacing: .03em; color: #3c4556; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
tbody tr.denied { background: #fff6f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.seq { font-family: var(--mono); white-space: nowrap; }
td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.empty td { color: var(--muted); text-align: center; padding: 1.2rem; }
code, pre { font-family: var(--mono); font-size: .85rem; }

.effect { display: inline-block; padding: 0 .45rem; border-radius: 999px; font-size: .8rem; font-weight: 600; border: 1px solid; }
.effect-allow { color: var(--ok); border-color: var(--ok); background: var(--ok-wash); }
.effect-deny { color: var(--bad); border-color: var(--bad); background: var(--bad-wash); }
.count-deny { color: var(--bad); font-weight: 600; }
.kind { color: var(--muted); font-size: .8rem; display: block; }

pre.sql { margin: 0; white-space: pre-wrap; word-break: break-word; max-width: 48rem; }
.sql-keyword { color: #6b2fa3; font-weight: 600; }
.sql-string { color: #0b6e4f; }
.sql-number { color: #9a4b00; }
.sql-comment { color: var(--muted); font-style: italic; }
.sql-identifier { color: #124a8c; }
pre.sql-unformatted { overflow-wrap: anywhere; word-break: normal; }
.sql-note { margin: .2rem 0 0; color: var(--muted); font-size: .8rem; }

details.raw summary { cursor: pointer; color: var(--accent); font-size: .85rem; }
details.raw { margin-top: .3rem; }
details.raw pre { white-space: pre-wrap; word-break: break-all; max-width: 48rem; margin: .3rem 0 0; background: var(--wash); border: 1px solid var(--line); border-radius: 4px; padding: .5rem; }
section.records table { font-size: .9rem; }
section.records th, section.records td { padding: .4rem .45rem; }
td.time .date { display: block; color: var(--muted); font-size: .85em; }
td.who { min-width: 11rem; max-width: 15rem; overflow-wrap: break-word; }
td.action { min-width: 19rem; }
td.code code { white-space: nowrap; font-size: .8rem; }
td.proof { width: 11rem; }
td.proof .links { display: flex; flex-wrap: wrap; gap: .3rem .6rem; align-items: center; }
output.proof-result { display: block; font-size: .82rem; margin-top: .25rem; max-width: 22rem; }
.proof-ok { color: var(--ok); font-weight: 600; }
.proof-failed { color: var(--bad); font-weight: 600; }
.proof-pending { color: var(--muted); }

dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; background: var(--paper); border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; }
dl.summary dt { color: var(--muted); }
dl.summary dd { margin: 0; }

nav.pages { display: flex; gap: 1rem; margin: .8rem 0; }
.tail-controls { display: flex; gap: .6rem; align-items: center; margin: .6rem .8rem; }
.tail-state { font-size: .85rem; color: var(--muted); }
.tail-state.tail-ended { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
.key { font-family: var(--mono); word-break: break-all; }
`;
