"""The web page in a real browser: Debian's chromium, headless, driven by selenium through chromedriver. It types
a prompt, generates, waits for the player, and checks that the audio decodes in the browser; then does the same for
an infill of an uploaded file with a region. A screenshot is saved when a step fails
($MAGNET_JAX_SCREENSHOTS, default the test's tmp folder)."""
import contextlib
import dataclasses
import os
import shutil
import threading
import time

import numpy as np
import pytest
import soundfile
import uvicorn

from magnet_jax.decoding import DecodingConfig
from magnet_jax.generation import random_pipeline
from magnet_jax.serving.app import create_app
from magnet_jax.serving.jobs import Job
from magnet_jax.serving.service import ServeOptions, Service
from tests.helpers import free_port

webdriver = pytest.importorskip('selenium.webdriver')
from selenium.webdriver.common.actions import interaction  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.actions.pointer_input import PointerInput  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which('chromium'), shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason='needs Debian chromium and chromium-driver '
                                '(.ci/run installs them: apt-get install chromium chromium-driver)')

# The tiny codec at 8 kHz: browsers decode no audio below 3 kHz (the tests' usual tiny codec runs at 1.6 kHz).
CODEC = dataclasses.replace(random_pipeline.TINY_CODEC, sample_rate=8000, ratios=(8, 5, 4))
DECODE = """
const [url, done] = arguments;
fetch(url).then(r => r.arrayBuffer())
  .then(data => new OfflineAudioContext(1, 1, 44100).decodeAudioData(data))
  .then(buffer => done({seconds: buffer.duration, peak: Math.max(...buffer.getChannelData(0).map(Math.abs))}))
  .catch(error => done({error: String(error)}));
"""


@pytest.fixture(scope='module')
def server(tmp_path_factory):
  pipeline = random_pipeline.build(codec_config=CODEC, decoding=DecodingConfig(decoding_steps=(4, 2, 2, 2)))
  service = Service(pipeline, ServeOptions(max_wait=0.0, out=str(tmp_path_factory.mktemp('served'))))
  port = free_port()
  uv = uvicorn.Server(uvicorn.Config(create_app(service), host='127.0.0.1', port=port, log_level='warning'))
  thread = threading.Thread(target=uv.run, daemon=True)
  thread.start()
  while not uv.started:
    time.sleep(0.05)
  yield f'http://127.0.0.1:{port}', service
  uv.should_exit = True
  thread.join(120)


@pytest.fixture(scope='module')
def browser():
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for argument in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1000,900'):
    options.add_argument(argument)
  driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
  driver.set_script_timeout(60)
  yield driver
  driver.quit()


@pytest.fixture
def screenshot_on_failure(browser, tmp_path, request):
  """Saves the page when the test body raises."""
  @contextlib.contextmanager
  def guard():
    try:
      yield
    except BaseException:
      folder = os.environ.get('MAGNET_JAX_SCREENSHOTS', str(tmp_path))
      os.makedirs(folder, exist_ok=True)
      path = os.path.join(folder, f'{request.node.name}.png')
      browser.save_screenshot(path)
      print(f'screenshot: {path}')
      raise
  return guard


def _open(browser, url, prompt, duration):
  """The page, loaded, with a prompt and a duration typed in."""
  browser.get(url)
  WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'model-info').text)
  browser.find_element(By.ID, 'prompt').send_keys(prompt)
  browser.find_element(By.ID, 'duration').send_keys(duration)


def _results(browser, count):
  WebDriverWait(browser, 600).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '#history li.result audio'))
                                    >= count or d.find_element(By.ID, 'error').text)
  assert browser.find_element(By.ID, 'error').text == ''
  return browser.find_elements(By.CSS_SELECTOR, '#history li.result')


def _decodes(browser, player) -> dict:
  decoded = browser.execute_async_script(DECODE, player.get_attribute('src'))
  assert 'error' not in decoded, decoded
  return decoded


def test_generate_from_the_page(server, browser, screenshot_on_failure):
  url = server[0]
  with screenshot_on_failure():
    _open(browser, url, 'calm piano', '0.36')
    browser.find_element(By.ID, 'seed').clear()
    browser.find_element(By.ID, 'seed').send_keys('4')  # a typed seed locks it
    browser.find_element(By.ID, 'generate').click()
    [result] = _results(browser, 1)
    assert 'seed 4' in result.text and 'calm piano' in result.text
    decoded = _decodes(browser, result.find_element(By.TAG_NAME, 'audio'))
    assert abs(decoded['seconds'] - 0.36) < 0.01 and decoded['peak'] > 0
    progress = browser.find_element(By.ID, 'progress')
    assert progress.get_attribute('value') == progress.get_attribute('max') == '11'  # 10 decoding steps, the file
    link = result.find_element(By.LINK_TEXT, 'download')
    assert link.get_attribute('download') == 'calm-piano_4.wav'  # the file's name on the server


def test_infill_an_uploaded_region(server, browser, screenshot_on_failure, tmp_path):
  with screenshot_on_failure():
    upload = tmp_path / 'take.wav'
    soundfile.write(upload, 0.3 * np.sin(np.arange(4000) * 0.2), 8000)  # 0.5 s
    browser.find_element(By.ID, 'mode').send_keys('infill')
    browser.find_element(By.ID, 'audio').send_keys(str(upload))
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'infill-end').get_attribute('value'))
    assert browser.find_element(By.ID, 'infill-start').get_attribute('value') == '0.17'  # a third of the file
    browser.find_element(By.ID, 'generate').click()
    latest = _results(browser, 2)[0]
    assert 'infill 0.17-0.33 s' in latest.text
    assert abs(_decodes(browser, latest.find_element(By.TAG_NAME, 'audio'))['seconds'] - 0.5) < 0.01


def _generate(browser, count):
  browser.find_element(By.ID, 'generate').click()
  return _results(browser, count)


def test_an_unlocked_seed_changes_per_generate(server, browser, screenshot_on_failure):
  with screenshot_on_failure():
    browser.get(server[0])
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'model-info').text)
    assert 'layers' not in browser.find_element(By.ID, 'model-info').text  # words, not architecture jargon
    before = len(browser.find_elements(By.CSS_SELECTOR, '#history li.result'))
    browser.find_element(By.ID, 'prompt').send_keys('dice')
    browser.find_element(By.ID, 'duration').send_keys('0.12')
    first = _generate(browser, before + 1)[0].text
    second = _generate(browser, before + 2)[0].text
    seeds = [text.split('seed ')[1].split(',')[0] for text in (first, second)]
    assert seeds[0] != seeds[1] and browser.find_element(By.ID, 'seed').get_attribute('value') == seeds[1]


def test_history_survives_a_reload(server, browser, screenshot_on_failure):
  with screenshot_on_failure():
    count = len(browser.find_elements(By.CSS_SELECTOR, '#history li.result'))
    assert count >= 2
    browser.refresh()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'model-info').text)
    results = browser.find_elements(By.CSS_SELECTOR, '#history li.result')
    assert len(results) == count and _decodes(browser, results[0].find_element(By.TAG_NAME, 'audio'))['seconds'] > 0


def test_mode_controls_upload_removal_touch_and_plain_errors(server, browser, screenshot_on_failure, tmp_path):
  with screenshot_on_failure():
    browser.get(server[0])
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'model-info').text)
    region = browser.find_element(By.ID, 'region')
    browser.find_element(By.ID, 'mode').send_keys('continuation')
    assert browser.find_element(By.ID, 'upload').is_displayed() and not region.is_displayed()
    browser.find_element(By.ID, 'prompt').send_keys('more')
    browser.find_element(By.ID, 'generate').click()  # no audio yet: said in words, nothing sent
    assert browser.find_element(By.ID, 'error').text == 'Choose an audio file to extend first.'
    upload = tmp_path / 'take.wav'
    soundfile.write(upload, 0.3 * np.sin(np.arange(8000) * 0.2), 8000)  # 1 s
    browser.find_element(By.ID, 'mode').send_keys('infill')
    assert region.is_displayed()
    browser.find_element(By.ID, 'audio').send_keys(str(upload))
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'infill-end').get_attribute('value'))
    canvas = browser.find_element(By.ID, 'waveform')
    width = canvas.size['width']
    finger = ActionBuilder(browser, mouse=PointerInput(interaction.POINTER_TOUCH, 'finger'))
    finger.pointer_action.move_to(canvas, -width // 2 + width // 10, 0).pointer_down() \
        .move_to(canvas, width // 2 - width // 10, 0).pointer_up()
    finger.perform()
    start = float(browser.find_element(By.ID, 'infill-start').get_attribute('value'))
    end = float(browser.find_element(By.ID, 'infill-end').get_attribute('value'))
    assert abs(start - 0.1) < 0.03 and abs(end - 0.9) < 0.03  # was a third of the file
    browser.find_element(By.ID, 'remove-audio').click()
    assert browser.find_element(By.ID, 'audio').get_attribute('value') == ''
    browser.find_element(By.ID, 'mode').send_keys('text')
    assert not browser.find_element(By.ID, 'upload').is_displayed()
    browser.find_element(By.ID, 'duration').send_keys('0.12')
    before = len(browser.find_elements(By.CSS_SELECTOR, '#history li.result'))
    _generate(browser, before + 1)  # the removed file no longer gets in the way; the old error is gone
    assert browser.find_element(By.ID, 'error').text == ''


@pytest.mark.parametrize('width', [1280, 400])
def test_the_page_fits_the_screen(server, browser, screenshot_on_failure, width):
  """No sideways scrolling on a desktop or a phone; screenshots go to $MAGNET_JAX_SCREENSHOTS (docs/ holds them)."""
  with screenshot_on_failure():
    browser.set_window_size(width, 1000)
    browser.get(server[0])
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'model-info').text)
    browser.find_element(By.ID, 'prompt').send_keys('fast drum groove with bass at 140 bpm')
    browser.find_element(By.ID, 'mode').send_keys('infill')
    browser.find_element(By.CSS_SELECTOR, '#advanced summary').click()
    assert browser.execute_script('return document.documentElement.scrollWidth') <= width
    folder = os.environ.get('MAGNET_JAX_SCREENSHOTS')
    if folder:
      browser.save_screenshot(os.path.join(folder, f'page-{width}.png'))
    browser.set_window_size(1000, 900)


WATCH_PROGRESS = """
const bar = document.getElementById('progress');
window.seen = [];
window.watching = setInterval(() => window.seen.push(bar.value / bar.max), 20);
"""


def test_progress_moves_per_step_and_cancel_stops_the_job(server, browser, screenshot_on_failure, monkeypatch):
  """The bar follows the decoding steps (paced here so the 0.1 s event poll sees them), and Cancel ends a running
  job: DELETE, the job cancelled on the server, 'cancelled' on the page and no result."""
  url, service = server
  decoded = Job.decoded
  monkeypatch.setattr(Job, 'decoded', lambda job, *args: (time.sleep(0.15), decoded(job, *args)))
  with screenshot_on_failure():
    _open(browser, url, 'calm piano', '0.36')
    browser.find_element(By.CSS_SELECTOR, '#advanced summary').click()
    browser.find_element(By.ID, 'negative').send_keys('hiss')
    before = len(browser.find_elements(By.CSS_SELECTOR, '#history li.result'))
    browser.execute_script(WATCH_PROGRESS)
    _generate(browser, before + 1)
    seen = browser.execute_script('clearInterval(window.watching); return window.seen')
    assert len({round(f, 3) for f in seen if 0 < f < 1}) >= 3 and seen[-1] == 1  # not just 0 -> tokens -> file
    assert service.jobs.latest(1)[0].request['negative'] == 'hiss'
    browser.find_element(By.ID, 'generate').click()
    WebDriverWait(browser, 60).until(lambda d: float(d.find_element(By.ID, 'progress').get_attribute('value')) > 1)
    browser.find_element(By.ID, 'cancel').click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'status').text == 'cancelled')
    assert service.jobs.latest(1)[0].state == 'cancelled' and browser.find_element(By.ID, 'error').text == ''
    assert len(browser.find_elements(By.CSS_SELECTOR, '#history li.result')) == before + 1


def test_the_page_says_how_long_the_warm_up_takes_and_checks_a_tempo(server, browser, screenshot_on_failure):
  url, service = server
  with screenshot_on_failure():
    service.warming = {'total': 3, 'seconds': [0.5], 'started': time.monotonic()}  # one of three took 0.5 s
    try:
      browser.get(url)
      WebDriverWait(browser, 30).until(lambda d: 'warming up' in d.find_element(By.ID, 'status').text)
      assert 'about 1 s left' in browser.find_element(By.ID, 'status').text
      assert not browser.find_element(By.ID, 'generate').is_enabled()
    finally:
      service.warming = None
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'generate').is_enabled())
    assert browser.find_element(By.ID, 'status').text == 'ready'
    browser.find_element(By.ID, 'prompt').send_keys('funk drums')
    browser.find_element(By.ID, 'mode').send_keys('loop')
    browser.find_element(By.CSS_SELECTOR, '#advanced summary').click()
    browser.find_element(By.ID, 'bpm').send_keys('120')  # no bars: said before anything is sent
    browser.find_element(By.ID, 'generate').click()
    assert 'give both the BPM' in browser.find_element(By.ID, 'error').text
    browser.find_element(By.ID, 'bars').send_keys('64')  # 128 s: longer than the server takes
    browser.find_element(By.ID, 'generate').click()
    assert "64 bars at 120 BPM last longer than this server's 30 s" in browser.find_element(By.ID, 'error').text


def test_advanced_controls_reach_the_server_and_long_uploads_stop_at_the_page(server, browser, screenshot_on_failure,
                                                                              tmp_path):
  url, service = server
  with screenshot_on_failure():
    jobs = len(service.jobs)
    _open(browser, url, 'calm piano', '0.36')
    browser.find_element(By.CSS_SELECTOR, '#advanced summary').click()
    browser.find_element(By.ID, 'schedule').send_keys('soon: drums')  # parsed on the server, said in words here
    browser.find_element(By.ID, 'generate').click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'error').text)
    assert browser.find_element(By.ID, 'error').text.startswith('Prompt changes: each entry is SECONDS:TEXT')
    browser.find_element(By.ID, 'schedule').clear()
    browser.find_element(By.ID, 'mode').send_keys('continuation')
    assert browser.find_element(By.ID, 'upload-limit').text == 'audio up to 30 s and 20 MB'  # before submit
    upload = tmp_path / 'long.wav'
    soundfile.write(upload, np.zeros(31 * 8000, np.int16), 8000)  # 31 s
    browser.find_element(By.ID, 'audio').send_keys(str(upload))
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, 'infill-end').get_attribute('value'))  # decoded
    browser.find_element(By.ID, 'duration').clear()
    browser.find_element(By.ID, 'generate').click()
    assert browser.find_element(By.ID, 'error').text == 'That audio is 31.0 s long; this server takes up to 30 s.'
    assert len(service.jobs) == jobs  # nothing was uploaded or queued
    browser.find_element(By.ID, 'remove-audio').click()
