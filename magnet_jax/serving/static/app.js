// The magnet-jax page: builds a GenerationRequest, follows its progress (server-sent events) and keeps a history
// of results with their parameters, players and downloads. No external assets.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { audio: null, duration: 0, region: null, info: null, job: null };
const HISTORY_KEY = 'magnet-jax-history';
const MAX_SEED = 2 ** 31 - 8;  // room for a request's several takes (seed + i)

async function loadInfo() {
  const info = await (await fetch('/v1/info')).json();
  for (const name of info.presets) {
    $('preset').add(new Option(name, name));
  }
  state.info = info;
  $('duration').max = info.max_duration;
  $('duration').placeholder = info.default_duration;
  $('takes').max = info.max_prompts;
  const size = info.model.dim * info.model.layers < 4096 ? 'A small' : 'A large';
  $('model-info').textContent = `${size} text-to-music model: it makes ${info.default_duration} s pieces ` +
    `(up to ${info.max_duration} s) of ${info.sample_rate / 1000} kHz audio from a description, ` +
    `running on ${info.devices.count} ${info.devices.kind}`;
  $('upload-limit').textContent = `audio up to ${info.max_duration} s and ${info.max_upload_mb} MB`;
  waitUntilWarm();
}

// While the server compiles its programs it answers 503 with an estimate: say so, and keep Generate off until then.
async function waitUntilWarm() {
  const response = await fetch('/v1/health');
  if (response.status !== 503) {
    if (state.warming) {
      state.warming = false;
      $('generate').disabled = false;
      $('status').textContent = 'ready';
    }
    return;
  }
  const answer = await response.json();
  state.warming = true;
  $('generate').disabled = true;
  $('status').textContent = `${answer.error} — Generate unlocks when it is ready`;
  const wait = Math.min(5, Math.max(1, +response.headers.get('Retry-After') || 2));
  setTimeout(waitUntilWarm, wait * 1000);
}

function showMode() {
  const mode = $('mode').value;
  $('upload').hidden = mode === 'text';
  $('region').hidden = mode !== 'infill';
  $('tempo').hidden = mode !== 'loop';
  $('duration').disabled = mode === 'infill';
}

// ---- the uploaded audio: waveform and region selection

async function readAudio(file) {
  state.audio = file;
  $('remove-audio').hidden = false;
  const context = new OfflineAudioContext(1, 1, 44100);
  const buffer = await context.decodeAudioData(await file.arrayBuffer());
  state.duration = buffer.duration;
  state.peaks = peaks(buffer.getChannelData(0), $('waveform').width);
  setRegion(buffer.duration / 3, (2 * buffer.duration) / 3);
}

function removeAudio() {
  Object.assign(state, { audio: null, duration: 0, region: null, peaks: null });
  $('audio').value = '';
  $('remove-audio').hidden = true;
  draw();
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
  // Pointer events: a mouse, a pen or a finger drags out the region alike.
  canvas.addEventListener('pointerdown', (e) => {
    if (!state.duration) return;
    from = seconds(e);
    try { canvas.setPointerCapture(e.pointerId); } catch { /* a pointer that is already gone */ }
  });
  canvas.addEventListener('pointermove', (e) => { if (from !== null) setRegion(from, seconds(e)); });
  for (const type of ['pointerup', 'pointercancel']) canvas.addEventListener(type, () => { from = null; });
  for (const id of ['infill-start', 'infill-end']) {
    $(id).addEventListener('change', () => setRegion(+$('infill-start').value, +$('infill-end').value));
  }
}

// ---- generation

// What is wrong with the form, in a musician's words (checked before anything is sent), or null.
function problem() {
  const mode = $('mode').value;
  const info = state.info || { max_duration: Infinity, max_prompts: 8 };
  if (!$('prompt').value.trim()) return 'Describe the music you want in the prompt box.';
  const duration = $('duration').value;
  if (duration && mode !== 'infill' && !(+duration > 0 && +duration <= info.max_duration)) {
    return `Length must be more than 0 and at most ${info.max_duration} seconds.`;
  }
  const takes = +$('takes').value;
  if (!(Number.isInteger(takes) && takes >= 1 && takes <= info.max_prompts)) {
    return `Takes must be a whole number from 1 to ${info.max_prompts}.`;
  }
  const needsAudio = mode === 'continuation' || mode === 'infill' || mode === 'outpaint';
  if (needsAudio && !state.audio) return `Choose an audio file to ${mode === 'infill' ? 'infill' : 'extend'} first.`;
  if (state.audio && mode !== 'text' && state.duration > info.max_duration) {
    return `That audio is ${state.duration.toFixed(1)} s long; this server takes up to ${info.max_duration} s.`;
  }
  if (state.audio && mode !== 'text' && state.audio.size > info.max_upload_mb * 2 ** 20) {
    return `That file is ${(state.audio.size / 2 ** 20).toFixed(1)} MB; this server takes up to ${info.max_upload_mb} MB.`;
  }
  const tempo = tempoOf(mode);
  if (tempo === undefined) return 'For a loop in tempo give both the BPM (more than 0) and a whole number of bars.';
  if (tempo && (tempo.bars * tempo.beats_per_bar * 60) / tempo.bpm > info.max_duration) {
    return `${tempo.bars} bars at ${tempo.bpm} BPM last longer than this server's ${info.max_duration} s.`;
  }
  if (mode === 'infill' && !(+$('infill-end').value > +$('infill-start').value)) {
    return 'Drag over the waveform to choose the part to regenerate.';
  }
  for (const id of ['temp', 'cfg']) {
    if ($(id).value && !(+$(id).value >= 0)) return `${id === 'temp' ? 'Temperature' : 'Prompt strength'} must be 0 or more.`;
  }
  return null;
}

// API messages ("prompts.0: empty prompt") in plain words where we know them.
function plain(message) {
  if (/prompts.*empty/.test(message)) return 'Describe the music you want in the prompt box.';
  if (/duration/.test(message) && /exceed|at most|longer/.test(message)) return `Too long: ${message}`;
  if (/upload|audio/.test(message)) return `The audio file did not work: ${message}`;
  if (/queue|429|busy/i.test(message)) return 'The server is busy; try again in a moment.';
  if (/^warming up/.test(message)) return `The server is still starting (${message}); try again then.`;
  if (/^schedule/.test(message)) return `Prompt changes: ${message.replace(/^schedule[.\d]*: /, '')}`;
  if (/^negative/.test(message)) return 'Write what to avoid, or leave that box empty.';
  return message;
}

// The loop's tempo when both BPM and bars are given (mode loop only), null without, undefined when half given.
function tempoOf(mode) {
  if (mode !== 'loop' || (!$('bpm').value && !$('bars').value)) return null;
  const tempo = { bpm: +$('bpm').value, bars: +$('bars').value, beats_per_bar: +$('beats').value || 4 };
  const whole = Number.isInteger(tempo.bars) && Number.isInteger(tempo.beats_per_bar);
  return tempo.bpm > 0 && tempo.bars >= 1 && tempo.beats_per_bar >= 1 && whole ? tempo : undefined;
}

// The prompt changes as typed, one "SECONDS: TEXT" per line (the server parses and checks them).
function scheduleLines() {
  return $('schedule').value.split('\n').map((line) => line.trim()).filter((line) => line);
}

function rollSeed() {
  if (!$('seed-lock').checked) $('seed').value = Math.floor(Math.random() * MAX_SEED);
}

function request() {
  const takes = +$('takes').value || 1;
  const body = { prompts: Array(takes).fill($('prompt').value), seed: +$('seed').value, mode: $('mode').value,
                 format: $('format').value };
  const tempo = tempoOf(body.mode);
  if (tempo) body.tempo = tempo;
  if ($('duration').value && body.mode !== 'infill' && !tempo) body.duration = +$('duration').value;
  if ($('negative').value.trim()) body.negative = $('negative').value.trim();
  if (scheduleLines().length) body.schedule = scheduleLines();
  if ($('preset').value) body.preset = $('preset').value;
  if (body.mode === 'infill') body.infill = [+$('infill-start').value, +$('infill-end').value];
  const decoding = {};
  if ($('temp').value) decoding.temp = +$('temp').value;
  if ($('cfg').value) decoding.max_cfg_coef = +$('cfg').value;
  if (Object.keys(decoding).length) body.decoding = decoding;
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
      state.job = status;
      $('progress').max = status.progress.total;
      $('progress').value = status.progress.done;
      $('status').textContent = `${status.state} (${status.progress.done} of ${status.progress.total} steps)`;
      if (['done', 'failed', 'cancelled', 'expired'].includes(status.state)) {
        events.close();
        status.state === 'done' ? resolve(status) : reject(new Error(status.error || status.state));
      }
    });
    events.onerror = () => { events.close(); reject(new Error('lost the progress stream')); };
  });
}

// Results kept in the browser (localStorage): the page lists them again after a reload while the server keeps the
// files.
function saved() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY)) || []; } catch { return []; }
}

function remember(status, body) {
  const entries = status.outputs.map((output) => ({ id: status.id, format: body.format, output,
                                                     total_s: status.timings.total_s || 0 }));
  localStorage.setItem(HISTORY_KEY, JSON.stringify([...saved(), ...entries].slice(-50)));
}

async function reuse(url, mode) {
  const blob = await (await fetch(url)).blob();
  $('mode').value = mode;
  showMode();
  await readAudio(new File([blob], url.split('/').pop(), { type: blob.type }));
  window.scrollTo(0, 0);
}

function addHistory(status, body) {
  for (const output of status.outputs) {
    showResult({ id: status.id, format: body.format, output, total_s: status.timings.total_s || 0 });
  }
}

function showResult({ id, format, output, total_s }) {
  {
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
      `, batch of ${record.batch_size}, ${total_s.toFixed(1)} s`;
    const player = document.createElement('audio');
    player.controls = true;
    player.src = output.audio;
    const download = document.createElement('a');
    download.href = output.audio;
    download.download = output.name || `magnet-${id.slice(0, 8)}-${output.index}.${format}`;
    download.textContent = 'download';
    const uses = [['continuation', 'continue this'], ['infill', 'infill this'], ['loop', 'loop this']].map(
      ([mode, words]) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.textContent = words;
        button.dataset.mode = mode;
        button.addEventListener('click', () => reuse(output.audio, mode)
          .catch((error) => { $('error').textContent = `cannot use that result: ${error.message}`; }));
        return button;
      });
    item.append(title, params, player, download, ...uses);
    $('history').prepend(item);
  }
}

async function generate(event) {
  event.preventDefault();
  $('error').textContent = '';
  const wrong = problem();
  if (wrong) {
    $('error').textContent = wrong;
    return;
  }
  rollSeed();
  $('generate').disabled = true;
  $('progress').value = 0;
  const body = request();
  try {
    $('status').textContent = 'queued';
    const job = await submit(body);
    state.job = job;
    $('cancel').hidden = false;
    const status = await follow(job, body);
    addHistory(status, body);
    remember(status, body);
    $('status').textContent = 'done';
  } catch (error) {
    const cancelled = error.message === 'cancelled';
    $('error').textContent = cancelled ? '' : plain(error.message);
    $('status').textContent = cancelled ? 'cancelled' : 'failed';
  } finally {
    $('generate').disabled = !!state.warming;
    $('cancel').hidden = true;
  }
}

async function cancel() {
  if (state.job) await fetch(`/v1/generations/${state.job.id}`, { method: 'DELETE' });
}

$('mode').addEventListener('change', showMode);
$('audio').addEventListener('change', (e) => e.target.files[0] && readAudio(e.target.files[0])
  .catch((error) => { $('error').textContent = `cannot read that audio: ${error.message}`; }));
$('form').addEventListener('submit', generate);
$('remove-audio').addEventListener('click', removeAudio);
$('seed').addEventListener('input', () => { $('seed-lock').checked = true; });  // a typed seed is meant
$('cancel').addEventListener('click', cancel);
for (const id of ['prompt', 'duration', 'takes', 'temp', 'cfg', 'negative', 'schedule', 'bpm', 'bars', 'beats']) {
  $(id).addEventListener('input', () => { $('error').textContent = ''; });
}
saved().forEach(showResult);
regionDragging();
showMode();
loadInfo();
