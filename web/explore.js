// GAN Atelier, Explore: the generator runs in the page (onnxruntime-web, WASM backend).
//
// The server stays the source of truth: it renders the first picture, every picture until the
// model is loaded here, and every download. Gradio hands this module, through `js=` event
// handlers and two hidden gr.JSON values, what it needs: the model (its ONNX URL, directions) and
// the current latent z (torch's random numbers cannot be reproduced in JavaScript, so z always
// comes from the server). Once the model is loaded, a slider move is drawn into a canvas laid
// over the server's picture without any request; one request follows when the sliders rest,
// so the picture, the recipe and the downloads on the server catch up (byte-exact server renders).
// Only the latest slider value is drawn while a render is in flight.

const POLL_MS = 1000;        // while the server is still exporting the model, ask again this often
const POLL_TRIES = 240;
const FIRST_PICTURE_WAIT_MS = 15000;

const sessions = new Map();  // model key -> Promise<InferenceSession | null>
const live = new Map();      // model key -> InferenceSession, once loaded
const views = new Map();     // view name -> view state
let ortModule = null;
let models = {};             // model key -> description from the server
let current = null;          // key of the model the picture shows
let rawEdits = null;         // {key, map}: raw-z edits of every page (index -> delta), as the page knows them
const wasmOk = typeof WebAssembly === "object" && typeof WebAssembly.instantiate === "function";

const api = {
  forceServer: false,  // the benchmark's switch: measure the server path in the same page
  settleMs: 250,       // quiet time after the last slider move before the server renders it too
  frames: [],          // {view, inputAt, drawnAt, where} of every slider move ("page": drawnAt set)
  log: [],
  input, latent, model, status,
};
window.atelierExplore = api;

function note(message) {
  api.log.push(message);
  console.info(`[atelier] ${message}`);
}

function say(text) {
  // The line under the picture that tells where slider moves are drawn (ui/explore_page.py).
  const line = document.getElementById("explore-page-status-text");
  if (line) line.textContent = text;
}

function describe(info) {
  if (!wasmOk) return "Your browser lacks WebAssembly: slider moves are rendered on the server.";
  if (info.status === "refused") return `This model is rendered on the server only: ${info.reason}`;
  if (!info.runtime) return "Slider moves are rendered on the server (the in-browser runtime is not available here).";
  return live.has(info.key) ? "Slider moves are drawn in your browser; the server renders the picture you "
                              + "download once the sliders rest."
                            : "Slider moves are rendered on the server while the model loads into your browser…";
}

function ready(view) {
  // Whether the next move of this view can be drawn here: its latent (and the scrub's seeds) known, model loaded.
  const values = view.lastValues, key = values && values.latent && values.latent.key;
  if (!key || !live.has(key) || !values.latent.z) return false;
  return view.name !== "scrub" || Boolean(values.ends && values.ends.end_z && values.ends.key === key);
}

function status() {
  return {wasm: wasmOk, models: Object.fromEntries([...sessions.keys()].map((k) => [k, live.has(k)])),
          views: Object.fromEntries([...views].map(([n, v]) => [n, {drawn: v.drawn, shown: v.shown,
                                                                     ready: ready(v), idle: !v.busy && !v.pending}]))};
}

function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

function absolute(url) { return new URL(url, document.baseURI).href; }

async function runtime(url) {
  if (!ortModule) {
    ortModule = import(absolute(url)).then((ort) => {
      ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which Gradio pages lack
      ort.env.wasm.wasmPaths = new URL("./", absolute(url)).href;
      return ort;
    });
  }
  return ortModule;
}

async function fetchModel(url) {
  for (let i = 0; i < POLL_TRIES; i++) {
    const response = await fetch(absolute(url));
    if (response.ok) return new Uint8Array(await response.arrayBuffer());
    if (response.status !== 404 && response.status !== 403) throw new Error(`HTTP ${response.status}`);
    await sleep(POLL_MS);  // not exported yet
  }
  throw new Error("the model was not exported in time");
}

async function firstPicture() {
  // Load nothing before the server's first picture is on screen: it must not wait for megabytes.
  const deadline = performance.now() + FIRST_PICTURE_WAIT_MS;
  while (performance.now() < deadline) {
    const img = document.querySelector("#explore-picture img");
    if (img && img.complete && img.naturalWidth > 0) return;
    await sleep(100);
  }
}

function load(info) {
  if (!wasmOk || !info || !info.url || !info.runtime || info.status === "refused") return null;
  if (!sessions.has(info.key)) {
    const started = performance.now();
    sessions.set(info.key, (async () => {
      try {
        await firstPicture();
        const [ort, bytes] = await Promise.all([runtime(info.runtime), fetchModel(info.url)]);
        const session = await ort.InferenceSession.create(bytes, {executionProviders: ["wasm"],
                                                                  graphOptimizationLevel: "all"});
        live.set(info.key, {session, ort});
        note(`model ${info.model} renders in the page (loaded in ${Math.round(performance.now() - started)} ms)`);
        if (current === info.key) say(describe(info));
        for (const view of views.values()) if (view.lastValues) request(view, view.lastValues, null);
        return session;
      } catch (err) {
        note(`model ${info.model} stays on the server: ${err}`);
        if (current === info.key) say(`Slider moves are rendered on the server (the model could not load here: ${err}).`);
        return null;
      }
    })());
  }
  return sessions.get(info.key);
}

// --- latent arithmetic, as gan/explorer/latent.py does it in float32 ---

function applyEdits(base, values, info) {
  const nz = info.nz, psi = Number(values.truncation), out = new Float32Array(nz);
  const dirs = values.directions, U = info.directions;
  const edits = mergedRaw(values, nz);
  for (let i = 0; i < nz; i++) {
    let v = psi === 1 ? base[i] : Math.fround(base[i] * psi);
    let d = 0;
    for (let j = 0; j < Math.min(dirs.length, U.length); j++) d += Number(dirs[j]) * U[j][i];
    v = Math.fround(v + Math.fround(d));
    if (edits.has(i)) v = Math.fround(v + edits.get(i));
    out[i] = v;
  }
  return out;
}

function serverEdits(latent) {
  return {key: latent.key, map: new Map(Object.entries(latent.edits || {}).map(([i, v]) => [Number(i), Number(v)]))};
}

function mergedRaw(values, nz) {
  // latent.merge_raw_edits: the edits of every page (the server's when it last set the picture, then
  // every move made here), with this page's sliders written in.
  if (!rawEdits || rawEdits.key !== values.latent.key) rawEdits = serverEdits(values.latent);
  const edits = rawEdits.map, first = Number(values.page || 0);
  values.raw.forEach((value, j) => {
    if (first + j >= nz) return;
    edits.delete(first + j);
    if (Number(value)) edits.set(first + j, Number(value));
  });
  return edits;
}

function slerp(a, b, t, method) {
  const out = new Float32Array(a.length);
  let na = 0, nb = 0, dot = 0;
  for (let i = 0; i < a.length; i++) { na += a[i] * a[i]; nb += b[i] * b[i]; dot += a[i] * b[i]; }
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / Math.sqrt(na * nb))));
  const so = Math.sin(omega);
  const lerp = method !== "slerp" || Math.abs(so) < 1e-6;
  const wa = lerp ? 1 - t : Math.sin((1 - t) * omega) / so, wb = lerp ? t : Math.sin(t * omega) / so;
  for (let i = 0; i < a.length; i++) out[i] = lerp ? a[i] + (b[i] - a[i]) * t : wa * a[i] + wb * b[i];
  return out;
}

function latentFor(view, values) {
  // The edited latent the view shows, or null when the page lacks what it needs.
  const info = models[values.latent && values.latent.key];
  if (!info || !values.latent.z || values.latent.z.length !== info.nz) return null;
  const current = applyEdits(values.latent.z, values, info);
  if (view.name !== "scrub") return {info, z: current};
  const ends = values.ends;
  if (!ends || !ends.end_z || ends.key !== info.key) return null;
  const t = Number(values.t);
  const start = ends.start_z ? applyEdits(ends.start_z, values, info) : current;
  const plain = Float32Array.from(ends.end_z, (v) => Number(values.truncation) === 1 ? v : Math.fround(v * values.truncation));
  const end = values.keep ? applyEdits(ends.end_z, values, info) : plain;
  return {info, z: t <= 0 ? start : t >= 1 ? end : slerp(start, end, t, values.method)};
}

// --- drawing ---

function overlay(view) {
  const img = document.querySelector(`#${view.imageId} img`);
  if (!img) return null;
  if (!view.canvas) {
    view.canvas = document.createElement("canvas");
    view.canvas.className = "atelier-page-render";
    view.canvas.dataset.view = view.name;
    Object.assign(view.canvas.style, {position: "absolute", pointerEvents: "none", objectFit: "contain"});
    // The picture's box settles after the first draw (the column fills in, the image frame resizes), so the
    // canvas follows the picture whenever either changes size instead of keeping its first placement.
    view.observer = new ResizeObserver(() => place(view));
  }
  const canvas = view.canvas;
  if (canvas.previousElementSibling !== img) img.insertAdjacentElement("afterend", canvas);
  const frame = img.parentElement;
  if (getComputedStyle(frame).position === "static") frame.style.position = "relative";
  if (view.observed !== img) {
    view.observer.disconnect();
    view.observer.observe(img);
    view.observer.observe(frame);
    view.observed = img;
  }
  place(view);
  return canvas;
}

function place(view) {
  const canvas = view.canvas, img = canvas && canvas.previousElementSibling;
  if (!img || img.tagName !== "IMG") return;
  Object.assign(canvas.style, {left: `${img.offsetLeft}px`, top: `${img.offsetTop}px`,
                               width: `${img.offsetWidth}px`, height: `${img.offsetHeight}px`});
}

function show(view, visible) {
  if (view.canvas) view.canvas.style.visibility = visible ? "visible" : "hidden";
  view.shown = visible;
}

function draw(view, job, data) {
  const {info} = job, size = info.image_size, n = size * size;
  if (!view.small) view.small = document.createElement("canvas");
  view.small.width = size;
  view.small.height = size;
  const ctx = view.small.getContext("2d");
  const pixels = ctx.createImageData(size, size), rgba = pixels.data;
  const g = info.nc === 3 ? n : 0, b = info.nc === 3 ? 2 * n : 0;
  for (let i = 0; i < n; i++) {  // planar (C, H, W) floats 0..255 -> interleaved RGBA bytes
    rgba[4 * i] = data[i];
    rgba[4 * i + 1] = data[g + i];
    rgba[4 * i + 2] = data[b + i];
    rgba[4 * i + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
  const canvas = overlay(view);
  if (!canvas) return false;
  const display = Number(job.size) || size;
  if (canvas.width !== display) { canvas.width = display; canvas.height = display; }
  const out = canvas.getContext("2d");
  out.imageSmoothingEnabled = job.upscale !== "nearest";
  out.imageSmoothingQuality = "high";
  out.drawImage(view.small, 0, 0, display, display);
  canvas.style.imageRendering = job.upscale === "nearest" ? "pixelated" : "auto";
  show(view, true);
  return true;
}

async function pump(view) {
  view.busy = true;
  try {
    while (view.pending) {
      const job = view.pending;
      view.pending = null;
      const engine = live.get(job.info.key);
      if (!engine) continue;
      const z = new engine.ort.Tensor("float32", job.z, [1, job.info.nz]);
      const out = await engine.session.run({z});
      const image = out[engine.session.outputNames[0]];
      if (draw(view, job, image.data)) {
        view.drawn += 1;
        view.shownKey = job.key;
        api.frames.push({view: view.name, inputAt: job.inputAt, drawnAt: performance.now(), where: "page"});
      }
    }
  } catch (err) {
    note(`in-page render failed, back to the server: ${err}`);
    show(view, false);
  } finally {
    view.busy = false;
  }
}

function request(view, values, inputAt) {
  // Draw `values` in the page if possible (true), else leave the picture to the server (false).
  view.lastValues = values;
  const target = api.forceServer ? null : latentFor(view, values);
  if (!target || !live.has(target.info.key)) {
    if (target) load(target.info);
    show(view, false);
    return false;
  }
  const key = `${target.info.key}|${values.size}|${values.upscale}|${target.z.join(",")}`;
  if (key === view.shownKey && view.shown && !view.pending) return true;
  view.pending = {key, info: target.info, z: target.z, size: values.size, upscale: values.upscale,
                  inputAt: inputAt ?? performance.now()};
  if (!view.busy) pump(view);
  return true;
}

function viewFor(name, imageId, syncId) {
  if (!views.has(name)) {
    views.set(name, {name, imageId, syncId, busy: false, pending: null, drawn: 0, shown: false,
                     shownKey: null, canvas: null, observer: null, observed: null, small: null, timer: null, lastValues: null});
  }
  return views.get(name);
}

function clickSync(view) {
  clearTimeout(view.timer);
  view.timer = null;
  const button = document.getElementById(view.syncId);
  if (button) button.click();
}

// --- what Gradio's event handlers call ---

function input(name, imageId, syncId, values, settle) {
  // A slider moved: draw it here, or ask the server now (the fallback). `settle`: after the
  // sliders rest, let the server render once too (the recipe and downloads follow).
  const inputAt = performance.now();
  const view = viewFor(name, imageId, syncId);
  model(values.model);
  if (!request(view, values, inputAt)) {
    api.frames.push({view: name, inputAt, drawnAt: null, where: "server"});
    clickSync(view);
    return;
  }
  if (settle) {
    clearTimeout(view.timer);
    view.timer = setTimeout(() => clickSync(view), api.settleMs);
  }
}

function latent(name, imageId, syncId, values) {
  // The server drew a picture (start, seed, reset, recipe, model, projection): show the same here.
  const view = viewFor(name, imageId, syncId);
  model(values.model);
  if (name === "main" && values.latent && values.latent.key) rawEdits = serverEdits(values.latent);
  request(view, values, null);
}

function model(info) {
  if (!info || !info.key) return;
  models[info.key] = info;
  if (current !== info.key) {
    current = info.key;
    say(describe(info));
  }
  load(info);
}
