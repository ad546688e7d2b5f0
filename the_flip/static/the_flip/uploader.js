// Uploads from the page with a real progress bar (resumable: tus, below), then follows each
// video until it plays.
// Plain JavaScript, no framework: one tile per file, swapped in place for the server's own
// rendering of it (GET /api/media/<id>/tile/, the template the page itself uses). What may be
// uploaded comes from the server too: the file input's data-upload-rules (uploads.py).
(function () {
  "use strict";

  const POLL_MS = 1500;

  function rulesOf(input) {
    return JSON.parse(input.dataset.uploadRules);
  }

  function csrfToken() {
    const input = document.querySelector("[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => node.setAttribute(key, value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function problemWith(file, rules) {
    const say = (sentence) => sentence.replace("{name}", file.name);
    const ext = (file.name.split(".").pop() || "").toLowerCase();
    if (!rules.extensions.includes(ext)) return say(rules.messages.not_accepted);
    if (file.size > rules.max_bytes) return say(rules.messages.too_large);
    if (file.size === 0) return say(rules.messages.empty);
    return null;
  }

  function newTile(grid, name) {
    const tile = el("figure", { class: "tile", "data-status": "uploading" });
    tile.append(el("div", { class: "state uploading", role: "status" }, `Uploading ${name}… 0%`));
    tile.append(el("progress", { max: "100", value: "0", "aria-label": `Upload of ${name}` }));
    tile.append(el("figcaption", { class: "tile-actions" }));
    grid.append(tile);
    return tile;
  }

  function setBody(tile, ...nodes) {
    const bar = tile.querySelector(".tile-actions");
    Array.from(tile.children).forEach((n) => { if (n !== bar) n.remove(); });
    bar.before(...nodes);
  }

  function actions(tile, media) {
    const bar = tile.querySelector(".tile-actions");
    // Polling re-renders a tile every few seconds: keep the buttons (and an armed Remove)
    // unless what they should be has changed.
    const key = media ? `${media.status}:${media.kind}` : "none";
    if (tile._actionsKey === key) return;
    tile._actionsKey = key;
    bar.replaceChildren();
    if (!media) {
      const dismiss = el("button", { type: "button", class: "small-button" }, "Dismiss");
      dismiss.addEventListener("click", () => tile.remove());
      bar.append(dismiss);
      return;
    }
    if (media.status === "failed" && media.kind === "video") {
      const retry = el("button", { type: "button", class: "small-button" }, "Try again");
      retry.addEventListener("click", () => send("POST", media.url + "retry/", tile, retry));
      bar.append(retry);
    }
    // Any state, so a wrong video need not be waited for: the worker drops a deleted one.
    // Two taps (the first arms it for a few seconds), so a stray tap deletes nothing.
    const remove = el("button", { type: "button", class: "small-button danger" }, "Remove");
    remove.addEventListener("click", () => {
      if (remove.dataset.armed) return send("DELETE", media.url, tile, remove);
      remove.dataset.armed = "1";
      remove.textContent = "Tap again to remove";
      setTimeout(() => {
        delete remove.dataset.armed;
        if (!remove.disabled) remove.textContent = "Remove";
      }, 4000);
    });
    bar.append(remove);
  }

  // Swap in the server's rendering of the tile (keeping its buttons), then keep following
  // it while the video waits or processes.
  async function follow(tile) {
    try {
      const response = await fetch(tile.dataset.mediaUrl + "tile/", { headers: { Accept: "text/html" } });
      if (response.status === 404) return tile.remove();
      if (!response.ok) throw new Error(response.status);
      const html = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = html.querySelector(".tile");
      Object.assign(tile.dataset, fresh.dataset);
      setBody(tile, ...Array.from(fresh.children).filter((n) => !n.matches(".tile-actions")));
    } catch (err) {
      return poll(tile); // a network blip on weak Wi-Fi: keep trying
    }
    const status = tile.dataset.status;
    actions(tile, { status, kind: tile.dataset.kind, url: tile.dataset.mediaUrl });
    if (status === "pending" || status === "processing") poll(tile);
  }

  function poll(tile) {
    clearTimeout(tile._pollTimer);
    tile._pollTimer = setTimeout(() => { if (tile.isConnected) follow(tile); }, POLL_MS);
  }

  function fail(tile, message) {
    tile.dataset.status = "rejected";
    setBody(tile, el("div", { class: "state failed", role: "alert" }, message));
    actions(tile, null);
  }

  async function send(method, url, tile, button) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = method === "DELETE" ? "Removing…" : "Trying again…";
    let response = null;
    let body = {};
    try {
      response = await fetch(url, { method, headers: { "X-CSRFToken": csrfToken() } });
      body = await response.json().catch(() => ({}));
    } catch (err) { /* offline: say so below, keep the tile as it was */ }
    if (response && response.ok) {
      if (method === "DELETE") return tile.remove();
      return follow(tile);
    }
    if (response && response.status === 404) return tile.remove(); // already gone
    button.disabled = false;
    button.textContent = label;
    delete button.dataset.armed;
    alert((body && body.error) || "That did not work. Check the connection and try again.");
  }

  // --- Resumable uploads (tus 1.0.0, served by maintenance/tus.py) ---------------------
  // Each file goes in chunks of rules.chunk_bytes. When the connection drops, the page waits
  // (with backoff, or until the browser says it is online again), asks the server how much
  // it really stored (HEAD) and goes on from there. The upload's URL is remembered per file
  // (name, size, date) in localStorage, so after a reload the same file, picked again,
  // resumes too: a browser cannot keep the file itself across a reload.

  const TUS_HEADERS = { "Tus-Resumable": "1.0.0" };
  const RETRY_MS = [1000, 2000, 4000, 8000, 15000, 30000];
  const STORE_PREFIX = "the_flip.tus:";
  const inFlight = new Set();

  // Taking the network away leaves a request hanging until it times out; drop it at once.
  window.addEventListener("offline", () => inFlight.forEach((xhr) => xhr.abort()));

  function storeKey(endpoint, file) {
    return `${STORE_PREFIX}${endpoint}:${file.name}:${file.size}:${file.lastModified}`;
  }
  function recall(key) {
    try { return JSON.parse(localStorage.getItem(key)); } catch (err) { return null; }
  }
  function remember(key, value) {
    try { localStorage.setItem(key, JSON.stringify(value)); } catch (err) { /* private mode */ }
  }
  function forget(key) {
    try { localStorage.removeItem(key); } catch (err) { /* private mode */ }
  }

  function b64(text) {
    return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  }

  class Retryable extends Error {}

  // One tus request. Resolves with {status, header(), error} for any HTTP answer; rejects
  // with Retryable when there was none (offline, dropped, timed out).
  function tusRequest(method, url, headers, body, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.timeout = 120000;
      const all = { ...TUS_HEADERS, "X-CSRFToken": csrfToken(), ...headers };
      Object.entries(all).forEach(([name, value]) => xhr.setRequestHeader(name, String(value)));
      if (onProgress) xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
      const gone = () => { inFlight.delete(xhr); reject(new Retryable(method)); };
      xhr.addEventListener("error", gone);
      xhr.addEventListener("abort", gone);
      xhr.addEventListener("timeout", gone);
      xhr.addEventListener("load", () => {
        inFlight.delete(xhr);
        let error = null;
        try { error = JSON.parse(xhr.responseText).error; } catch (err) { /* no body */ }
        resolve({ status: xhr.status, header: (name) => xhr.getResponseHeader(name), error });
      });
      inFlight.add(xhr);
      xhr.send(body === undefined ? null : body);
    });
  }

  // Wait before the next try: the backoff, cut short when the browser comes back online.
  function pause(ms) {
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); window.removeEventListener("online", done); resolve(); };
      const timer = setTimeout(done, ms);
      window.addEventListener("online", done);
    });
  }

  function whenOnline() {
    if (navigator.onLine) return Promise.resolve();
    return new Promise((resolve) => window.addEventListener("online", resolve, { once: true }));
  }

  // Upload one file to a tus endpoint; resolves with its Media-Location, or throws an Error
  // whose message is the sentence to show.
  async function tusUpload(file, endpoint, rules, show) {
    const key = storeKey(endpoint, file);
    let url = (recall(key) || {}).url || null;
    let offset = null; // unknown until the server says (HEAD), or 0 for a new upload
    let attempt = 0;
    for (;;) {
      try {
        await whenOnline();
        if (!url) {
          const metadata = `filename ${b64(file.name)},filetype ${b64(file.type || "")}`;
          const made = await tusRequest("POST", endpoint,
            { "Upload-Length": file.size, "Upload-Metadata": metadata });
          if (made.status !== 201) throw answerError(made, file);
          url = made.header("Location");
          offset = 0;
          remember(key, { url, name: file.name, size: file.size });
        }
        if (offset === null) {
          const head = await tusRequest("HEAD", url, { "Cache-Control": "no-store" });
          if (head.status === 404 || head.status === 410) { // expired or removed: start over
            forget(key); url = null; continue;
          }
          if (head.status !== 200) throw answerError(head, file);
          offset = Number(head.header("Upload-Offset"));
          if (head.header("Media-Location")) return finished(key, head.header("Media-Location"));
          show(offset, "resumed");
        }
        const end = Math.min(offset + rules.chunk_bytes, file.size);
        const start = offset;
        const sent = await tusRequest("PATCH", url,
          { "Upload-Offset": start, "Content-Type": "application/offset+octet-stream" },
          file.slice(start, end), (loaded) => show(start + loaded));
        if (sent.status === 204) {
          offset = Number(sent.header("Upload-Offset"));
          attempt = 0;
          show(offset);
          if (sent.header("Media-Location")) return finished(key, sent.header("Media-Location"));
          continue; // at the end without Media-Location, an empty PATCH finishes it
        }
        if (sent.status === 409 || sent.status === 423) { // out of step, or another writer
          offset = null;
          if (sent.status === 423) await pause(1000);
          continue;
        }
        if (sent.status === 401 || sent.status === 403) throw answerError(sent, file); // logged out: resumable after logging in
        if (sent.status >= 400 && sent.status < 500) { forget(key); throw answerError(sent, file); }
        throw new Retryable(`PATCH ${sent.status}`); // 5xx, a proxy's 502: try again
      } catch (err) {
        if (!(err instanceof Retryable)) throw err;
        offset = null; // ask the server what it really stored before going on
        const wait = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
        attempt += 1;
        show(null, navigator.onLine ? "retrying" : "offline", wait);
        await pause(wait);
      }
    }
  }

  function finished(key, mediaLocation) {
    forget(key);
    return mediaLocation;
  }

  function answerError(answer, file) {
    return new Error(answer.error || `The upload of “${file.name}” failed (${answer.status}).`);
  }

  // Leaving the page stops an upload: ask first while one is in flight.
  let uploading = 0;
  window.addEventListener("beforeunload", (event) => {
    if (uploading > 0) event.preventDefault();
  });

  async function upload(file, endpoint, grid, rules) {
    const tile = newTile(grid, file.name);
    const problem = problemWith(file, rules);
    if (problem) return fail(tile, problem);
    const bar = tile.querySelector("progress");
    const label = tile.querySelector(".state");
    let stored = 0;
    // One bar per file. It follows the bytes on their way and, after a drop, steps back only
    // to what the server says it holds: never to zero.
    const show = (bytes, state, wait) => {
      if (bytes !== null) stored = bytes;
      const percent = Math.floor((stored / file.size) * 100);
      bar.value = percent;
      tile.dataset.uploaded = String(stored);
      if (state === "offline") label.textContent = `Offline: ${file.name} waits at ${percent}% and goes on when the connection is back.`;
      else if (state === "retrying") label.textContent = `Connection lost at ${percent}%: trying again in ${Math.round(wait / 1000)} s…`;
      else label.textContent = `Uploading ${file.name}… ${percent}%`;
    };
    uploading += 1;
    try {
      tile.dataset.mediaUrl = await tusUpload(file, endpoint, rules, show);
      follow(tile);
    } catch (err) {
      fail(tile, err.message);
    } finally {
      uploading -= 1;
    }
  }

  // After a reload: say which uploads of this entry stopped half-way, and how to go on.
  async function announceUnfinished(endpoint, notice) {
    const unfinished = [];
    for (let i = 0; i < localStorage.length; i += 1) {
      const key = localStorage.key(i);
      if (key && key.startsWith(`${STORE_PREFIX}${endpoint}:`)) unfinished.push([key, recall(key)]);
    }
    const lines = [];
    for (const [key, saved] of unfinished) {
      if (!saved || !saved.url) { forget(key); continue; }
      let head = null;
      try { head = await tusRequest("HEAD", saved.url, { "Cache-Control": "no-store" }); } catch (err) { /* offline */ }
      if (head && (head.status === 404 || head.status === 410 || head.header("Media-Location"))) {
        forget(key);
        continue;
      }
      const percent = head ? Math.floor((Number(head.header("Upload-Offset")) / saved.size) * 100) : null;
      lines.push(`“${saved.name}”${percent === null ? "" : ` (${percent}% uploaded)`}`);
    }
    if (!lines.length) return;
    notice.textContent = `Unfinished upload: ${lines.join(", ")}. Pick the same file again ` +
      "below and it goes on from where it stopped (the browser cannot keep the file across a reload).";
    notice.hidden = false;
  }

  async function uploadAll(files, url, grid, rules) {
    for (const file of files) await upload(file, url, grid, rules); // one at a time: weak Wi-Fi
  }

  // The new-log-entry page: create the entry, then upload each file with its own progress bar.
  const entryForm = document.getElementById("log-entry-form");
  if (entryForm) {
    entryForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = entryForm.querySelector("input[type=file]");
      const rules = rulesOf(input);
      if (input.files.length > rules.max_files) return alert(rules.messages.too_many_files);
      const button = entryForm.querySelector("button[type=submit]");
      button.disabled = true;
      const data = new FormData();
      data.append("machine", entryForm.dataset.machineId);
      data.append("text", entryForm.querySelector("textarea").value);
      // The form's own key: a second tap, or a retry after a timeout, answers the same entry.
      const idempotencyKey = entryForm.querySelector("[name=idempotency_key]").value;
      let response = null;
      let body = {};
      try {
        response = await fetch(entryForm.dataset.apiUrl, {
          method: "POST", body: data,
          headers: { "X-CSRFToken": csrfToken(), "Idempotency-Key": idempotencyKey },
        });
        body = await response.json().catch(() => ({}));
      } catch (err) { /* offline: said below */ }
      if (!response || (response.status !== 201 && response.status !== 200)) {
        button.disabled = false;
        alert(body.error || "The log entry could not be saved. Check the connection and try again.");
        return;
      }
      // From here on this page *is* the entry's page: a reload shows it with its media.
      history.replaceState(null, "", body.page_url);
      document.querySelector("h1").textContent = "Log entry saved";
      entryForm.hidden = true;
      const done = document.getElementById("entry-done");
      done.querySelector("a").href = body.page_url;
      done.hidden = false;
      const grid = document.getElementById("upload-grid");
      await uploadAll(Array.from(input.files), body.uploads_url, grid, rules);
    });
  }

  // The log entry page: more media at any time.
  const addForm = document.getElementById("add-media-form");
  if (addForm) {
    const input = addForm.querySelector("input[type=file]");
    addForm.addEventListener("submit", (event) => event.preventDefault());
    input.addEventListener("change", async () => {
      const files = Array.from(input.files);
      input.value = "";
      await uploadAll(files, addForm.dataset.tusUrl, document.getElementById("upload-grid"),
        rulesOf(input));
    });
    const notice = document.getElementById("unfinished-uploads");
    if (notice) announceUnfinished(addForm.dataset.tusUrl, notice);
  }

  // Tiles rendered by the server: keep following the ones still in progress.
  document.querySelectorAll(".tile[data-media-url]").forEach((tile) => {
    const status = tile.dataset.status;
    actions(tile, { status, kind: tile.dataset.kind, url: tile.dataset.mediaUrl });
    if (status === "pending" || status === "processing") poll(tile);
  });
})();
