"""The live page (/live) in Debian's chromium (headless, selenium; the fixtures of test_browser.py): audio arrives
over the WebSocket, every chunk is scheduled right where the previous one ends (no gaps), and a prompt typed while
it plays reaches the server and shows in the metadata of the window it applies from."""
import itertools

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.serving.test_browser import browser, screenshot_on_failure, server  # noqa: F401 (fixtures)

SCHEDULED = 'return window.live.scheduled'


def _scheduled(driver, count: int) -> list[dict]:
  WebDriverWait(driver, 300).until(lambda d: len(d.execute_script(SCHEDULED)) >= count
                                   or d.find_element(By.ID, 'error').text)
  assert driver.find_element(By.ID, 'error').text == ''
  return driver.execute_script(SCHEDULED)


def test_live_page_plays_gaplessly_and_follows_the_prompt(server, browser, screenshot_on_failure):  # noqa: F811
  url, service = server
  with screenshot_on_failure():
    browser.get(f'{url}/live')
    prompt = browser.find_element(By.ID, 'live-prompt')
    prompt.clear()
    prompt.send_keys('calm piano')
    browser.find_element(By.ID, 'live-seed').send_keys('3')
    browser.find_element(By.ID, 'live-start').click()
    first = _scheduled(browser, 3)
    assert [c['index'] for c in first] == list(range(len(first)))
    assert browser.execute_script('return window.live.info.sample_rate') == service.pipeline.sample_rate
    prompt.clear()
    prompt.send_keys('loud drums')
    browser.find_element(By.ID, 'live-change').click()
    WebDriverWait(browser, 60).until(lambda d: d.execute_script('return window.live.changes.length'))
    applies = browser.execute_script('return window.live.changes[0].applies_from')
    chunks = _scheduled(browser, applies + 2)
    assert [c['prompt'] for c in chunks[:applies + 2]] == ['calm piano'] * applies + ['loud drums'] * 2
    for before, after in itertools.pairwise(chunks):  # contiguous: each starts where the previous one ends
      assert abs(after['when'] - (before['when'] + before['duration'])) < 1e-9
    assert browser.execute_script('return window.live.underruns') == 0
    assert sum(c['duration'] for c in chunks) > 1.0
    assert 'window 0 at 0.00 s: calm piano' in browser.find_element(By.ID, 'live-chunks').text
    browser.find_element(By.ID, 'live-stop').click()
    assert browser.find_element(By.ID, 'live-status').text.startswith('stopped')
