// Run page: while the run is "running", poll /api/runs/{id} every 2 s and update the progress.
(function () {
  var box = document.getElementById("progress");
  if (!box || box.dataset.status !== "running") return;
  var id = box.dataset.runId;
  function set(elId, v) { var el = document.getElementById(elId); if (el && v !== undefined && v !== null) el.textContent = v; }
  function tick() {
    fetch("/api/runs/" + id, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (run) {
        if (!run) return;
        run = run.run || run;
        set("run-frames", run.frames_processed);
        set("run-last-frame", run.last_frame_index);
        set("run-heartbeat", run.heartbeat_at);
        var bar = document.getElementById("run-progress");
        if (bar && bar.max && run.frames_processed !== undefined) bar.value = run.frames_processed;
        if (run.status !== "running") { window.location.reload(); return; }
        setTimeout(tick, 2000);
      })
      .catch(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
})();
