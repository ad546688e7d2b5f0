// Uploads from the page with a real progress bar, then follows each video until it plays.
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

  // Leaving the page stops an upload: ask first while one is in flight.
  let uploading = 0;
  window.addEventListener("beforeunload", (event) => {
    if (uploading > 0) event.preventDefault();
  });

  function upload(file, url, grid, rules) {
    const tile = newTile(grid, file.name);
    const problem = problemWith(file, rules);
    if (problem) return Promise.resolve(fail(tile, problem));
    uploading += 1;
    return new Promise((resolve) => {
      const finish = () => { uploading -= 1; resolve(); };
      const xhr = new XMLHttpRequest();
      const bar = tile.querySelector("progress");
      const label = tile.querySelector(".state");
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        const percent = Math.floor((event.loaded / event.total) * 100);
        bar.value = percent;
        label.textContent = `Uploading ${file.name}… ${percent}%`;
      });
      xhr.addEventListener("load", () => {
        let body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { /* not JSON */ }
        if (xhr.status === 201) {
          tile.dataset.mediaUrl = body.url;
          follow(tile);
        } else fail(tile, body.error || `The upload of “${file.name}” failed (${xhr.status}).`);
        finish();
      });
      const interrupted = () => {
        fail(tile, `The upload of “${file.name}” was interrupted. Check the connection and try again.`);
        finish();
      };
      xhr.addEventListener("error", interrupted);
      xhr.addEventListener("abort", interrupted);
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      const data = new FormData();
      data.append("file", file);
      xhr.send(data);
    });
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
      let response = null;
      let body = {};
      try {
        response = await fetch(entryForm.dataset.apiUrl, {
          method: "POST", body: data, headers: { "X-CSRFToken": csrfToken() },
        });
        body = await response.json().catch(() => ({}));
      } catch (err) { /* offline: said below */ }
      if (!response || response.status !== 201) {
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
      await uploadAll(Array.from(input.files), `/api/log-entries/${body.id}/media/`, grid, rules);
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
      await uploadAll(files, addForm.dataset.uploadUrl, document.getElementById("upload-grid"),
        rulesOf(input));
    });
  }

  // Tiles rendered by the server: keep following the ones still in progress.
  document.querySelectorAll(".tile[data-media-url]").forEach((tile) => {
    const status = tile.dataset.status;
    actions(tile, { status, kind: tile.dataset.kind, url: tile.dataset.mediaUrl });
    if (status === "pending" || status === "processing") poll(tile);
  });
})();
