// Uploads from the page with a real progress bar, then follows each video until it plays.
// Plain JavaScript, no framework: one tile per file, updated in place from GET /api/media/<id>/.
(function () {
  "use strict";

  const POLL_MS = 1500;
  const PHOTO_EXT = ["jpg", "jpeg", "png", "webp", "heic", "heif"];
  const VIDEO_EXT = ["mov", "mp4", "m4v", "3gp", "webm", "mkv", "avi"];

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

  function problemWith(file, maxMb) {
    const ext = (file.name.split(".").pop() || "").toLowerCase();
    if (!PHOTO_EXT.includes(ext) && !VIDEO_EXT.includes(ext)) {
      return `“${file.name}” is not a photo or video we accept.`;
    }
    if (file.size > maxMb * 1024 * 1024) {
      return `“${file.name}” is larger than ${maxMb} MB, the most we accept for one file.`;
    }
    if (file.size === 0) return `“${file.name}” is empty (0 bytes).`;
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

  function setBody(tile, node) {
    tile.querySelectorAll(".state, progress, img, video, a.photo").forEach((n) => n.remove());
    tile.prepend(node);
  }

  function actions(tile, media) {
    const bar = tile.querySelector(".tile-actions");
    bar.replaceChildren();
    if (!media) {
      const dismiss = el("button", { type: "button", class: "small-button" }, "Dismiss");
      dismiss.addEventListener("click", () => tile.remove());
      bar.append(dismiss);
      return;
    }
    if (media.status === "failed" && media.kind === "video") {
      const retry = el("button", { type: "button", class: "small-button" }, "Try again");
      retry.addEventListener("click", () => send("POST", media.url + "retry/", tile));
      bar.append(retry);
    }
    if (media.status === "ready" || media.status === "failed") {
      const remove = el("button", { type: "button", class: "small-button danger" }, "Remove");
      remove.addEventListener("click", () => {
        if (remove.dataset.armed) return send("DELETE", media.url, tile);
        remove.dataset.armed = "1";
        remove.textContent = "Tap again to remove";
        setTimeout(() => { delete remove.dataset.armed; remove.textContent = "Remove"; }, 4000);
      });
      bar.append(remove);
    }
  }

  function render(tile, media) {
    tile.dataset.status = media.status;
    tile.dataset.mediaUrl = media.url;
    tile.dataset.kind = media.kind;
    if (media.status === "ready" && media.kind === "video") {
      if (!tile.querySelector("video")) {
        const video = el("video", { controls: "", playsinline: "", preload: "metadata" });
        if (media.poster_url) video.setAttribute("poster", media.poster_url);
        video.src = media.video_url;
        setBody(tile, video);
      }
    } else if (media.status === "ready") {
      if (!tile.querySelector("img")) {
        const link = el("a", { href: media.photo_url, class: "photo" });
        link.append(el("img", { src: media.photo_url, alt: "Photo" }));
        setBody(tile, link);
      }
    } else if (media.status === "failed") {
      const box = el("div", { class: "state failed", role: "alert" });
      box.append(el("strong", {}, "Could not process this video. "), media.error || "");
      setBody(tile, box);
    } else {
      const text = media.status === "pending" ? "Waiting to process…"
        : `Processing…${media.progress != null ? " " + media.progress + "%" : ""}`;
      const current = tile.querySelector(".state.processing");
      if (current) current.textContent = text;
      else setBody(tile, el("div", { class: "state processing", role: "status" }, text));
    }
    actions(tile, media);
    if (media.status === "pending" || media.status === "processing") poll(tile);
  }

  function poll(tile) {
    clearTimeout(tile._pollTimer);
    tile._pollTimer = setTimeout(async () => {
      if (!tile.isConnected) return;
      try {
        const response = await fetch(tile.dataset.mediaUrl, { headers: { Accept: "application/json" } });
        if (response.status === 404) return tile.remove();
        if (!response.ok) throw new Error(response.status);
        render(tile, await response.json());
      } catch (err) {
        poll(tile); // a network blip on weak Wi-Fi: keep trying
      }
    }, POLL_MS);
  }

  function fail(tile, message) {
    tile.dataset.status = "rejected";
    setBody(tile, el("div", { class: "state failed", role: "alert" }, message));
    actions(tile, null);
  }

  async function send(method, url, tile) {
    const response = await fetch(url, { method, headers: { "X-CSRFToken": csrfToken() } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) return fail(tile, body.error || "That did not work. Try again.");
    if (method === "DELETE") return tile.remove();
    render(tile, body);
  }

  function upload(file, url, grid, maxMb) {
    const tile = newTile(grid, file.name);
    const problem = problemWith(file, maxMb);
    if (problem) return Promise.resolve(fail(tile, problem));
    return new Promise((resolve) => {
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
        if (xhr.status === 201) render(tile, body);
        else fail(tile, body.error || `The upload of “${file.name}” failed (${xhr.status}).`);
        resolve();
      });
      xhr.addEventListener("error", () => {
        fail(tile, `The upload of “${file.name}” was interrupted. Check the connection and try again.`);
        resolve();
      });
      xhr.open("POST", url);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      const data = new FormData();
      data.append("file", file);
      xhr.send(data);
    });
  }

  async function uploadAll(files, url, grid, maxMb) {
    for (const file of files) await upload(file, url, grid, maxMb); // one at a time: weak Wi-Fi
  }

  // The new-log-entry page: create the entry, then upload each file with its own progress bar.
  const entryForm = document.getElementById("log-entry-form");
  if (entryForm) {
    entryForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const button = entryForm.querySelector("button[type=submit]");
      button.disabled = true;
      const input = entryForm.querySelector("input[type=file]");
      const data = new FormData();
      data.append("machine", entryForm.dataset.machineId);
      data.append("text", entryForm.querySelector("textarea").value);
      const response = await fetch(entryForm.dataset.apiUrl, {
        method: "POST", body: data, headers: { "X-CSRFToken": csrfToken() },
      });
      const body = await response.json().catch(() => ({}));
      if (response.status !== 201) {
        button.disabled = false;
        alert(body.error || "The log entry could not be saved.");
        return;
      }
      // From here on this page *is* the entry's page: a reload shows it with its media.
      history.replaceState(null, "", body.page_url);
      entryForm.hidden = true;
      const done = document.getElementById("entry-done");
      done.querySelector("a").href = body.page_url;
      done.hidden = false;
      const grid = document.getElementById("upload-grid");
      await uploadAll(Array.from(input.files), `/api/log-entries/${body.id}/media/`, grid,
        Number(input.dataset.maxMb));
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
        Number(input.dataset.maxMb));
    });
  }

  // Tiles rendered by the server: keep following the ones still in progress.
  document.querySelectorAll(".tile[data-media-url]").forEach((tile) => {
    const status = tile.dataset.status;
    if (status === "pending" || status === "processing") poll(tile);
    else actions(tile, { status, kind: tile.dataset.kind, url: tile.dataset.mediaUrl });
  });
})();
