"""The attention explorer in a real browser: headless Chromium (Debian's
`chromium` and `chromium-driver`, which `.ci/run` installs) drives the page
that the server serves, against the small exports of `serving_exports`,
and every number the page shows is checked against the server's own
`:predict` answer for the same input. Screenshots of each view go to the
test's output (`explorer-*.png`)."""

import http.server
import math
import os
import re
import shutil
import threading
import urllib.error
import urllib.request

import pytest

from server_process import running_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SENTENCE = "In the beginning God created the heavens."  # two words from the fixture
WAIT_SECONDS = 120


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def server(translator_dir, captioner_dir, video_captioner_dir, tmp_path_factory):
    config = tmp_path_factory.mktemp("explorer") / "models.config"
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{path}" model_platform: "tensorflow" }}\n'
        for name, path in (("translator", translator_dir), ("captioner", captioner_dir),
                           ("video", video_captioner_dir)))
    config.write_text(f"model_config_list {{\n{entries}}}\n")
    with running_server("--model_config_file", str(config)) as (client, _):
        yield client


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail("the explorer tests need Chromium and its driver: "
                    "apt-get install chromium chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1200,1000"):
        options.add_argument(argument)
    # The system's driver, named: Selenium never looks for one on the internet.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


# ------------------------------------------------------------------ helpers
def by_css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def wait_state(driver, *states):
    """Waits (bounded) for the page's status to reach one of `states`."""
    from selenium.webdriver.support.ui import WebDriverWait

    status = by_css(driver, "#status")
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda _: by_css(driver, "#status")[0].get_attribute("data-state") in states,
        message=f"status never reached {states}")
    return by_css(driver, "#status")[0].get_attribute("data-state") if status else None


def open_page(driver, url):
    driver.get(url)
    assert wait_state(driver, "ready", "failed") == "ready", by_css(driver, "#error")[0].text


def choose(driver, select_id, value):
    from selenium.webdriver.support.ui import Select

    Select(by_css(driver, f"#{select_id}")[0]).select_by_value(value)


def run_and_wait(driver):
    by_css(driver, "#run")[0].click()
    return wait_state(driver, "done", "failed")


def point_at(driver, element):
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    ActionChains(driver).move_to_element(element).perform()


def predict(client, model, signature, value):
    status, answer = client.post(f"/v1/models/{model}:predict",
                                 {"signature_name": signature, "instances": [value]})
    assert status == 200, answer
    return answer["predictions"][0]


def weights(elements):
    return [float(element.get_attribute("data-weight")) for element in elements]


def scene_png():
    """A generated scene (what the captioning task trains on), as PNG bytes."""
    import tensorflow as tf

    from training.captioning import scenes

    return tf.io.encode_png(scenes.generate_scenes(1, seed=7)[0].image).numpy()


def clip_gif(frames):
    """A generated clip (what the video task trains on), as an animated GIF."""
    from training.video import clips, data

    return data.encode_gif(clips.generate_clips(1, seed=3, frame_count=frames)[0].frames)


def write_file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


# ------------------------------------------------------------------ views
def test_translation_heatmap_is_the_predict_answer(server, browser, screenshots):
    open_page(browser, f"{server.base}/ui/translator")
    by_css(browser, "#source-text")[0].send_keys(SENTENCE)
    choose(browser, "decoding", "greedy")
    assert run_and_wait(browser) == "done"

    want = predict(server, "translator", "serving_default", {"source_text": SENTENCE})
    length, sources = want["length"], want["source_length"]
    rows = by_css(browser, "#heatmap tbody tr")
    assert len(rows) == length  # one row per output word
    assert [th.text for th in by_css(browser, "#heatmap th.source")] == \
        want["source_tokens"][:sources]  # one column per source word
    for t, row in enumerate(rows):
        assert weights(by_css(row, "td.cell")) == pytest.approx(
            want["attention"][t][:sources], abs=1e-6)
    tokens = by_css(browser, "#output-tokens .token")
    assert [token.text for token in tokens] == [text or "∅" for text in want["tokens"][:length]]

    # Pointing at an output word marks its row; Tab moves to the next word.
    point_at(browser, tokens[1])
    assert "active" in rows[1].get_attribute("class")
    from selenium.webdriver.common.keys import Keys

    tokens[0].send_keys(Keys.TAB)  # focus moves to the second word
    assert browser.switch_to.active_element == tokens[1]
    # And the reverse: pointing at a source word shades each output word by
    # its weight there (alpha = sqrt(weight), the page's scale).
    point_at(browser, by_css(browser, "#heatmap th.source")[0])
    alphas = [float(re.search(r"rgba\(255, 111, 0, ([\d.]+)\)",
                              token.get_attribute("style")).group(1)) for token in tokens]
    assert alphas == pytest.approx([math.sqrt(want["attention"][t][0]) for t in range(length)],
                                   abs=2e-3)
    browser.save_screenshot(str(screenshots / "explorer-translation.png"))


def test_beam_search_shows_the_n_best_with_their_scores(server, browser):
    open_page(browser, f"{server.base}/ui/translator")
    by_css(browser, "#source-text")[0].send_keys(SENTENCE)
    choose(browser, "decoding", "beam")
    assert run_and_wait(browser) == "done"

    want = predict(server, "translator", "beam_search", {"source_text": SENTENCE})
    items = by_css(browser, "#hypotheses li")
    assert len(items) == len(want["text"]) > 1
    for item, text, score in zip(items, want["text"], want["score"]):
        assert item.text.startswith(text or "(empty)")
        assert f"score {score:.3f}" in item.text
    # Another hypothesis, with its own words and attention.
    other = max(range(1, len(items)), key=lambda n: want["length"][n])
    assert want["length"][other] >= 1
    items[other].click()
    rows = by_css(browser, "#heatmap tbody tr")
    assert len(rows) == want["length"][other]
    sources = want["source_length"]
    assert weights(by_css(rows[0], "td.cell")) == pytest.approx(
        want["attention"][other][0][:sources], abs=1e-6)


def test_captioning_lays_the_pointed_word_over_the_image(server, browser, screenshots,
                                                         tmp_path):
    image = scene_png()
    open_page(browser, f"{server.base}/ui/captioner")
    by_css(browser, "#file")[0].send_keys(write_file(tmp_path, "scene.png", image))
    assert run_and_wait(browser) == "done"

    import base64

    want = predict(server, "captioner", "serving_default",
                   {"image_bytes": {"b64": base64.b64encode(image).decode()}})
    length = want["length"]
    tokens = by_css(browser, "#output-tokens .token")
    assert len(tokens) == length >= 2
    assert len(by_css(browser, "#word-maps figure")) == length  # a strip of every word's map
    pointed = length - 1
    point_at(browser, tokens[pointed])
    grid = want["attention"][pointed]
    cells = by_css(browser, "#overlay .grid div")
    assert len(cells) == len(grid) * len(grid[0])
    assert weights(cells) == pytest.approx([w for row in grid for w in row], abs=1e-6)
    assert by_css(browser, "#overlay .grid")[0].get_attribute("data-index") == str(pointed)
    browser.save_screenshot(str(screenshots / "explorer-captioning.png"))


def test_video_shows_each_words_attention_over_the_frames(server, browser, screenshots,
                                                          tmp_path):
    clip = clip_gif(frames=8)
    open_page(browser, f"{server.base}/ui/video")
    by_css(browser, "#file")[0].send_keys(write_file(tmp_path, "clip.gif", clip))
    assert run_and_wait(browser) == "done"

    import base64

    want = predict(server, "video", "gif_greedy",
                   {"video_bytes": {"b64": base64.b64encode(clip).decode()}})
    frames = by_css(browser, "#frame-strip .frame")
    assert len(frames) == want["frame_count"] == 8
    tokens = by_css(browser, "#output-tokens .token")
    point_at(browser, tokens[-1])
    assert weights(frames) == pytest.approx(want["attention"][len(tokens) - 1][:8], abs=1e-6)
    assert len(by_css(browser, "#heatmap tbody tr")) == want["length"]
    browser.save_screenshot(str(screenshots / "explorer-video.png"))


def test_a_bad_file_is_reported_in_plain_words(server, browser, tmp_path):
    open_page(browser, f"{server.base}/ui/captioner")
    by_css(browser, "#file")[0].send_keys(write_file(tmp_path, "notes.png", b"not an image"))
    assert run_and_wait(browser) == "failed"
    status, answer = server.post("/v1/models/captioner:predict", {
        "instances": [{"image_bytes": {"b64": "bm90IGFuIGltYWdl"}}]})
    message = by_css(browser, "#error")[0].text
    assert message == f"The server answered {status}: {answer['error']}"
    assert status == 400


def test_the_page_fetches_nothing_from_another_host(server, browser):
    open_page(browser, f"{server.base}/")
    choose(browser, "model", "translator")
    assert wait_state(browser, "ready", "failed") == "ready"
    by_css(browser, "#source-text")[0].send_keys(SENTENCE)
    assert run_and_wait(browser) == "done"
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)")
    assert fetched and all(url.startswith(server.base + "/") for url in fetched), fetched
    page = browser.page_source
    assert "http://" not in page.replace(server.base, "") and "https://" not in page


def test_the_page_works_behind_a_path_prefix(server, browser):
    with prefix_proxy("/serving/models", server.base) as base:
        open_page(browser, f"{base}/serving/models/ui/translator")
        by_css(browser, "#source-text")[0].send_keys(SENTENCE)
        assert run_and_wait(browser) == "done"
        assert len(by_css(browser, "#heatmap tbody tr")) > 0
        urls = browser.execute_script(
            "return performance.getEntriesByType('resource').map((entry) => entry.name)")
    assert all(url.startswith(f"{base}/serving/models/") for url in urls), urls


def test_the_metadata_route_names_its_errors(server):
    status, answer = server.get("/ui/api/models/nobody/metadata")
    assert status == 404 and "nobody" in answer["error"]
    status, answer = server.get("/ui/api/models/translator/metadata?version=two")
    assert status == 400 and "'two'" in answer["error"]
    status, answer = server.get("/ui/api/models/translator/metadata")
    assert status == 200 and answer["task"] == "translation" and answer["version"] == 1


def asgi_get(app, path):
    """The status of `GET path` from the ASGI `app`, called directly."""
    import anyio

    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "root_path": "", "query_string": b"", "headers": [],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    anyio.run(app, scope, receive, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_no_ui_serves_the_api_alone():
    from keras_attention.serving.app import ServerOptions, create_app
    from keras_attention.serving.repository import ModelRepository
    from keras_attention.serving.server import parse_args

    assert parse_args(["--model_base_path", "x", "--no_ui"]).no_ui
    assert not parse_args(["--model_base_path", "x"]).no_ui
    for explorer, page_status in ((True, 200), (False, 404)):
        app = create_app(ModelRepository([]), ServerOptions(explorer=explorer))
        assert asgi_get(app, "/") == page_status
        assert asgi_get(app, "/ui/translator") == page_status
        assert asgi_get(app, "/monitoring/prometheus/metrics") == 200


# ------------------------------------------------------------------ a reverse proxy
class prefix_proxy:
    """Serves `target` under `prefix` on a loopback port, as a reverse proxy
    (KServe, nginx) does: `/prefix/x` -> `target/x`; anything else 404."""

    def __init__(self, prefix, target):
        self.prefix, self.target = prefix, target

    def __enter__(self):
        prefix, target = self.prefix, self.target

        class Forward(http.server.BaseHTTPRequestHandler):
            def _forward(self):
                if not self.path.startswith(prefix + "/"):
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                request = urllib.request.Request(
                    target + self.path[len(prefix):], method=self.command,
                    data=self.rfile.read(length) if length else None,
                    headers={"Content-Type": self.headers.get("Content-Type", "text/plain")})
                try:
                    with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
                        status, body, kind = response.status, response.read(), \
                            response.headers.get("Content-Type")
                except urllib.error.HTTPError as error:
                    status, body, kind = error.code, error.read(), \
                        error.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", kind or "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _forward

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_static_files_ship_with_the_package():
    from keras_attention.serving import explorer

    names = sorted(os.listdir(explorer.STATIC))
    assert names == ["explorer.css", "explorer.js", "index.html"]
