// The magnet-jax page: builds a GenerationRequest, follows its progress (server-sent events) and keeps a history
// of results with their parameters, players and downloads. No external assets.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { audio: null, duration: 0, region: null };

async function loadInfo() {
  const info = await (await fetch('/v1/info')).json();
  for (const name of info.presets) {
    $('preset').add(new Option(name, name));
  }
  $('duration').max = info.max_duration;
  $('duration').placeholder = info.default_duration;
  $('model-info').textContent = `${info.model.dim}-d x ${info.model.layers} layers, ${info.sample_rate} Hz, ` +
    `up to ${info.max_duration} s, ${info.devices.count} ${info.devices.kind} device(s)`;
}

function showMode() {
  const mode = $('mode').value;
  $('upload').hidden = mode === 'text';
  $('region').hidden = mode !== 'infill';
  $('duration').disabled = mode === 'infill';
}

// ---- the uploaded audio: waveform and region selection

async function readAudio(file) {
  state.audio = file;
  const context = new OfflineAudioContext(1, 1, 44100);
  const buffer = await context.decodeAudioData(await file.arrayBuffer());
  state.duration = buffer.duration;
  state.peaks = peaks(buffer.getChannelData(0), $('waveform').width);
  setRegion(buffer.duration / 3, (2 * buffer.duration) / 3);
}

function peaks(samples, width) {
  const out = new Float32Array(width);
  const step = Math.max(1, Math.floor(samples.length / width));
  for (let x = 0; x < width; x++) {
    let peak = 0;
    for (let i = x * step; i < Math.min(samples.length, (x + 1) * step); i++) peak = Math.max(peak, Math.abs(samples[i]));
    out[x] = peak;
  }
  return out;
}

function setRegion(start, end) {
  state.region = [Math.max(0, Math.min(start, end)), Math.min(state.duration, Math.max(start, end))];
  $('infill-start').value = state.region[0].toFixed(2);
  $('infill-end').value = state.region[1].toFixed(2);
  draw();
}

function draw() {
  const canvas = $('waveform');
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.peaks) return;
  if (state.region && state.duration) {
    const [a, b] = state.region.map((s) => (s / state.duration) * canvas.width);
    g.fillStyle = 'rgba(59, 91, 219, 0.2)';
    g.fillRect(a, 0, b - a, canvas.height);
  }
  g.fillStyle = '#3b5bdb';
  const middle = canvas.height / 2;
  state.peaks.forEach((p, x) => g.fillRect(x, middle - p * middle, 1, Math.max(1, 2 * p * middle)));
}

function regionDragging() {
  const canvas = $('waveform');
  let from = null;
  const seconds = (event) => {
    const box = canvas.getBoundingClientRect();
    return ((event.clientX - box.left) / box.width) * state.duration;
  };
  canvas.addEventListener('mousedown', (e) => { if (state.duration) from = seconds(e); });
  canvas.addEventListener('mousemove', (e) => { if (from !== null) setRegion(from, seconds(e)); });
  window.addEventListener('mouseup', () => { from = null; });
  for (const id of ['infill-start', 'infill-end']) {
    $(id).addEventListener('change', () => setRegion(+$('infill-start').value, +$('infill-end').value));
  }
}

// ---- generation

function request() {
  const body = { prompts: [$('prompt').value], seed: +$('seed').value, mode: $('mode').value,
                 format: $('format').value };
  if ($('duration').value && body.mode !== 'infill') body.duration = +$('duration').value;
  if ($('preset').value) body.preset = $('preset').value;
  if (body.mode === 'infill') body.infill = [+$('infill-start').value, +$('infill-end').value];
  return body;
}

async function submit(body) {
  let response;
  if (body.mode === 'text' || (body.mode === 'loop' && !state.audio)) {
    response = await fetch('/v1/generations', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                                body: JSON.stringify(body) });
  } else {
    if (!state.audio) throw new Error(`mode ${body.mode} needs an audio file`);
    const form = new FormData();
    form.append('request', JSON.stringify(body));
    form.append('audio', state.audio);
    response = await fetch('/v1/generations/upload', { method: 'POST', body: form });
  }
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function follow(job, body) {
  return new Promise((resolve, reject) => {
    const events = new EventSource(job.events);
    events.addEventListener('status', (message) => {
      const status = JSON.parse(message.data);
      $('progress').max = status.progress.total;
      $('progress').value = status.progress.done;
      $('status').textContent = `${status.state} (${status.progress.done}/${status.progress.total})`;
      if (['done', 'failed', 'cancelled', 'expired'].includes(status.state)) {
        events.close();
        status.state === 'done' ? resolve(status) : reject(new Error(status.error || status.state));
      }
    });
    events.onerror = () => { events.close(); reject(new Error('lost the progress stream')); };
  });
}

function addHistory(status, body) {
  for (const output of status.outputs) {
    const item = document.createElement('li');
    item.className = 'result';
    const record = output.sidecar;
    const title = document.createElement('strong');
    title.textContent = record.prompt;
    const params = document.createElement('div');
    params.className = 'params';
    params.textContent = `${record.mode}, ${record.audio_s.toFixed(2)} s, seed ${record.seed}, ` +
      `preset ${record.preset || 'default'}, ${record.decoding.decoding_steps.join('/')} steps` +
      (record.infill ? `, infill ${record.infill[0]}-${record.infill[1]} s` : '') +
      `, batch of ${record.batch_size}, ${(status.timings.total_s || 0).toFixed(1)} s`;
    const player = document.createElement('audio');
    player.controls = true;
    player.src = output.audio;
    const download = document.createElement('a');
    download.href = output.audio;
    download.download = `magnet-${status.id.slice(0, 8)}-${output.index}.${body.format}`;
    download.textContent = 'download';
    item.append(title, params, player, download);
    $('history').prepend(item);
  }
}

async function generate(event) {
  event.preventDefault();
  $('error').textContent = '';
  $('generate').disabled = true;
  $('progress').value = 0;
  const body = request();
  try {
    $('status').textContent = 'queued';
    const status = await follow(await submit(body), body);
    addHistory(status, body);
    $('status').textContent = 'done';
  } catch (error) {
    $('error').textContent = error.message;
    $('status').textContent = 'failed';
  } finally {
    $('generate').disabled = false;
  }
}

$('mode').addEventListener('change', showMode);
$('audio').addEventListener('change', (e) => e.target.files[0] && readAudio(e.target.files[0])
  .catch((error) => { $('error').textContent = `cannot read that audio: ${error.message}`; }));
$('form').addEventListener('submit', generate);
regionDragging();
showMode();
loadInfo();
