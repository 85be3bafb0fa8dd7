// Live music (docs/live.md): a WebSocket to /v1/live; each binary message is one chunk (uint32 length, its JSON
// metadata, float32 samples), scheduled with the Web Audio API right after the previous one (contiguous start times,
// so playback has no gaps); the page acknowledges each chunk when it starts playing, which is what lets the server
// generate the next ones. No external assets.
'use strict';

const $ = (id) => document.getElementById(id);
const LEAD_S = 0.15;  // how far ahead of "now" the first chunk (or one after an underrun) is scheduled
// The stream's state; `window.live` for the browser test and the curious.
const live = window.live = { socket: null, context: null, next: 0, scheduled: [], underruns: 0, info: null,
                             changes: [] };

function status(text) { $('live-status').textContent = text; }

function controls() {
  const message = { prompt: $('live-prompt').value.trim() };
  message.negative = $('live-negative').value.trim() || null;
  message.bpm = $('live-bpm').value === '' ? null : Number($('live-bpm').value);
  message.preset = $('live-preset').value || null;
  return message;
}

function start() {
  stop();
  $('error').textContent = '';
  live.context = new AudioContext();
  live.next = 0;
  live.scheduled = [];
  live.underruns = 0;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const socket = live.socket = new WebSocket(`${scheme}://${location.host}/v1/live`);
  socket.binaryType = 'arraybuffer';
  socket.onopen = () => {
    const seed = $('live-seed').value;
    socket.send(JSON.stringify({ type: 'start', ...controls(), seed: seed === '' ? null : Number(seed) }));
    status('starting (the first window is being generated)');
  };
  socket.onmessage = (event) => (typeof event.data === 'string' ? message(JSON.parse(event.data))
                                                                 : chunk(event.data));
  socket.onclose = (event) => {
    status(`stopped${event.reason ? `: ${event.reason}` : ''}`);
    buttons(false);
  };
  buttons(true);
}

function stop() {
  if (live.socket) live.socket.close();
  if (live.context) live.context.close();
  live.socket = live.context = null;
  buttons(false);
}

function buttons(playing) {
  $('live-start').disabled = playing;
  $('live-change').disabled = $('live-stop').disabled = !playing;
}

function message(data) {
  if (data.type === 'started') {
    live.info = data;
    status(`playing: seed ${data.seed}, ${data.sample_rate} Hz, ${data.window_seconds.toFixed(2)} s windows`);
  } else if (data.type === 'controls') {
    live.changes.push(data);
    status(`change heard from window ${data.applies_from}`);
  } else if (data.type === 'error') {
    $('error').textContent = data.error;
  }
}

function chunk(data) {
  const length = new DataView(data).getUint32(0, true);
  const meta = JSON.parse(new TextDecoder().decode(new Uint8Array(data, 4, length)));
  const samples = new Float32Array(data.slice(4 + length));
  const channels = live.info.channels;
  const frames = samples.length / channels;
  const context = live.context;
  const buffer = context.createBuffer(channels, frames, live.info.sample_rate);
  for (let c = 0; c < channels; c++) {
    const out = buffer.getChannelData(c);
    for (let i = 0; i < frames; i++) out[i] = samples[i * channels + c];
  }
  let when = live.next;
  if (when < context.currentTime + 0.01) {  // the first chunk, or one that came late: start a little ahead
    if (live.scheduled.length) live.underruns++;
    when = context.currentTime + LEAD_S;
  }
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  source.start(when);
  live.next = when + buffer.duration;
  live.scheduled.push({ index: meta.index, when, duration: buffer.duration, prompt: meta.prompt });
  const wait = Math.max(0, (when - context.currentTime) * 1000);
  setTimeout(() => {
    if (live.socket && live.socket.readyState === WebSocket.OPEN) {
      live.socket.send(JSON.stringify({ type: 'played', index: meta.index }));
    }
  }, wait);
  const item = document.createElement('li');
  item.dataset.index = meta.index;
  item.textContent = `window ${meta.index} at ${meta.start.toFixed(2)} s: ${meta.prompt}` +
    `${meta.bpm ? `, ${meta.bpm} bpm` : ''}${meta.negative ? ` (not: ${meta.negative})` : ''}` +
    ` (${meta.compute.toFixed(2)} s to generate)`;
  $('live-chunks').prepend(item);
}

$('live-start').addEventListener('click', start);
$('live-stop').addEventListener('click', stop);
$('live-form').addEventListener('submit', (event) => {
  event.preventDefault();
  if (live.socket && live.socket.readyState === WebSocket.OPEN) {
    live.socket.send(JSON.stringify({ type: 'controls', ...controls() }));
  }
});
