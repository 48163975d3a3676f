// ledgerlab viz: animate one PBFT trace. The data (built by scripts/viz/model.py) is in
// the #trace-data element; everything here works offline, from a file:// URL.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("trace-data").textContent);
  const META = D.meta, LANES = META.lanes, N = LANES.length, STR = D.strings;
  const TYPES = D.types, PHASES = D.phases, MARKS = D.markKinds;
  const COLORS = { PrePrepare: "#2563eb", Prepare: "#16a34a", Commit: "#ea580c",
    ViewChange: "#dc2626", NewView: "#9333ea", garbage: "#6b7280" };
  const SHORT = { PrePrepare: "PP", Prepare: "P", Commit: "C", ViewChange: "VC",
    NewView: "NV", garbage: "?" };
  const F_EQ = 1, F_DV = 2, F_UNPAIRED = 4, F_LOST = 8;
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;",
    ">": "&gt;", '"': "&quot;" }[c]));
  const ms = (t) => ((t - D.meta.start) / 1000).toFixed(3) + " ms"; // since the trace began
  const name = (i) => (i >= 0 && i < N ? LANES[i].name : "?");

  // -- messages: absolute times, receive order ---------------------------------------
  const M = D.msgs, NM = M.fl.length;
  const TS = new Float64Array(NM), TR = new Float64Array(NM);
  let maxFlight = 0;
  for (let i = 0, acc = 0; i < NM; i++) {
    acc += M.ts[i]; TS[i] = acc; TR[i] = acc + M.fl[i];
    if (M.fl[i] > maxFlight) maxFlight = M.fl[i];
  }
  const typeName = (i) => TYPES[M.ty[i]];

  // -- node snapshots, per lane ---------------------------------------------------------
  const S = D.snaps, snapOf = [];
  for (let n = 0; n < N; n++) snapOf.push([]);
  for (let i = 0; i < S.t.length; i++) snapOf[S.n[i]].push(i);
  const snapT = snapOf.map((rows) => Float64Array.from(rows, (r) => S.t[r]));
  function lastAtOrBefore(arr, t) { // index of the last element <= t, -1 if none
    let lo = 0, hi = arr.length - 1, ans = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (arr[mid] <= t) { ans = mid; lo = mid + 1; } else hi = mid - 1; }
    return ans;
  }
  function stateAt(n, t) {
    const k = lastAtOrBefore(snapT[n], t);
    const r = snapOf[n][Math.max(0, k)];
    return { h: S.h[r], v: S.v[r], phase: PHASES[S.ph[r]], active: !!(S.fl[r] & 1),
      up: !!(S.fl[r] & 2), pc: S.pc[r], cc: S.cc[r], vc: S.vc[r], ch: S.ch[r] };
  }
  // down intervals per lane, for shading
  const downs = [];
  for (let n = 0; n < N; n++) {
    const iv = []; let from = null;
    for (const r of snapOf[n]) {
      const up = S.fl[r] & 2;
      if (!up && from === null) from = S.t[r];
      if (up && from !== null) { iv.push([from, S.t[r]]); from = null; }
    }
    if (from !== null) iv.push([from, Infinity]);
    downs.push(iv);
  }

  // -- marks, captions, chain, sealers ------------------------------------------------
  const MK = { t: Float64Array.from(D.marks[0]), n: D.marks[1], k: D.marks[2], d: D.marks[3] };
  const CAPS = D.captions || [];
  const CHAIN = D.chain;
  const quorumAt = (h) => { let q = D.quorums[0][1]; for (const [hh, v] of D.quorums) if (hh <= h) q = v; return q; };
  const sealersAt = (h) => { let s = META.sealers[0][1]; for (const [hh, v] of META.sealers) if (hh <= h) s = v; return s; };
  // the quorum n - f reads 2f+1 only when n = 3f + 1 (5 sealers: f = 1, quorum 4)
  const quorumIs = (h) => { const n = sealersAt(h).length;
    return quorumAt(h) + (n % 3 === 1 ? " = 2f+1" : " = n - f"); };
  const leaderOf = (v, h) => { const s = sealersAt(h); return s.length ? s[(v + h) % s.length] : -1; };
  const isByz = LANES.map((l) => !!l.behaviour);
  const F = META.f;

  // -- step points and the warped clock -------------------------------------------------
  // Long idle stretches (everyone waits for a timer) are shown shortened, so playing and
  // the scrubber spend their time where messages move.
  const evSet = [];
  for (let i = 0; i < NM; i++) { evSet.push(TS[i]); if (!(M.fg[i] & F_LOST)) evSet.push(TR[i]); }
  for (let i = 0; i < MK.t.length; i++) evSet.push(MK.t[i]);
  evSet.push(META.start, META.end);
  evSet.sort((a, b) => a - b);
  const EV = Float64Array.from(evSet.filter((t, i) => i === 0 || t !== evSet[i - 1]));
  const GAP = 60000; // µs: a quieter stretch than this is shown as this long
  const knotRaw = [EV[0]], knotDisp = [0];
  for (let i = 1; i < EV.length; i++) {
    const a = EV[i - 1], b = EV[i], da = knotDisp[knotDisp.length - 1] + (a - knotRaw[knotRaw.length - 1]);
    if (b - a > GAP) { knotRaw.push(a, b); knotDisp.push(da, da + GAP); }
  }
  knotRaw.push(EV[EV.length - 1]);
  knotDisp.push(knotDisp[knotDisp.length - 1] + (EV[EV.length - 1] - knotRaw[knotRaw.length - 2]));
  const T0 = EV[0], T1 = EV[EV.length - 1], DISP_END = knotDisp[knotDisp.length - 1];
  function interp(xs, ys, x) {
    if (x <= xs[0]) return ys[0] + (x - xs[0]);
    const k = Math.min(lastAtOrBefore(xs, x), xs.length - 2);
    const x0 = xs[k], x1 = xs[k + 1], y0 = ys[k], y1 = ys[k + 1];
    return x1 === x0 ? y0 : y0 + (x - x0) * (y1 - y0) / (x1 - x0);
  }
  const warp = (t) => Math.max(0, Math.min(DISP_END, interp(knotRaw, knotDisp, t)));
  const unwarp = (d) => Math.max(T0, Math.min(T1, interp(knotDisp, knotRaw, d)));
  function gapAt(t) { // [a, b] of the compressed stretch holding t, or null
    const k = lastAtOrBefore(EV, t);
    if (k < 0 || k >= EV.length - 1) return null;
    return EV[k + 1] - EV[k] > GAP ? [EV[k], EV[k + 1]] : null;
  }

  // -- the log: sends (one line per broadcast), receipts, marks -----------------------
  const logT = [], logK = [], logI = [];
  for (let i = 0; i < NM; i++) {
    const first = i === 0 || TS[i] !== TS[i - 1] || M.src[i] !== M.src[i - 1] || M.ty[i] !== M.ty[i - 1];
    if (first && !(M.fg[i] & F_UNPAIRED)) { logT.push(TS[i]); logK.push(0); logI.push(i); }
    logT.push(M.fg[i] & F_LOST ? TS[i] + 1 : TR[i]); logK.push(M.fg[i] & F_LOST ? 3 : 1); logI.push(i);
  }
  for (let i = 0; i < MK.t.length; i++) { logT.push(MK.t[i]); logK.push(2); logI.push(i); }
  // at one instant cause before effect: a receipt, then the phase or timer it led to,
  // then the messages sent because of it (kinds: 0 send, 1 receipt, 2 mark, 3 lost)
  const LOG_RANK = [3, 0, 2, 1];
  const logOrder = logT.map((_, i) => i).sort((a, b) => logT[a] - logT[b] || LOG_RANK[logK[a]] - LOG_RANK[logK[b]]);
  const LOG_T = Float64Array.from(logOrder, (i) => logT[i]);
  const LOG_K = Int8Array.from(logOrder, (i) => logK[i]);
  const LOG_I = Int32Array.from(logOrder, (i) => logI[i]);
  function msgWords(i) {
    const ty = typeName(i), p = M.p[i] >= 0 ? " " + STR[M.p[i]] : "";
    return ty + p + " (view " + M.v[i] + ", height " + M.h[i] + ")";
  }
  function logLine(j) {
    const k = LOG_K[j], i = LOG_I[j];
    if (k === 0) {
      const byP = new Map();
      for (let q = i; q < NM && TS[q] === TS[i] && M.src[q] === M.src[i] && M.ty[q] === M.ty[i]; q++) {
        const key = M.p[q] * 1e6 + M.b[q];
        if (!byP.has(key)) byP.set(key, []);
        byP.get(key).push(q);
      }
      if (byP.size > 1) {
        const parts = [...byP.values()].map((qs) => (M.p[qs[0]] >= 0 ? STR[M.p[qs[0]]] : "?") + " to " + qs.map((q) => name(M.dst[q])).join(", "));
        return [name(M.src[i]) + " sends DIFFERENT " + typeName(i) + "s: " + parts.join("; ") + " [CONFLICTING]", "k-bad"];
      }
      const to = byP.values().next().value.length;
      const bad = M.fg[i] & (F_EQ | F_DV);
      return [name(M.src[i]) + " sends " + msgWords(i) + (to > 1 ? " to " + to + " nodes" : " to " + name(M.dst[i])), bad ? "k-bad" : ""];
    }
    if (k === 1) {
      const bad = M.fg[i] & (F_EQ | F_DV);
      return [name(M.dst[i]) + " gets " + msgWords(i) + " from " + name(M.src[i]) + (bad ? " [CONFLICTING]" : ""), bad ? "k-bad" : ""];
    }
    if (k === 3) return [typeName(i) + " from " + name(M.src[i]) + " to " + name(M.dst[i]) + " is LOST", "k-bad"];
    const kind = MARKS[MK.k[i]], d = MK.d[i] >= 0 ? ": " + STR[MK.d[i]] : "";
    const words = { executed: "executed", invalid: "found the proposal INVALID", prepared: "is PREPARED",
      committed: "COMMITS", synced: "synced", crash: "CRASHES", restart: "restarts",
      timeout: "TIMES OUT", newview: "enters the new view", membership: "changes sealers", stop: "is STOPPED" };
    const bad = kind === "crash" || kind === "stop" || kind === "timeout" || kind === "invalid";
    return [name(MK.n[i]) + " " + (words[kind] || kind) + d, bad ? "k-bad" : "k-mark"];
  }

  // -- page furniture -----------------------------------------------------------------
  const byzNames = LANES.filter((l) => l.behaviour).map((l) => l.name + " (" + l.behaviour + ")");
  $("title").textContent = META.title ? "— " + META.title : "";
  if (META.title) document.title = META.title + " · ledgerlab viz";
  $("summary").textContent = N + " nodes, f = " + F + " (tolerates " + F + " faulty), quorum " +
    quorumIs(1) + (META.seed != null ? ", seed " + META.seed : "") + ", " + CHAIN.length +
    " blocks committed, " + D.newViews.length + " view change(s)" +
    (byzNames.length ? ". Faulty: " + byzNames.join(", ") : ". No faulty node") +
    ". Time is " + (META.clock === "wall" ? "wall-clock" : "simulated") + ".";
  $("legend").innerHTML = Object.keys(COLORS).map((k) =>
    '<span><i class="sw" style="background:' + COLORS[k] + '"></i>' + k + "</span>").join("") +
    '<span class="wide"><i class="sw" style="background:#db2777;height:6px"></i>conflicting message from a Byzantine node (equivocation / double vote)</span>' +
    '<span class="wide">lane marks: <b style="color:#16a34a">&#9670;</b> prepared, <b style="color:#ea580c">&#9679;</b> committed, <b style="color:#0891b2">&#9632;</b> synced, <b style="color:#dc2626">&#9650;</b> timer fired, <b style="color:#9333ea">|</b> new view, <b>&#215;</b> crash / stop / lost</span>';
  const speeds = [["2 ms / s", 2000], ["5 ms / s", 5000], ["10 ms / s", 10000], ["20 ms / s", 20000],
    ["50 ms / s", 50000], ["100 ms / s", 100000], ["250 ms / s", 250000], ["1 s / s", 1000000]];
  $("speed").innerHTML = speeds.map(([l, v]) => '<option value="' + v + '"' + (v === 20000 ? " selected" : "") + ">" + l + "</option>").join("");
  const windows = [["60 ms", 60000], ["150 ms", 150000], ["400 ms", 400000], ["1 s", 1000000]];
  $("window").innerHTML = windows.map(([l, v]) => '<option value="' + v + '"' + (v === 150000 ? " selected" : "") + ">" + l + "</option>").join("");
  $("nextEq").hidden = !(D.equivocations.length || CAPS.some((c) => c.kind === "equivocation"));
  $("height").max = CHAIN.length ? CHAIN[CHAIN.length - 1][0] : 1;

  // -- layout -------------------------------------------------------------------------
  const flow = $("flow"), ctx = flow.getContext("2d"), tl = $("tl"), tctx = tl.getContext("2d");
  const LANES_W = 270, TOP = 27;
  let W = 800, H = 400, laneH = 60, dpr = 1, tlW = 800;
  const laneEls = [];
  for (let n = 0; n < N; n++) {
    const el = document.createElement("div");
    el.className = "lane" + (isByz[n] ? " byz" : "");
    el.dataset.node = String(n);
    $("lanes").appendChild(el);
    laneEls.push({ el, key: "" });
  }
  const laneY = (n) => TOP + laneH * n + laneH / 2;
  function layout() {
    dpr = window.devicePixelRatio || 1;
    const stage = $("stage");
    W = Math.max(300, stage.clientWidth - LANES_W);
    const avail = window.innerHeight - stage.getBoundingClientRect().top - 150;
    laneH = Math.max(54, Math.min(96, Math.floor((avail - TOP) / N)));
    H = TOP + laneH * N + 14;
    flow.width = W * dpr; flow.height = H * dpr; flow.style.width = W + "px"; flow.style.height = H + "px";
    $("lanes").style.top = "0px";
    laneEls.forEach((l, n) => { l.el.style.top = (TOP + laneH * n) + "px"; l.el.style.height = laneH + "px"; });
    tlW = tl.clientWidth; tl.width = tlW * dpr; tl.height = 34 * dpr;
    tlKey = ""; chainKey = ""; logKey = -2; capKey = ""; offK = 0;
  }

  // -- playback state -------------------------------------------------------------------
  let now = T0, playing = false, lastFrame = 0;
  const frameMs = [], canvasMs = [], workMs = [], rafGaps = [];
  let lastRaf = 0;
  function speed() { return Number($("speed").value); }
  function span() { return Number($("window").value); }
  function seek(t) { now = Math.max(T0, Math.min(T1, t)); }
  function nextEvent(t) { const k = lastAtOrBefore(EV, t); return k + 1 < EV.length ? EV[k + 1] : T1; }
  function prevEvent(t) { let k = lastAtOrBefore(EV, t); if (k >= 0 && EV[k] >= t) k--; return k >= 0 ? EV[k] : T0; }

  // -- drawing the flow -----------------------------------------------------------------
  const VIS = { n: 0, i: new Int32Array(4096), x0: new Float32Array(4096), y0: new Float32Array(4096),
    x1: new Float32Array(4096), y1: new Float32Array(4096) };
  function visPush(i, x0, y0, x1, y1) {
    if (VIS.n >= VIS.i.length) {
      for (const k of ["i", "x0", "y0", "x1", "y1"]) { const a = new VIS[k].constructor(VIS.i.length * 2); a.set(VIS[k]); VIS[k] = a; }
    }
    const k = VIS.n++; VIS.i[k] = i; VIS.x0[k] = x0; VIS.y0[k] = y0; VIS.x1[k] = x1; VIS.y1[k] = y1;
  }
  function niceStep(spanUs) {
    const target = spanUs / 8;
    for (const s of [1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1e6, 2e6, 5e6]) if (s >= target) return s;
    return 1e7;
  }
  // -- the off-screen layer: arrived messages and marks, in trace-time coordinates -------
  const END = new Float64Array(NM); // when a message stops moving: arrival, or half way if lost
  for (let i = 0; i < NM; i++) END[i] = (M.fg[i] & F_LOST) ? TS[i] + (TR[i] - TS[i]) / 2 : TR[i];
  const BY_END = Int32Array.from(Array.from({ length: NM }, (_, i) => i).sort((a, b) => END[a] - END[b]));
  const END_SORTED = Float64Array.from(BY_END, (i) => END[i]);
  const off = document.createElement("canvas"), octx = off.getContext("2d");
  let offOrigin = 0, offK = 0, offUntil = Infinity, offW = 0, offH = 0;
  function strokeStyles(c, paths) { // one stroke per type; conflicting messages on top
    for (let bad = 0; bad < 2; bad++) {
      for (let ti = 0; ti < TYPES.length; ti++) {
        const p = paths[ti * 2 + bad];
        if (!p) continue;
        c.strokeStyle = bad ? "#db2777" : COLORS[TYPES[ti]];
        c.lineWidth = bad ? 2.5 : (TYPES[ti] === "PrePrepare" || TYPES[ti] === "NewView" ? 2 : 1);
        c.setLineDash(bad ? [6, 3] : []);
        c.stroke(p);
      }
    }
    c.setLineDash([]);
  }
  function offRebuild(sp, k) {
    offW = Math.ceil(W * 3); offH = H; offK = k;
    off.width = Math.ceil(offW * dpr); off.height = Math.ceil(H * dpr);
    offOrigin = now - sp;
    octx.setTransform(dpr, 0, 0, dpr, 0, 0);
    octx.clearRect(0, 0, offW, H);
    offUntil = offOrigin - 1;
    offAdvance(now);
  }
  function offAdvance(until) {
    const k = offK, X = (t) => (t - offOrigin) * k, right = offOrigin + offW / k, paths = [];
    for (let j = lastAtOrBefore(END_SORTED, offUntil) + 1; j < NM && END_SORTED[j] <= until; j++) {
      const i = BY_END[j];
      if (TS[i] > right) continue;
      const lost = (M.fg[i] & F_LOST) !== 0;
      const style = M.ty[i] * 2 + ((M.fg[i] & (F_EQ | F_DV)) !== 0 ? 1 : 0);
      const p = paths[style] || (paths[style] = new Path2D());
      const y0 = laneY(M.src[i] < 0 ? M.dst[i] : M.src[i]), y1 = laneY(M.dst[i]);
      const x0 = X(TS[i]), xe = X(END[i]);
      const ye = lost ? (y0 + y1) / 2 : y1;
      p.moveTo(x0, y0); p.lineTo(xe, ye);
      if (lost) { p.moveTo(xe - 4, ye - 4); p.lineTo(xe + 4, ye + 4); p.moveTo(xe - 4, ye + 4); p.lineTo(xe + 4, ye - 4); }
      else {
        const ang = Math.atan2(ye - y0, xe - x0);
        p.moveTo(xe - 6 * Math.cos(ang - 0.4), ye - 6 * Math.sin(ang - 0.4)); p.lineTo(xe, ye);
        p.lineTo(xe - 6 * Math.cos(ang + 0.4), ye - 6 * Math.sin(ang + 0.4));
      }
    }
    strokeStyles(octx, paths);
    for (let j = lastAtOrBefore(MK.t, offUntil) + 1; j < MK.t.length && MK.t[j] <= until; j++) {
      if (MK.t[j] >= offOrigin) drawMark(octx, MARKS[MK.k[j]], X(MK.t[j]), laneY(MK.n[j]));
    }
    offUntil = until;
  }
  // what is visible (for hover and tests): computed on demand, not every frame
  function collectVisible() {
    const sp = span(), nowX = W * 0.86, k = nowX / sp, X = (t) => nowX + (t - now) * k, left = now - sp;
    VIS.n = 0;
    let lo = 0, hi = NM - 1; const from = left - maxFlight;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (TS[mid] < from) lo = mid + 1; else hi = mid - 1; }
    for (let i = lo; i < NM && TS[i] <= now; i++) {
      if (END[i] < left) continue;
      const y0 = laneY(M.src[i] < 0 ? M.dst[i] : M.src[i]), y1 = laneY(M.dst[i]);
      const tEnd = Math.min(END[i], now), frac = TR[i] > TS[i] ? (tEnd - TS[i]) / (TR[i] - TS[i]) : 1;
      visPush(i, X(TS[i]), y0, X(tEnd), y0 + (y1 - y0) * frac);
    }
  }

  function draw(light) {
    const t0 = performance.now();
    const sp = span(), nowX = W * 0.86, k = W * 0.86 / sp;
    const X = (t) => nowX + (t - now) * k;
    const left = now - sp;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    // caption bands: view changes and equivocations, labelled in words
    ctx.font = "bold 10px DejaVu Sans, sans-serif";
    for (const c of CAPS) {
      if (c.t1 < left || c.t0 > now) continue;
      if (c.kind !== "view-change" && c.kind !== "equivocation" && c.kind !== "fault") continue;
      const x0 = Math.max(0, X(c.t0)), x1 = Math.min(nowX, X(c.t1));
      ctx.fillStyle = c.kind === "view-change" ? "rgba(220,38,38,0.08)" : c.kind === "equivocation" ? "rgba(219,39,119,0.10)" : "rgba(62,76,89,0.07)";
      ctx.fillRect(x0, TOP, Math.max(1, x1 - x0), H - TOP);
      ctx.fillStyle = c.kind === "view-change" ? "#b91c1c" : c.kind === "equivocation" ? "#9d174d" : "#3e4c59";
      const word = c.kind === "view-change" ? "VIEW CHANGE" : c.kind === "equivocation" ? "BYZANTINE EQUIVOCATION" : c.title.toUpperCase();
      ctx.fillText(word, Math.max(2, Math.min(x0 + 4, nowX - ctx.measureText(word).width - 4)), c.kind === "view-change" ? 22 : 10);
    }
    // lanes
    for (let n = 0; n < N; n++) {
      const y = laneY(n);
      for (const [a, b] of downs[n]) {
        if (b < left || a > now) continue;
        const x0 = Math.max(0, X(a)), x1 = Math.min(nowX, X(b));
        ctx.fillStyle = "rgba(62,76,89,0.18)"; ctx.fillRect(x0, y - laneH / 2, x1 - x0, laneH);
      }
      if (isByz[n]) { ctx.fillStyle = "rgba(200,30,75,0.05)"; ctx.fillRect(0, y - laneH / 2, nowX, laneH); }
      ctx.strokeStyle = isByz[n] ? "#e8a0b4" : "#cbd2d9"; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(nowX, y); ctx.stroke();
    }
    // time axis
    const step = niceStep(sp);
    ctx.fillStyle = "#7b8794"; ctx.font = "10px DejaVu Sans, sans-serif"; ctx.strokeStyle = "#eef0f3";
    for (let t = META.start + Math.ceil((left - META.start) / step) * step; t <= now; t += step) {
      const x = X(t);
      ctx.beginPath(); ctx.moveTo(x, TOP); ctx.lineTo(x, H); ctx.stroke();
      if (x > 30) ctx.fillText(((t - META.start) / 1000).toFixed(step < 1000 * 10 ? 1 : 0) + " ms", x + 2, H - 2);
    }
    // arrived messages and lane marks live on the off-screen layer, drawn once each
    if (offK !== k || offH !== H || now < offUntil || left < offOrigin || (now - offOrigin) * k > offW - 2) offRebuild(sp, k);
    else if (now > offUntil) offAdvance(now);
    const dx = Math.round((nowX + (offOrigin - now) * k) * dpr) / dpr;
    ctx.drawImage(off, dx, 0, offW, H);
    // messages in flight: a line from the send to where the message is now
    let lo = 0, hi = NM - 1; const from = now - maxFlight;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (TS[mid] < from) lo = mid + 1; else hi = mid - 1; }
    const heads = [], paths = [];
    for (let i = lo; i < NM && TS[i] <= now; i++) {
      if (END[i] <= now) continue;
      heads.push(i);
      const style = M.ty[i] * 2 + ((M.fg[i] & (F_EQ | F_DV)) !== 0 ? 1 : 0);
      const p = paths[style] || (paths[style] = new Path2D());
      const y0 = laneY(M.src[i] < 0 ? M.dst[i] : M.src[i]), y1 = laneY(M.dst[i]);
      const frac = TR[i] > TS[i] ? (now - TS[i]) / (TR[i] - TS[i]) : 1;
      p.moveTo(X(TS[i]), y0); p.lineTo(nowX, y0 + (y1 - y0) * frac);
    }
    strokeStyles(ctx, paths);
    // in-flight heads, labelled (labels only when there are few)
    ctx.font = "bold 10px DejaVu Sans, sans-serif";
    const labelAll = heads.length <= 24; // past that, only proposals and conflicting ones
    for (const i of heads) {
      const lost = (M.fg[i] & F_LOST) !== 0;
      const frac = (now - TS[i]) / Math.max(1, TR[i] - TS[i]);
      const y0 = laneY(M.src[i] < 0 ? M.dst[i] : M.src[i]), y1 = laneY(M.dst[i]);
      const x = nowX, y = y0 + (y1 - y0) * frac;
      const bad = (M.fg[i] & (F_EQ | F_DV)) !== 0;
      ctx.fillStyle = bad ? "#db2777" : COLORS[typeName(i)];
      ctx.beginPath(); ctx.arc(x, y, bad ? 5.5 : 4, 0, 6.2832); ctx.fill();
      if (lost) { ctx.strokeStyle = "#1f2933"; ctx.stroke(); }
      if (labelAll || bad || typeName(i) === "PrePrepare" || typeName(i) === "NewView") {
        const txt = SHORT[typeName(i)] + (M.p[i] >= 0 && (typeName(i) === "PrePrepare" || bad) ? " " + STR[M.p[i]] : "");
        ctx.fillText(txt, x + 7, y + 3);
      }
    }
    // now line
    ctx.strokeStyle = "#1f2933"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(nowX, TOP - 6); ctx.lineTo(nowX, H); ctx.stroke();
    ctx.fillStyle = "#1f2933"; ctx.font = "bold 10px DejaVu Sans, sans-serif";
    ctx.fillText("now", nowX + 3, TOP - 8 + 8);
    inflight = heads.length;
    const t1 = performance.now();
    updateDom(light);
    const t2 = performance.now();
    frameMs.push(t2 - t0); if (frameMs.length > 2000) frameMs.shift();
    canvasMs.push(t1 - t0); if (canvasMs.length > 2000) canvasMs.shift();
  }
  let inflight = 0;
  function drawMark(ctx, kind, x, y) {
    ctx.lineWidth = 1.5;
    if (kind === "prepared") { ctx.fillStyle = "#16a34a"; ctx.beginPath(); ctx.moveTo(x, y - 7); ctx.lineTo(x + 6, y); ctx.lineTo(x, y + 7); ctx.lineTo(x - 6, y); ctx.fill(); }
    else if (kind === "committed") { ctx.fillStyle = "#ea580c"; ctx.beginPath(); ctx.arc(x, y, 6.5, 0, 6.2832); ctx.fill(); ctx.fillStyle = "#fff"; ctx.fillRect(x - 1, y - 3.5, 2, 7); }
    else if (kind === "synced") { ctx.fillStyle = "#0891b2"; ctx.fillRect(x - 5, y - 5, 10, 10); }
    else if (kind === "timeout") { ctx.fillStyle = "#dc2626"; ctx.beginPath(); ctx.moveTo(x, y - 8); ctx.lineTo(x + 7, y + 5); ctx.lineTo(x - 7, y + 5); ctx.fill(); }
    else if (kind === "newview") { ctx.strokeStyle = "#9333ea"; ctx.lineWidth = 3; ctx.beginPath(); ctx.moveTo(x, y - laneH / 2 + 3); ctx.lineTo(x, y + laneH / 2 - 3); ctx.stroke(); }
    else if (kind === "crash" || kind === "stop") { ctx.strokeStyle = "#1f2933"; ctx.lineWidth = 3; ctx.beginPath(); ctx.moveTo(x - 7, y - 7); ctx.lineTo(x + 7, y + 7); ctx.moveTo(x - 7, y + 7); ctx.lineTo(x + 7, y - 7); ctx.stroke(); }
    else if (kind === "restart") { ctx.fillStyle = "#1f2933"; ctx.beginPath(); ctx.moveTo(x - 5, y - 6); ctx.lineTo(x + 6, y); ctx.lineTo(x - 5, y + 6); ctx.fill(); }
    else if (kind === "invalid") { ctx.strokeStyle = "#dc2626"; ctx.strokeRect(x - 4, y - 4, 8, 8); }
    else if (kind === "executed") { ctx.fillStyle = "#64748b"; ctx.fillRect(x - 2, y - 2, 4, 4); }
    else if (kind === "membership") { ctx.strokeStyle = "#0f766e"; ctx.strokeRect(x - 5, y - 5, 10, 10); }
  }

  // -- DOM parts: lanes, caption, log, chain, clock, timeline --------------------------
  let tlKey = "", chainKey = "", logKey = -2, capKey = "";
  const clockText = document.createTextNode(""), ffText = document.createTextNode("");
  $("clock").append(clockText);
  { const b = document.createElement("span"); b.className = "ff"; b.append(ffText); $("clock").append(b); }
  function majority() {
    const count = new Map(); let best = null, bc = 0;
    for (let n = 0; n < N; n++) {
      if (isByz[n]) continue;
      const s = stateAt(n, now); if (!s.up) continue;
      const key = s.v * 1e6 + s.h, c = (count.get(key) || 0) + 1; count.set(key, c);
      if (c > bc) { bc = c; best = s; }
    }
    return best || stateAt(0, now);
  }
  function bar(cls, count, need) {
    const pct = Math.min(100, need ? 100 * count / need : 0);
    return '<span class="bar ' + cls + (count >= need ? " full" : "") + '"><i style="width:' + pct + '%"></i></span>';
  }
  function updateDom(light) {
    const maj = majority(), lead = leaderOf(maj.v, maj.h);
    for (let n = 0; n < N; n++) {
      const s = stateAt(n, now), q = quorumAt(s.h), l = LANES[n];
      const observer = sealersAt(s.h).indexOf(n) < 0;
      const key = [s.h, s.v, s.phase, s.active, s.up, s.pc, s.cc, s.vc, n === lead, q, observer].join(",");
      if (key === laneEls[n].key) continue;
      laneEls[n].key = key;
      let tags = "";
      if (l.behaviour) tags += '<span class="tag byz">BYZANTINE: ' + esc(l.behaviour) + "</span>";
      if (!s.up) tags += '<span class="tag dn">DOWN</span>';
      if (n === lead && s.up) tags += '<span class="tag lead">leader</span>';
      if (observer) tags += '<span class="tag obs">observer</span>';
      const phaseWords = { "idle": "waiting", "pre-prepared": "got proposal", "executed": "executed, voted",
        "prepared": "PREPARED", "committed": "COMMITTED", "view-change": "VIEW CHANGE", "down": "down" };
      // the leader of its own (view, height) made the proposal it holds: it did not get one
      const phaseWord = s.phase === "pre-prepared" && leaderOf(s.v, s.h) === n ? "proposed" : phaseWords[s.phase];
      let q2;
      if (!s.active && s.up) {
        q2 = bar("v", s.vc, q) + " ViewChanges " + s.vc + " (quorum " + q + ")";
      } else {
        q2 = bar("p", s.pc, q) + " Prepare " + s.pc + "/" + q + " " + bar("c", s.cc, q) + " Commit " + s.cc + "/" + q;
      }
      laneEls[n].el.className = "lane" + (l.behaviour ? " byz" : "") + (s.up ? "" : " down");
      laneEls[n].el.innerHTML = '<div class="nm"><b>' + esc(l.name) + "</b> " + tags + "</div>" +
        '<div class="st">height ' + s.h + " &middot; view " + s.v + ' &middot; <span class="ph ph-' + s.phase + '">' + phaseWord + "</span></div>" +
        '<div class="q">' + q2 + "</div>";
    }
    // caption: the most important one holding now, else what the normal case does
    let cap = null;
    const rank = { equivocation: 4, "view-change": 3, fault: 2, membership: 1, sync: 0 };
    for (const c of CAPS) {
      if (!(c.t0 <= now && now < c.t1)) continue;
      // the big events first; among them the one that started last (it is what happens now)
      const big = rank[c.kind] >= 2, capBig = cap && rank[cap.kind] >= 2;
      if (!cap || (big && !capBig) || (big === capBig && (c.t0 > cap.t0 || (c.t0 === cap.t0 && rank[c.kind] > rank[cap.kind])))) cap = c;
    }
    const gap = gapAt(now);
    const capId = cap ? "c" + CAPS.indexOf(cap) : "n" + maj.h + "," + maj.v + "," + lead + "," + (gap ? 1 : 0);
    if (capId !== capKey) {
      capKey = capId;
      const q = quorumAt(maj.h);
      if (cap) {
        $("caption").className = cap.kind; $("capTitle").textContent = cap.title; $("capText").textContent = cap.text;
      } else if (gap) {
        $("caption").className = "normal"; $("capTitle").textContent = "Waiting";
        $("capText").textContent = "Nothing is sent for " + ((gap[1] - gap[0]) / 1000).toFixed(0) +
          " ms: every node waits (for transactions, or for its consensus timer to fire). This stretch plays fast-forward.";
      } else {
        $("caption").className = "normal";
        $("capTitle").textContent = "Height " + maj.h + ", view " + maj.v + ": the normal case";
        $("capText").textContent = "The leader, " + name(lead) + " = sealer (view + height) mod n, broadcasts its proposal (PrePrepare). " +
          "Each node executes it and broadcasts a Prepare for the result. A node holding " + quorumIs(maj.h) +
          " matching Prepares (its own included) is PREPARED: it saves that certificate, then broadcasts a Commit. " +
          "With " + q + " Commits it COMMITS the block, which joins the chain below. Any two quorums of " + q +
          " share an honest node, so two different blocks can never both commit.";
      }
    }
    if (light) return; // the text below is read, not watched: 15 updates a second will do
    // log
    const lk = lastAtOrBefore(LOG_T, now);
    if (lk !== logKey) {
      logKey = lk;
      const items = [];
      for (let j = lk; j >= 0 && items.length < 12; j--) {
        const [txt, cls] = logLine(j);
        items.push('<li class="' + cls + '"><span>' + ((LOG_T[j] - META.start) / 1000).toFixed(1) + "</span> " + esc(txt) + "</li>");
      }
      $("log").innerHTML = items.reverse().join("");
    }
    // chain
    let shown = 0, have = 0;
    for (const b of CHAIN) { if (b[1] > now) break; shown++; for (const t of b[5]) if (t <= now) have++; }
    const ck = shown + ":" + have;
    if (ck !== chainKey) {
      chainKey = ck;
      const parts = [];
      const firstShown = Math.max(0, shown - 14);
      if (firstShown > 0) parts.push('<span class="link">' + firstShown + " earlier blocks &#8230;</span>");
      for (let j = firstShown; j < shown; j++) {
        const b = CHAIN[j], nodesHave = new Set();
        for (let q = 0; q < b[5].length; q++) if (b[5][q] <= now) nodesHave.add(b[6][q]);
        let dots = "";
        for (let n = 0; n < N; n++) dots += nodesHave.has(n) ? "&#9679;" : '<span class="no">&#9679;</span>';
        if (j > firstShown) parts.push('<span class="link">&#8592;</span>');
        parts.push('<div class="blk' + (b[3] > 0 ? " vc" : "") + '" data-height="' + b[0] + '"><b>#' + b[0] + "</b> view " + b[3] +
          (b[4] >= 0 ? " &middot; " + esc(STR[b[4]]) : "") + "<br>block " + esc(STR[b[2]] || "").slice(0, 8) +
          (b[8] >= 0 ? " &middot; " + b[8] + " tx" + (b[8] === 1 ? "" : "s") : "") +
          '<br><span class="dots" title="nodes that have it">' + dots + "</span></div>");
      }
      $("chain").innerHTML = parts.join("") || '<span class="link">no block committed yet</span>';
    }
    // clock
    clockText.data = "t = " + ms(now) + (META.clock === "wall" ? " (wall)" : " (simulated)") +
      " \u00b7 " + inflight + " in flight";
    const ff = playing && gap ? " fast-forward (idle)" : "";
    if (ffText.data !== ff) ffText.data = ff;
    $("scrub").value = String(warp(now));
    drawTimeline();
  }
  // when each node was down: from its crash (or stop) mark to its next restart (or the end), the
  // grey timeline bars (a fault caption lasts only a moment)
  const DOWN = [];
  {
    const since = new Map();
    for (let j = 0; j < MK.t.length; j++) {
      const kind = MARKS[MK.k[j]], n = MK.n[j];
      if ((kind === "crash" || kind === "stop") && !since.has(n)) since.set(n, MK.t[j]);
      else if (kind === "restart" && since.has(n)) { DOWN.push([since.get(n), MK.t[j]]); since.delete(n); }
    }
    for (const t0 of since.values()) DOWN.push([t0, META.end]);
  }
  function drawTimeline() {
    const w = tlW, x = (t) => 4 + (w - 8) * warp(t) / Math.max(1, DISP_END);
    const key = w + ":" + Math.round(x(now));
    if (key === tlKey) return;
    tlKey = key;
    tctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    tctx.clearRect(0, 0, w, 34);
    tctx.fillStyle = "#e4e7eb"; tctx.fillRect(0, 12, w, 10);
    tctx.fillStyle = "#3e4c59";
    for (const [t0, t1] of DOWN) tctx.fillRect(x(t0), 17, Math.max(2, x(t1) - x(t0)), 5);
    for (const c of CAPS) {
      if (c.kind !== "view-change" && c.kind !== "equivocation") continue;
      tctx.fillStyle = c.kind === "view-change" ? "#dc2626" : "#db2777";
      tctx.fillRect(x(c.t0), c.kind === "view-change" ? 12 : 17, Math.max(2, x(c.t1) - x(c.t0)), 5);
    }
    tctx.fillStyle = "#52606d"; tctx.font = "9px DejaVu Sans, sans-serif";
    let lastLabel = -99;
    for (const [h, t] of D.heights) {
      const xx = x(t); tctx.fillRect(xx, 22, 1, 4);
      if (xx - lastLabel > 22) { tctx.fillText(String(h), xx - 2, 33); lastLabel = xx; }
    }
    tctx.fillText("height:", 0, 9);
    let lx = 60;  // a legend word only for what this run has
    for (const [show, colour, text] of [[D.newViews.length || CAPS.some((c) => c.kind === "view-change"), "#dc2626", "red: view change"],
      [CAPS.some((c) => c.kind === "equivocation"), "#db2777", "pink: equivocation"], [DOWN.length, "#3e4c59", "grey: a node down"]]) {
      if (!show) continue;
      tctx.fillStyle = colour; tctx.fillText(text, lx, 9); lx += 100;
    }
    tctx.fillStyle = "#1f2933"; tctx.fillRect(x(now) - 1, 8, 3, 20);
  }

  // -- hover ----------------------------------------------------------------------------
  const tip = $("tip");
  flow.addEventListener("mousemove", (e) => {
    const r = flow.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
    let best = -1, bd = 36;
    collectVisible();
    for (let k = 0; k < VIS.n; k++) {
      const x0 = VIS.x0[k], y0 = VIS.y0[k], x1 = VIS.x1[k], y1 = VIS.y1[k];
      const dx = x1 - x0, dy = y1 - y0, L2 = dx * dx + dy * dy;
      const u = L2 ? Math.max(0, Math.min(1, ((mx - x0) * dx + (my - y0) * dy) / L2)) : 0;
      const ex = x0 + u * dx - mx, ey = y0 + u * dy - my, d = ex * ex + ey * ey;
      if (d < bd) { bd = d; best = VIS.i[k]; }
    }
    // a lane mark under the pointer wins over a line passing by
    const sp = span(), nowX = W * 0.86, k = nowX / sp, left = now - sp;
    let mark = -1, md = 81;
    for (let j = lastAtOrBefore(MK.t, left) + 1; j < MK.t.length && MK.t[j] <= now; j++) {
      const ex = nowX + (MK.t[j] - now) * k - mx, ey = laneY(MK.n[j]) - my, d = ex * ex + ey * ey;
      if (d < md) { md = d; mark = j; }
    }
    if (best < 0 && mark < 0) { tip.hidden = true; return; }
    tip.innerHTML = mark >= 0 ? markTip(mark) : tipHtml(best);
    tip.hidden = false;
    const sx = e.clientX - $("stage").getBoundingClientRect().left;
    tip.style.left = Math.min(sx + 14, $("stage").clientWidth - 370) + "px";
    tip.style.top = (my + 14) + "px";
  });
  flow.addEventListener("mouseleave", () => { tip.hidden = true; });
  function markTip(j) {
    const kind = MARKS[MK.k[j]], words = { executed: "executed the proposal", invalid: "found the proposal INVALID (no vote)",
      prepared: "is PREPARED", committed: "COMMITS", synced: "got a block by sync", crash: "CRASHES", restart: "restarts",
      timeout: "view-change timer fired", newview: "enters a new view", membership: "sees a new sealer list",
      stop: "is STOPPED (a clean stop: stop-node or down)" };
    return "<b>" + esc(name(MK.n[j])) + "</b> " + (words[kind] || kind) + "<br>" +
      (MK.d[j] >= 0 ? esc(STR[MK.d[j]]) + "<br>" : "") + "at " + ms(MK.t[j]);
  }
  function tipHtml(i) {
    const f = M.fg[i], rows = [
      "<b>" + typeName(i) + "</b> from <b>" + esc(name(M.src[i])) + "</b> to <b>" + esc(name(M.dst[i])) + "</b>",
      "view " + M.v[i] + ", height " + M.h[i] + (M.p[i] >= 0 ? ", proposal " + esc(STR[M.p[i]]) : "") +
        (M.b[i] >= 0 ? ", block " + esc(STR[M.b[i]]) : ""),
      "sent " + ms(TS[i]) + (f & F_LOST ? ", never arrived" : ", received " + ms(TR[i]) + " (" + ((TR[i] - TS[i]) / 1000).toFixed(1) + " ms on the wire)"),
    ];
    if (M.x[i] >= 0) rows.push(esc(STR[M.x[i]]));
    if (f & F_EQ) rows.push('<span class="warn">EQUIVOCATION: the same sender sent a different proposal for this view and height to other nodes</span>');
    if (f & F_DV) rows.push('<span class="warn">DOUBLE VOTE: the same sender voted for another block in this view and height</span>');
    if (f & F_LOST) rows.push('<span class="warn">LOST on the way</span>');
    if (f & F_UNPAIRED) rows.push("(its send is not in the trace)");
    return rows.join("<br>");
  }

  // -- controls -------------------------------------------------------------------------
  function setPlaying(p) {
    playing = p; lastFrame = 0;
    $("play").innerHTML = p ? "&#10074;&#10074; pause" : "&#9654; play";
    if (p && !looping) { looping = true; requestAnimationFrame(frame); }
  }
  $("play").onclick = () => { if (!playing && now >= T1) seek(T0); setPlaying(!playing); };
  $("step").onclick = () => { setPlaying(false); seek(nextEvent(now)); draw(); };
  $("back").onclick = () => { setPlaying(false); seek(prevEvent(now)); draw(); };
  $("scrub").max = String(DISP_END);
  $("scrub").addEventListener("input", () => { seek(unwarp(Number($("scrub").value))); draw(); });
  tl.addEventListener("click", (e) => {
    const r = tl.getBoundingClientRect(), d = (e.clientX - r.left - 4) / Math.max(1, r.width - 8) * DISP_END;
    seek(unwarp(d)); draw();
  });
  function jumpHeight(h) {
    const row = D.heights.find((x) => x[0] === h), hs = D.heights;
    $("heightMsg").textContent = row ? "" : !hs.length ? "this run starts no height"
      : "no height " + h + " in this run: heights " + hs[0][0] + " to " + hs[hs.length - 1][0];
    if (!row) return false;
    setPlaying(false); seek(row[1]); draw(); return true;
  }
  function nextCaption(kind) {
    const c = CAPS.find((x) => x.kind === kind && x.t0 > now + 1);
    if (!c) return false;
    setPlaying(false); seek(c.t0); draw(); return true;
  }
  $("goHeight").onclick = () => jumpHeight(Number($("height").value));
  $("height").addEventListener("keydown", (e) => { if (e.key === "Enter") jumpHeight(Number($("height").value)); });
  $("nextVC").onclick = () => { if (!nextCaption("view-change")) flash($("nextVC")); };
  $("nextEq").onclick = () => { if (!nextCaption("equivocation")) flash($("nextEq")); };
  $("speed").onchange = $("window").onchange = () => draw();
  function flash(b) { b.textContent = b.textContent.replace(/ \(none later\)$/, "") + " (none later)"; }
  document.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
    if (e.key === " ") { e.preventDefault(); $("play").click(); }
    else if (e.key === "ArrowRight") $("step").click();
    else if (e.key === "ArrowLeft") $("back").click();
  });
  window.addEventListener("resize", () => { layout(); draw(); });

  const afterFrame = new MessageChannel();
  let frameStart = 0;
  afterFrame.port1.onmessage = () => {
    if (frameStart) { workMs.push(performance.now() - frameStart); if (workMs.length > 2000) workMs.shift(); frameStart = 0; }
  };
  let frames = 0, looping = false;
  function frame(ts) {
    if (!playing) { looping = false; lastRaf = 0; draw(false); return; } // no frames while paused
    frameStart = performance.now(); afterFrame.port2.postMessage(0);
    if (lastRaf) { rafGaps.push(ts - lastRaf); if (rafGaps.length > 2000) rafGaps.shift(); }
    lastRaf = ts;
    if (lastFrame) {
      const d = warp(now) + (ts - lastFrame) / 1000 * speed();
      seek(unwarp(d));
      if (now >= T1) setPlaying(false);
    }
    lastFrame = ts;
    draw(playing && (++frames & 3) !== 0);
    requestAnimationFrame(frame);
  }

  // -- what tests (and the curious) can ask the page -----------------------------------
  function pct(a, p) { if (!a.length) return null; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; }
  window.viz = {
    data: D, seek: (t) => { seek(t); draw(); }, now: () => now, start: T0, end: T1,
    play: () => setPlaying(true), pause: () => setPlaying(false), step: () => $("step").click(),
    jumpHeight, nextViewChange: () => nextCaption("view-change"),
    setSpeed: (v) => { const o = document.createElement("option"); o.value = String(v); o.textContent = v / 1000 + " ms / s"; $("speed").appendChild(o); $("speed").value = String(v); },
    visible: () => (collectVisible(), Array.from(VIS.i.subarray(0, VIS.n), (i) => ({ type: typeName(i), from: M.src[i], to: M.dst[i],
      view: M.v[i], height: M.h[i], sent: TS[i], received: TR[i], inFlight: TR[i] > now, flags: M.fg[i] }))),
    segments: () => (collectVisible(), Array.from({ length: VIS.n }, (_, k) => [VIS.x0[k], VIS.y0[k], VIS.x1[k], VIS.y1[k]])),
    markPoints: () => { // [x, y, kind] of the lane marks on screen, in canvas pixels
      const sp = span(), nowX = W * 0.86, k = nowX / sp, out = [];
      for (let j = lastAtOrBefore(MK.t, now - sp) + 1; j < MK.t.length && MK.t[j] <= now; j++) {
        out.push([nowX + (MK.t[j] - now) * k, laneY(MK.n[j]), MARKS[MK.k[j]]]);
      }
      return out;
    },
    frameStats: () => ({ frames: frameMs.length, drawMedianMs: pct(frameMs, 0.5), drawP95Ms: pct(frameMs, 0.95),
      drawMaxMs: frameMs.length ? Math.max(...frameMs) : null, canvasMedianMs: pct(canvasMs, 0.5), workMedianMs: pct(workMs, 0.5), workP95Ms: pct(workMs, 0.95), canvasP95Ms: pct(canvasMs, 0.95), rafMedianMs: pct(rafGaps, 0.5), rafP95Ms: pct(rafGaps, 0.95) }),
    resetStats: () => { frameMs.length = 0; workMs.length = 0; canvasMs.length = 0; rafGaps.length = 0; },
  };
  layout();
  draw(false);
})();
