"use strict";
// The attention explorer. It learns everything from the served export's
// metadata.json: which signature takes an input a browser can give (text,
// an image, a GIF), greedy or beam, and what the attention's axes mean.
// No library, nothing fetched from another host.
(() => {
  const $ = (id) => document.getElementById(id);
  const BROWSER_KINDS = ["text", "image", "video"]; // preferred in this order
  const FILE_TYPES = { image: "image/*", video: "image/gif" };

  // The API lives beside the page: the page is ROOT/ or ROOT/ui/<model>,
  // so it works behind a path prefix (KServe, a reverse proxy).
  const path = location.pathname;
  const uiAt = path.lastIndexOf("/ui/");
  const ROOT = uiAt >= 0 ? path.slice(0, uiAt)
    : path.endsWith("/ui") ? path.slice(0, -3) : path.replace(/\/[^/]*$/, "");
  const pathModel = (path.match(/\/ui\/([^/]+)\/?$/) || [])[1];

  const state = { metadata: null, signatures: {}, file: null, answer: null, chosen: 0,
                  frames: null, imageUrl: null, active: 0, reading: null };

  // ------------------------------------------------------------ server
  async function getJson(url, options) {
    let response;
    try {
      response = await fetch(ROOT + url, options);
    } catch (error) {
      throw new Error(`The server cannot be reached (${error.message}).`);
    }
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      const detail = body && body.error ? body.error : response.statusText;
      throw new Error(`The server answered ${response.status}: ${detail}`);
    }
    return body;
  }

  function showError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  function setStatus(text, name) {
    $("status").textContent = text;
    $("status").dataset.state = name;
  }

  function option(select, value, text) {
    const item = document.createElement("option");
    item.value = value;
    item.textContent = text;
    select.appendChild(item);
  }

  // ------------------------------------------------------------ choosing
  async function loadModels() {
    const { models } = await getJson("/ui/api/models");
    $("model").replaceChildren();
    for (const model of models) option($("model"), model.name, model.name);
    if (!models.length) throw new Error("The server has no model to show.");
    if (pathModel && models.some((m) => m.name === decodeURIComponent(pathModel))) {
      $("model").value = decodeURIComponent(pathModel);
    }
    state.models = models;
    await chooseModel();
  }

  async function chooseModel() {
    const model = state.models.find((m) => m.name === $("model").value);
    $("version").replaceChildren();
    for (const version of model.versions) option($("version"), version, String(version));
    await chooseVersion();
  }

  async function chooseVersion() {
    showError("");
    $("result").hidden = true;
    const name = encodeURIComponent($("model").value);
    state.metadata = await getJson(`/ui/api/models/${name}/metadata?version=${$("version").value}`);
    state.signatures = browserSignatures(state.metadata);
    $("decoding").replaceChildren();
    for (const decoding of ["greedy", "beam"]) {
      if (state.signatures[decoding]) option($("decoding"), decoding, decoding);
    }
    showInput();
  }

  // {greedy: {name, input, kind, spec}, beam: ...}: signatures with one input a browser gives.
  function browserSignatures(metadata) {
    const found = {};
    for (const [name, spec] of Object.entries(metadata.signatures || {})) {
      const inputs = Object.entries(spec.inputs || {});
      if (inputs.length !== 1 || !BROWSER_KINDS.includes(inputs[0][1].kind)) continue;
      const candidate = { name, input: inputs[0][0], kind: inputs[0][1].kind, spec };
      const current = found[spec.decoding];
      const rank = (c) => BROWSER_KINDS.indexOf(c.kind) * 2 + (c.name === metadata.default_signature ? 0 : 1);
      if (!current || rank(candidate) < rank(current)) found[spec.decoding] = candidate;
    }
    return found;
  }

  function showInput() {
    const signature = state.signatures.greedy || state.signatures.beam;
    const task = state.metadata.task || "unknown task";
    $("task-line").textContent = `Task: ${task.replace(/_/g, " ")}`;
    $("text-input").hidden = !signature || signature.kind !== "text";
    $("file-input").hidden = !signature || signature.kind === "text";
    $("unsupported").hidden = Boolean(signature);
    $("run").disabled = !signature;
    if (!signature) {
      const kinds = Object.values(state.metadata.signatures || {})
        .map((s) => Object.values(s.inputs || {}).map((i) => i.kind).join(" + "));
      $("unsupported").textContent = "This export takes no input a browser can give "
        + `(its signatures take ${[...new Set(kinds)].join("; ")}). `
        + "Use the keras-attention command line or the REST API.";
      return;
    }
    if (signature.kind !== "text") {
      $("file").accept = FILE_TYPES[signature.kind];
      $("file-prompt").textContent = signature.kind === "image"
        ? "Drop an image here, or choose one" : "Drop an animated GIF here, or choose one";
    }
  }

  // ------------------------------------------------------------ input
  async function takeFile(file) {
    showError("");
    state.file = file ? new Uint8Array(await file.arrayBuffer()) : null;
    state.frames = null;
    if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
    state.imageUrl = file ? URL.createObjectURL(file) : null;
    const preview = $("preview");
    preview.replaceChildren();
    if (!file) return;
    const image = document.createElement("img");
    image.src = state.imageUrl;
    image.alt = file.name;
    preview.appendChild(image);
  }

  function base64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  }

  async function run() {
    showError("");
    const signature = state.signatures[$("decoding").value];
    let value;
    if (signature.kind === "text") {
      value = $("source-text").value.trim();
      if (!value) return showError("Type a sentence first.");
    } else {
      await state.reading;  // a file just chosen may still be being read
      if (!state.file) return showError("Choose a file first.");
      value = { b64: base64(state.file) };
    }
    setStatus("Decoding…", "running");
    $("run").disabled = true;
    try {
      const name = encodeURIComponent($("model").value);
      const answer = await getJson(
        `/v1/models/${name}/versions/${$("version").value}:predict`,
        { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ signature_name: signature.name,
                                 instances: [{ [signature.input]: value }] }) });
      if (signature.kind === "video" && !state.frames) state.frames = await gifFrames(state.file);
      state.answer = hypotheses(answer.predictions[0], signature.spec);
      state.chosen = 0;
      state.active = 0;
      render(signature);
      setStatus(`${signature.name}: ${state.answer.length} answer(s)`, "done");
    } catch (error) {
      showError(error.message);
      setStatus("", "failed");
    } finally {
      $("run").disabled = false;
    }
  }

  // The GIF's frames, where the browser decodes them (WebCodecs); null elsewhere.
  async function gifFrames(bytes) {
    if (!("ImageDecoder" in window)) return null;
    try {
      const decoder = new ImageDecoder({ data: bytes, type: "image/gif" });
      await decoder.tracks.ready;
      const frames = [];
      for (let i = 0; i < decoder.tracks.selectedTrack.frameCount; i++) {
        frames.push((await decoder.decode({ frameIndex: i })).image);
      }
      return frames;
    } catch (_) {
      return null;
    }
  }

  // ------------------------------------------------------------ the answer
  // One entry per hypothesis: text, tokens, score and attention cut to the
  // row's own extents (metadata: axis_lengths name the output holding each).
  function hypotheses(row, spec) {
    const axes = spec.output_axes.attention;
    const beam = axes.includes("hypothesis");
    const after = axes.slice(axes.indexOf("output_token") + 1);
    const pick = (name, n) => (beam && spec.output_axes[name].includes("hypothesis") ? row[name][n] : row[name]);
    const count = beam ? row.text.length : 1;
    const answers = [];
    for (let n = 0; n < count; n++) {
      const length = pick("length", n);
      let attention = pick("attention", n).slice(0, length);
      const extents = after.map((axis) => {
        const holder = (spec.axis_lengths || {})[axis];
        return holder !== undefined && row[holder] !== undefined ? pick(holder, n) : null;
      });
      if (after.length === 1 && extents[0] !== null) {
        attention = attention.map((weights) => weights.slice(0, extents[0]));
      }
      answers.push({ text: pick("text", n), tokens: pick("tokens", n).slice(0, length),
                     score: pick("score", n), attention, axes: after,
                     labels: axisLabels(row, spec, after, n, extents) });
    }
    return answers;
  }

  // Names along the first attention axis: an output of strings with that
  // axis (translation: source_tokens), else the axis' name and position.
  function axisLabels(row, spec, after, n, extents) {
    if (after.length !== 1) return null;
    for (const [name, axes] of Object.entries(spec.output_axes)) {
      const wanted = axes.filter((a) => a !== "hypothesis");
      const info = (spec.outputs || {})[name] || {};
      if (wanted.length === 2 && wanted[1] === after[0] && info.dtype === "string") {
        const values = axes.includes("hypothesis") ? row[name][n] : row[name];
        return extents[0] === null ? values : values.slice(0, extents[0]);
      }
    }
    return null;
  }

  function render(signature) {
    const answers = state.answer;
    $("result").hidden = false;
    const list = $("hypotheses");
    list.replaceChildren();
    answers.forEach((answer, n) => {
      const item = document.createElement("li");
      item.tabIndex = 0;
      item.dataset.index = n;
      item.className = n === state.chosen ? "chosen" : "";
      item.append(answer.text || "(empty)");
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = `score ${Number(answer.score).toFixed(3)}`;
      item.appendChild(score);
      const choose = () => { state.chosen = n; state.active = 0; render(signature); };
      item.addEventListener("click", choose);
      item.addEventListener("keydown", (event) => { if (event.key === "Enter") choose(); });
      list.appendChild(item);
    });
    const answer = answers[state.chosen];
    const tokens = $("output-tokens");
    tokens.replaceChildren();
    answer.tokens.forEach((token, t) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "token";
      button.dataset.index = t;
      button.textContent = token || "∅";
      button.addEventListener("mouseenter", () => activate(t));
      button.addEventListener("focus", () => activate(t));
      tokens.appendChild(button);
    });
    const view = $("attention-view");
    view.replaceChildren();
    if (answer.axes.length === 1) {
      if (signature.kind === "video" && state.frames) view.appendChild(frameStrip(answer));
      view.appendChild(heatmap(answer));
    } else if (answer.axes.length === 2 && signature.kind === "image") {
      view.appendChild(overlay(answer, answer.attention[0], "overlay", 256));
      const maps = document.createElement("div");
      maps.id = "word-maps";
      answer.attention.forEach((grid, t) => {
        const figure = document.createElement("figure");
        figure.dataset.index = t;
        figure.appendChild(overlay(answer, grid, null, 96));
        const caption = document.createElement("figcaption");
        caption.textContent = answer.tokens[t] || "∅";
        figure.appendChild(caption);
        maps.appendChild(figure);
      });
      view.appendChild(maps);
    } else {
      const note = document.createElement("p");
      note.textContent = `Attention axes: ${answer.axes.join(", ")}; no picture for these.`;
      view.appendChild(note);
    }
    if (answer.tokens.length) activate(Math.min(state.active, answer.tokens.length - 1));
  }

  // Attention weights lie in [0, 1]; the square root keeps a spread-out
  // row (0.1 each) visible next to a peaked one.
  function shade(weight) {
    return `rgba(255, 111, 0, ${Math.sqrt(Math.max(0, weight)).toFixed(3)})`;
  }

  function heatmap(answer) {
    const table = document.createElement("table");
    table.id = "heatmap";
    table.className = "heatmap";
    const head = table.createTHead().insertRow();
    head.appendChild(document.createElement("th"));
    const columns = answer.attention.length ? answer.attention[0].length : 0;
    for (let s = 0; s < columns; s++) {
      const th = document.createElement("th");
      th.className = "source";
      th.dataset.index = s;
      th.tabIndex = 0;
      th.textContent = answer.labels ? answer.labels[s] : `${answer.axes[0]} ${s + 1}`;
      th.addEventListener("mouseenter", () => highlightColumn(s));
      th.addEventListener("focus", () => highlightColumn(s));
      head.appendChild(th);
    }
    const body = table.createTBody();
    answer.attention.forEach((weights, t) => {
      const row = body.insertRow();
      row.dataset.row = t;
      const th = document.createElement("th");
      th.textContent = answer.tokens[t] || "∅";
      row.appendChild(th);
      weights.forEach((weight, s) => {
        const cell = row.insertCell();
        cell.className = "cell";
        cell.dataset.weight = weight;
        cell.title = `${answer.tokens[t] || "∅"} ← ${answer.labels ? answer.labels[s] : s + 1}: ${weight.toFixed(3)}`;
        cell.style.background = shade(weight);
      });
    });
    return table;
  }

  // Where every output word looked at source position s (the reverse view).
  function highlightColumn(s) {
    const answer = state.answer[state.chosen];
    document.querySelectorAll("#output-tokens .token").forEach((button, t) => {
      button.style.background = shade(answer.attention[t][s]);
    });
    document.querySelectorAll("#heatmap th.source").forEach((th) => {
      th.classList.toggle("active", Number(th.dataset.index) === s);
    });
  }

  function overlay(answer, grid, id, size) {
    const box = document.createElement("div");
    box.className = "map";
    if (id) box.id = id;
    const image = document.createElement("img");
    image.src = state.imageUrl;
    image.alt = "";
    image.width = size;
    image.height = size;
    box.appendChild(image);
    const cells = document.createElement("div");
    cells.className = "grid";
    cells.style.gridTemplateRows = `repeat(${grid.length}, 1fr)`;
    cells.style.gridTemplateColumns = `repeat(${grid[0].length}, 1fr)`;
    fillGrid(cells, grid);
    box.appendChild(cells);
    return box;
  }

  function fillGrid(cells, grid) {
    const most = Math.max(0, ...grid.flat());
    cells.replaceChildren();
    grid.forEach((row, r) => row.forEach((weight, c) => {
      const cell = document.createElement("div");
      cell.dataset.row = r;
      cell.dataset.column = c;
      cell.dataset.weight = weight;
      // Relative to the map's peak, squared: a diffuse map still shows where it peaks.
      cell.style.opacity = (most > 0 ? 0.8 * (weight / most) ** 2 : 0).toFixed(3);
      cells.appendChild(cell);
    }));
  }

  function frameStrip(answer) {
    const strip = document.createElement("div");
    strip.id = "frame-strip";
    strip.className = "frames";
    const count = Math.min(state.frames.length, answer.attention[0] ? answer.attention[0].length : 0);
    for (let f = 0; f < count; f++) {
      const frame = document.createElement("div");
      frame.className = "frame";
      frame.dataset.index = f;
      const canvas = document.createElement("canvas");
      const source = state.frames[f];
      canvas.width = source.displayWidth;
      canvas.height = source.displayHeight;
      canvas.getContext("2d").drawImage(source, 0, 0);
      frame.appendChild(canvas);
      const bar = document.createElement("div");
      bar.className = "bar";
      frame.appendChild(bar);
      const label = document.createElement("span");
      label.textContent = `frame ${f + 1}`;
      frame.appendChild(label);
      strip.appendChild(frame);
    }
    return strip;
  }

  // Point at output word t: its row, its source words, its map or frames.
  function activate(t) {
    state.active = t;
    const answer = state.answer[state.chosen];
    const weights = answer.attention[t];
    document.querySelectorAll("#output-tokens .token").forEach((button, i) => {
      button.classList.toggle("active", i === t);
      button.style.background = "";
    });
    document.querySelectorAll("#heatmap tbody tr").forEach((row, i) => {
      row.classList.toggle("active", i === t);
    });
    if (answer.axes.length === 1) {
      const most = Math.max(0, ...weights);
      document.querySelectorAll("#heatmap th.source").forEach((th, s) => {
        th.classList.remove("active");
        th.style.background = shade(weights[s]);
      });
      document.querySelectorAll("#frame-strip .frame").forEach((frame, f) => {
        frame.dataset.weight = weights[f];
        frame.querySelector(".bar").style.width = `${most > 0 ? 100 * weights[f] / most : 0}%`;
        frame.querySelector("canvas").style.opacity = most > 0 ? 0.25 + 0.75 * weights[f] / most : 1;
      });
    }
    const main = document.querySelector("#overlay .grid");
    if (main) {
      main.dataset.index = t;
      fillGrid(main, weights);
    }
    document.querySelectorAll("#word-maps figure").forEach((figure, i) => {
      figure.classList.toggle("active", i === t);
    });
  }

  // ------------------------------------------------------------ wiring
  function wire() {
    const load = (step) => {
      setStatus("Loading…", "loading");
      step().then(() => setStatus("", "ready")).catch((error) => {
        showError(error.message);
        setStatus("", "failed");
      });
    };
    $("model").addEventListener("change", () => load(chooseModel));
    $("version").addEventListener("change", () => load(chooseVersion));
    $("run").addEventListener("click", run);
    $("source-text").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) run();
    });
    $("file").addEventListener("change", () => { state.reading = takeFile($("file").files[0]); });
    const zone = $("drop-zone");
    zone.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("file").click(); }
    });
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (event.dataTransfer.files.length) state.reading = takeFile(event.dataTransfer.files[0]);
    });
  }

  wire();
  loadModels().then(() => setStatus("", "ready")).catch((error) => {
    showError(error.message);
    setStatus("", "failed");
  });
})();
