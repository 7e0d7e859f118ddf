// policy.js -- reference.lane's route `ref` in plain JavaScript, run by
// node: the peer many gateways are written in. `make bench` (main.c)
// writes the catalog, the mirrored live state and the 200,000 requests to
// a text file, runs
//
//   node tests/bench/policy.js FILE PASSES
//
// and reads back one line: "ns <median ns per decision> h <checksum hex>
// cost <cost bits hex>". The route is written as a JavaScript developer who
// cares about speed would: pools as index arrays resolved at start-up,
// capabilities as a bit mask, a top-3 insertion, no allocation in the
// decision loop, and bucket()'s 64-bit FNV-1a and splitmix64 on 32-bit
// halves with Math.imul (BigInt would be far slower). It must agree with
// lane on every decision and on the bits of the summed cost.
"use strict";
const fs = require("fs");

const CAP_VISION = 1, CAP_TOOLS = 2, CAP_JSON = 4;
const [file, passesArg] = process.argv.slice(2);
const lines = fs.readFileSync(file, "utf8").split("\n");
let li = 0;
const next = () => lines[li++].split(" ");

// ---- the input: catalog, state, requests -------------------------------
const nm = +next()[1];
const M = [];
for (let i = 0; i < nm; i++) {
  const f = next();
  M.push({
    name: f[0], input: parseFloat(f[1]), output: parseFloat(f[2]), longAbove: +f[3],
    longInput: parseFloat(f[4]), longOutput: parseFloat(f[5]), context: +f[6],
    maxOutput: +f[7], caps: +f[8], quality: parseFloat(f[9]), p95: parseFloat(f[10]),
    healthy: f[11] === "1",
  });
}
const nt = +next()[1];
const spend = new Map();
for (let i = 0; i < nt; i++) {
  const f = next();
  spend.set(f[0], parseFloat(f[1]));
}
const limit = parseFloat(next()[1]);
const nr = +next()[1];
const R = [];
for (let i = 0; i < nr; i++) {
  const f = next();
  R.push({
    task: f[0], tier: f[1], tenant: f[2], user: f[3], input: +f[4], output: +f[5],
    images: +f[6], tools: f[7] === "1", json: f[8] === "1", latency: +f[9],
  });
}

// ---- pools, resolved once -----------------------------------------------
function where(qmin, caps, ctxmin) {
  const p = [];
  for (let m = 0; m < M.length; m++)
    if (M[m].quality > 0 && M[m].quality >= qmin && (M[m].caps & caps) === caps &&
        M[m].context >= ctxmin) p.push(m);
  return p;
}
const P_rated = where(0, 0, 0), P_q060 = where(0.6, 0, 0), P_q070 = where(0.7, 0, 0);
const P_q080 = where(0.8, 0, 0), P_q084 = where(0.84, 0, 0), P_q085 = where(0.85, 0, 0);
const P_vision = where(0.8, CAP_VISION, 0), P_tool = where(0.8, CAP_TOOLS, 0);
const P_long = where(0.75, 0, 128000);
const P_best = P_rated.slice().sort((a, b) => M[b].quality - M[a].quality || a - b);
const FLASH = M.findIndex((m) => m.name === "gemini_2_5_flash");
const P95KEY = M.map((m) => (m.p95 > 0 ? m.p95 : Infinity));

// ---- 64-bit hashing on 32-bit halves ------------------------------------
// (hi, lo) * (bh, bl) mod 2^64, by 16-bit limbs.
let H = 0, L = 0;
function mul64(ah, al, bh, bl) {
  const a0 = al & 0xffff, a1 = al >>> 16, a2 = ah & 0xffff, a3 = ah >>> 16;
  const b0 = bl & 0xffff, b1 = bl >>> 16, b2 = bh & 0xffff, b3 = bh >>> 16;
  let c0 = a0 * b0;
  let c1 = (c0 >>> 16) + a1 * b0;
  let c2 = c1 >>> 16;
  c1 = (c1 & 0xffff) + a0 * b1;
  c2 += c1 >>> 16;
  c2 += a2 * b0;
  let c3 = c2 >>> 16;
  c2 = (c2 & 0xffff) + a1 * b1;
  c3 += c2 >>> 16;
  c2 = (c2 & 0xffff) + a0 * b2;
  c3 += c2 >>> 16;
  c3 += a3 * b0 + a2 * b1 + a1 * b2 + a0 * b3;
  L = (((c1 & 0xffff) << 16) | (c0 & 0xffff)) >>> 0;
  H = (((c3 & 0xffff) << 16) | (c2 & 0xffff)) >>> 0;
}
function fnvStep(byte) {   // (H, L) = ((H, L) ^ byte) * 0x100000001b3
  mul64(H, (L ^ byte) >>> 0, 0x100, 0x1b3);
}
function bucket(s) {   // splitmix64(fnv1a64(s)) % 100
  H = 0xcbf29ce4; L = 0x84222325;
  for (let i = 0; i < s.length; i++) fnvStep(s.charCodeAt(i));
  // splitmix64: z += golden; z = (z ^ z>>30) * c1; z = (z ^ z>>27) * c2; z ^ z>>31
  let lo = L + 0x7f4a7c15, hi = H + 0x9e3779b9 + (lo > 0xffffffff ? 1 : 0);
  lo >>>= 0; hi >>>= 0;
  let sl = ((lo >>> 30) | (hi << 2)) >>> 0, sh = hi >>> 30;
  mul64((hi ^ sh) >>> 0, (lo ^ sl) >>> 0, 0xbf58476d, 0x1ce4e5b9);
  hi = H; lo = L;
  sl = ((lo >>> 27) | (hi << 5)) >>> 0; sh = hi >>> 27;
  mul64((hi ^ sh) >>> 0, (lo ^ sl) >>> 0, 0x94d049bb, 0x133111eb);
  hi = H; lo = L;
  sl = ((lo >>> 31) | (hi << 1)) >>> 0; sh = hi >>> 31;
  hi = (hi ^ sh) >>> 0; lo = (lo ^ sl) >>> 0;
  return ((hi % 100) * 96 + (lo % 100)) % 100;   // 2^32 mod 100 = 96
}

// ---- the route ----------------------------------------------------------
const BY_COST = 0, BY_P95 = 1, BY_QUALITY = 2;
const cand = new Int32Array(3), bm = new Int32Array(3);
const k1 = new Float64Array(3), k2 = new Float64Array(3);
let nc = 0, rin = 0, rout = 0, needCaps = 0, latency = 0, costMax = Infinity, p95Filter = false;

function cost(m) {
  const md = M[m];
  const lng = md.longAbove > 0 && rin > md.longAbove;
  const pin = lng && md.longInput > 0 ? md.longInput : md.input;
  const pout = lng && md.longOutput > 0 ? md.longOutput : md.output;
  return rin * pin + rout * pout;
}

function admissible(m) {
  const md = M[m];
  if ((md.caps & needCaps) !== needCaps || !md.healthy) return false;
  if (md.context && rin + rout > md.context) return false;
  return !md.maxOutput || rout <= md.maxOutput;
}

function pick(pool, by) {
  const need = 3 - nc;
  let nb = 0;
  if (need <= 0) return;
  for (let i = 0; i < pool.length; i++) {
    const m = pool[i];
    if (by === BY_QUALITY && nb === need && -M[m].quality > k1[nb - 1]) break;
    let dup = false;
    for (let j = 0; j < nc; j++) if (cand[j] === m) dup = true;
    if (dup || !admissible(m)) continue;
    if (p95Filter && !(M[m].p95 <= latency)) continue;
    const c = cost(m);
    if (!(c < costMax)) continue;
    const a = by === BY_COST ? c : by === BY_P95 ? P95KEY[m] : -M[m].quality;
    const b = by === BY_COST ? 0 : c;
    let pos = nb;
    while (pos > 0 && (a < k1[pos - 1] || (a === k1[pos - 1] && b < k2[pos - 1]))) pos--;
    if (pos >= need) continue;
    if (nb < need) nb++;
    for (let j = nb - 1; j > pos; j--) { bm[j] = bm[j - 1]; k1[j] = k1[j - 1]; k2[j] = k2[j - 1]; }
    bm[pos] = m; k1[pos] = a; k2[pos] = b;
  }
  for (let i = 0; i < nb; i++) cand[nc++] = bm[i];
}

function tryPool(pool, by, max, p95) {
  nc = 0;
  costMax = max;
  p95Filter = p95;
  pick(pool, by);
  return nc > 0;
}

// Decides request q: the rule (0 none); the candidates are in cand[0..nc).
function decide(q) {
  rin = q.input > 0 ? q.input : 0;
  rout = q.output > 0 ? q.output : 0;
  needCaps = (q.images ? CAP_VISION : 0) | (q.tools ? CAP_TOOLS : 0) | (q.json ? CAP_JSON : 0);
  latency = q.latency;
  nc = 0;
  const ent = q.tier === "enterprise", code = q.task === "code";
  if ((spend.get(q.tenant) || 0) / limit >= 1.0 && tryPool(P_q060, BY_COST, Infinity, false)) return 1;
  if (latency > 0 && latency < 1500 && tryPool(P_rated, BY_P95, Infinity, true)) return 2;
  if (ent && code && tryPool(P_best, BY_QUALITY, Infinity, false)) return 3;
  if (q.images > 0 && tryPool(P_vision, BY_COST, Infinity, false)) return 4;
  if (q.task === "chat" && bucket(q.user) < 5) {
    nc = 0;
    costMax = Infinity;
    p95Filter = false;
    if (admissible(FLASH)) cand[nc++] = FLASH;
    pick(P_q080, BY_COST);
    if (nc) return 5;
  }
  if (rin + rout > 8000 && tryPool(P_long, BY_COST, Infinity, false)) return 6;
  if (ent && tryPool(P_best, BY_QUALITY, 0.02, false)) return 7;
  if (q.tools && tryPool(P_tool, BY_COST, Infinity, false)) return 8;
  if (code && tryPool(P_q085, BY_COST, Infinity, false)) return 9;
  if (q.tier === "pro" && tryPool(P_q084, BY_COST, Infinity, false)) return 10;
  if (q.tier === "free" && tryPool(P_q070, BY_COST, 0.0002, false)) return 11;
  if (tryPool(P_q080, BY_COST, Infinity, false)) return 12;
  nc = 0;
  return 0;
}

// ---- passes and the checksum (outside the timed loop) --------------------
const rules = new Int32Array(nr), ns3 = new Int32Array(nr * 3), nn = new Int8Array(nr);
const costs = new Float64Array(nr);
function pass() {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < nr; i++) {
    const r = decide(R[i]);
    rules[i] = r;
    nn[i] = nc;
    for (let j = 0; j < nc; j++) ns3[i * 3 + j] = cand[j];
    costs[i] = nc ? cost(cand[0]) : 0;
  }
  return Number(process.hrtime.bigint() - t0) / nr;
}

const passes = Math.max(1, +passesArg || 5);
pass();   // warm-up: the JIT compiles
const times = [];
for (let p = 0; p < passes; p++) times.push(pass());
times.sort((a, b) => a - b);
const median = passes % 2 ? times[passes >> 1] : (times[passes / 2 - 1] + times[passes / 2]) / 2;

H = 0xcbf29ce4; L = 0x84222325;
let sum = 0;
const fold = (v) => { mul64(H, (L ^ v) >>> 0, 0x100, 0x1b3); };
for (let i = 0; i < nr; i++) {
  fold(rules[i]);
  fold(nn[i]);
  for (let j = 0; j < nn[i]; j++) fold(ns3[i * 3 + j]);
  sum += costs[i];
}
const hex = (n) => (n >>> 0).toString(16).padStart(8, "0");
const dv = new DataView(new ArrayBuffer(8));
dv.setFloat64(0, sum);
console.log("ns %s h %s%s cost %s%s", median.toFixed(1), hex(H), hex(L), hex(dv.getUint32(0)),
            hex(dv.getUint32(4)));
