// The FaceWarden capture page: reads the session and its token from the URL fragment (a fragment never reaches
// a server or its logs), shows the challenge, films while the person follows it and the screen shows the
// session's colours, and sends the clip. No API key ever comes here: the token opens this one session only.
"use strict";

const params = new URLSearchParams(location.hash.slice(1));
const session = params.get("session") || "";
const token = params.get("token") || "";
history.replaceState(null, "", location.pathname);  // the token leaves the address bar and the history
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(method, body) {
  const response = await fetch(`/v1/liveness/capture/${encodeURIComponent(session)}`,
    { method, body, headers: { "X-Capture-Token": token }, cache: "no-store" });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error((data.error && data.error.message) || `the service answered ${response.status}`);
  }
  return data;
}

const CLIP_BITS_PER_SECOND = 2500000;

function pickType() {
  for (const type of ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm", "video/mp4"]) {
    if (window.MediaRecorder && MediaRecorder.isTypeSupported(type)) return type;
  }
  return "";
}

// The prompts: facing the camera first (the baseline), then one action per prompt, then facing the screen for
// the colours. The timeline comes from the session, which times the colours after the last prompt.
function schedulePrompts(challenge, t0) {
  const end = challenge.baseline_ms + challenge.prompt_ms * challenge.instructions.length;
  const steps = [{ at: 0, text: "Look at the camera" }];
  challenge.instructions.forEach((text, k) => steps.push({ at: challenge.baseline_ms + challenge.prompt_ms * k, text }));
  steps.push({ at: end, text: challenge.light ? "Keep still and look at the screen" : "Look at the camera" });
  for (const step of steps) setTimeout(() => { $("prompt").textContent = step.text; }, step.at - (performance.now() - t0));
  return end + 700;
}

// The colours: each full-screen for its time, counted from the start of the recording.
function scheduleLight(light, t0) {
  if (!light) return 0;
  let at = light.start_ms;
  for (const flash of light.flashes) {
    const colour = flash.rgb;
    setTimeout(() => { document.body.style.background = colour; $("stage").style.background = colour; },
      at - (performance.now() - t0));
    at += flash.ms;
  }
  setTimeout(() => { document.body.style.background = ""; $("stage").style.background = ""; },
    at - (performance.now() - t0));
  return at + 300;
}

async function run() {
  const start = $("start");
  start.disabled = true;
  $("status").textContent = "Opening the camera…";
  let stream = null;
  try {
    const challenge = await call("GET");
    if (challenge.needs_reference) {
      throw new Error("This session is for a comparison with a document: it has to be sent through the API.");
    }
    stream = await navigator.mediaDevices.getUserMedia(
      { video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    const preview = $("preview");
    preview.srcObject = stream;
    await preview.play();
    const type = pickType();
    // 2.5 Mbit/s, Chromium's and Firefox's own default, said out loud so every browser sends the same quality:
    // at 1 Mbit/s compression moves the landmarks enough to flip movements near a threshold (bench_field).
    const options = { videoBitsPerSecond: CLIP_BITS_PER_SECOND };
    if (type) options.mimeType = type;
    const recorder = new MediaRecorder(stream, options);
    const chunks = [];
    recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
    const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
    const started = new Promise((resolve) => { recorder.onstart = resolve; });
    $("status").textContent = "Recording";
    recorder.start(250);
    await started;  // the clip's time 0: the prompts and colours are timed from here
    const t0 = performance.now();
    const length = Math.min(Math.max(schedulePrompts(challenge, t0), scheduleLight(challenge.light, t0) + 400),
      challenge.max_seconds * 1000 - 200);
    await sleep(length);
    recorder.stop();
    await stopped;
    $("prompt").textContent = "";
    $("status").textContent = "Checking…";
    const form = new FormData();
    const blob = new Blob(chunks, { type: recorder.mimeType || "video/webm" });
    form.append("video", blob, (recorder.mimeType || "").includes("mp4") ? "clip.mp4" : "clip.webm");
    const result = await call("POST", form);
    $("status").textContent = result.passed ? "Passed." : "Not passed. Ask for a new check to try again: "
      + (challenge.light ? "screen brightness up, out of direct sunlight, " : "") + "face in view throughout.";
    document.body.dataset.result = result.passed ? "passed" : "failed";
  } catch (error) {
    $("status").textContent = `Could not complete the check: ${error.message}`;
    document.body.dataset.result = "error";
  } finally {
    if (stream) stream.getTracks().forEach((track) => track.stop());  // the camera goes off whatever happened
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (!session || !token) {
    $("status").textContent = "This page needs the link your service gave you (it names one session).";
    $("start").disabled = true;
    return;
  }
  $("start").addEventListener("click", run);
});
