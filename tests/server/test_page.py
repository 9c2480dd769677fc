"""The web page in headless Chromium (Debian's package) driven by Playwright, against a live uvicorn.

Skipped when Playwright or /usr/bin/chromium is missing. Screenshots go to tests/server/artifacts/
(git-ignored).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from srv_helpers import COLORS, TOKEN, LiveServer, png_bytes  # type: ignore[import-not-found]

import omniret
from omniret.server.app import create_app
from omniret.server.settings import ServerSettings

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    from srv_helpers import build_corpus  # type: ignore[import-not-found]

    from omniret.encoders.registry import EncoderEntry, register

    register(EncoderEntry("fake", "fakes:create", "deterministic test encoder", "fake"))
    root = tmp_path_factory.mktemp("page")
    corpus = build_corpus(root / "corpus")
    plain = omniret.open(str(root / "idx"), model="fake")
    plain.add(str(corpus), workers=0)
    with LiveServer(create_app(plain, ServerSettings(token=TOKEN))) as live:
        yield live
    plain.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server.url + "/")
    yield pg
    ctx.close()
    assert not errors, errors


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def result_names(page: Any) -> list[str]:
    return page.locator("#results .hit .name").all_inner_texts()  # type: ignore[no-any-return]


def wait_until(page: Any, js: str, timeout_s: float = 15.0) -> None:
    """Poll ``js`` (a page expression) until true; evaluate() is not subject to the page's strict CSP,
    unlike ``wait_for_function``, which would need 'unsafe-eval'."""
    import time

    deadline = time.monotonic() + timeout_s
    while not page.evaluate(js):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {js}; status: {page.inner_text('#status')!r}, "
                                 f"error: {page.inner_text('#error')!r}")
        page.wait_for_timeout(50)


def wait_results(page: Any, status_word: str) -> None:
    wait_until(page, f"document.getElementById('status').textContent.includes({status_word!r})")


def loaded_images(page: Any) -> int:
    return page.evaluate("Array.from(document.querySelectorAll('#results img.result-img'))"  # type: ignore[no-any-return]
                         ".filter(i => i.complete && i.naturalWidth > 0).length")


def test_type_a_query_with_the_keyboard_and_see_images(page: Any) -> None:
    wait_until(page, "document.getElementById('index-info').textContent.includes('items')")
    page.focus("#q")
    page.keyboard.type("red")
    page.select_option("#modality", "image")
    page.focus("#q")
    page.keyboard.press("Enter")
    wait_results(page, "text query")
    assert len(result_names(page)) == 4
    wait_until(page, "Array.from(document.querySelectorAll('#results img.result-img'))"
                     ".every(i => i.complete && i.naturalWidth > 0)")
    assert loaded_images(page) == 4
    page.focus("#q")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "search-btn"
    assert page.get_attribute("#q", "aria-label") == "Search text"
    shot(page, "text-query")


def test_text_hits_show_snippets(page: Any) -> None:
    page.fill("#q", "a rocket launch sends satellites")
    page.click("#search-btn")
    wait_results(page, "text query")
    assert result_names(page)[0] == "rockets.md"
    assert "satellites" in page.locator("#results .hit .snippet").first.inner_text()


def test_choose_an_image_file_and_see_similar_ones(page: Any, tmp_path: Path) -> None:
    query = tmp_path / "query.png"
    query.write_bytes(png_bytes(COLORS["green"]))
    page.select_option("#modality", "image")
    page.set_input_files("#file", str(query))
    wait_results(page, "query by example")
    assert result_names(page)[0] == "green.png"
    assert page.is_visible("#query-preview")
    shot(page, "query-by-example")


def test_drop_an_image_and_see_similar_ones(page: Any) -> None:
    data = base64.b64encode(png_bytes(COLORS["blue"])).decode()
    page.select_option("#modality", "image")
    page.evaluate("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'dropped.png', {type: 'image/png'}));
        const zone = document.getElementById('drop-zone');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", data)
    wait_results(page, "query by example")
    assert result_names(page)[0] in ("blue.png", "green.png")  # blue is striped: nearest plain colours
    assert "dropped.png" in page.inner_text("#query-preview-name")
    shot(page, "drop")


def test_composed_query_and_more_like_this(page: Any, tmp_path: Path) -> None:
    query = tmp_path / "query.png"
    query.write_bytes(png_bytes(COLORS["red"]))
    page.fill("#q", "but yellow")
    page.select_option("#modality", "image")
    page.set_input_files("#file", str(query))
    wait_results(page, "composed query")
    assert len(result_names(page)) == 4
    shot(page, "composed")
    page.click("#clear-file")
    page.fill("#q", "")
    first = page.locator("#results .hit").first
    liked = first.get_attribute("data-id")
    first.locator("button.more-like").click()
    wait_results(page, "items like")
    ids = [h.get_attribute("data-id") for h in page.locator("#results .hit").all()]
    assert len(ids) == 3 and liked not in ids  # the other images; the example itself is left out
    shot(page, "more-like-this")


def test_errors_are_shown(page: Any) -> None:
    page.fill("#q", "")
    page.click("#search-btn")
    assert page.is_visible("#error")
    page.fill("#k", "3")
    page.fill("#q", "cats")
    page.click("#search-btn")
    wait_results(page, "3 result")
    assert not page.is_visible("#error")


def test_phone_layout_has_no_horizontal_scroll(browser: Any, server: LiveServer) -> None:
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    pg = ctx.new_page()
    pg.goto(server.url + "/")
    pg.fill("#q", "cats")
    pg.keyboard.press("Enter")
    wait_results(pg, "text query")
    assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(pg, "phone")
    ctx.close()


def test_nothing_broken_shows_on_load(page: Any) -> None:
    """Regression: the query preview (an image with no src, and its ×) showed on load: CSS undid ``hidden``."""
    wait_until(page, "document.getElementById('index-info').textContent.includes('items')")
    assert not page.is_visible("#query-preview") and not page.is_visible("#clear-file")
    assert not page.is_visible("#query-preview-img") and not page.is_visible("#error")
    broken = page.evaluate("Array.from(document.images).filter(i => i.offsetParent !== null"
                           " && !(i.complete && i.naturalWidth > 0)).length")
    assert broken == 0


def test_a_new_query_clears_the_old_results(page: Any) -> None:
    page.fill("#q", "cats")
    page.click("#search-btn")
    wait_results(page, "text query")
    assert result_names(page)
    page.fill("#q", "")
    page.click("#search-btn")  # an empty query: an error, and no stale results under it
    assert page.is_visible("#error") and result_names(page) == [] and page.inner_text("#status") == ""
    page.fill("#q", "rocket")
    page.click("#search-btn")
    wait_results(page, "text query")
    assert not page.is_visible("#error") and result_names(page)


@pytest.fixture(scope="module")
def doc_server(texdoc: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    import shutil

    root = tmp_path_factory.mktemp("docs")
    (root / "docs").mkdir()
    shutil.copy(texdoc / "carlisle" / "ltxtable.pdf", root / "docs" / "ltxtable.pdf")  # 3 pages
    idx = omniret.open(str(root / "idx"), model="fake")
    idx.add(str(root / "docs"), workers=0, pdf_ocr=False)
    with LiveServer(create_app(idx, ServerSettings(token=TOKEN))) as live:
        yield live
    idx.close()


def test_pages_and_rolled_up_documents_read_well(browser: Any, doc_server: LiveServer) -> None:
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.goto(doc_server.url + "/")
    pg.fill("#k", "12")
    pg.select_option("#granularity", "parent")
    pg.fill("#q", "longtable")
    pg.click("#search-btn")
    wait_results(pg, "text query")
    names = result_names(pg)
    pages = {"ltxtable.pdf p. 1", "ltxtable.pdf p. 2", "ltxtable.pdf p. 3"}
    assert pages <= set(names), names
    # the document itself (its title matches) reads as title and page count, never a bare path
    assert all(n.startswith("ltxtable.pdf: ") and n.endswith(" · 3 pages") for n in set(names) - pages), names
    metas = pg.locator("#results .hit .meta").all_inner_texts()
    for name, meta in zip(names, metas, strict=True):
        if name in pages:
            assert meta.endswith(f"page {name.rsplit(' ', 1)[1]}")  # the page the label names, not the next one
    wait_until(pg, "Array.from(document.querySelectorAll('#results img.result-img'))"
                   ".every(i => i.complete && i.naturalWidth > 0)")  # every page's thumbnail, the last one too
    shot(pg, "pages")
    pg.select_option("#granularity", "root")
    pg.click("#search-btn")
    wait_results(pg, "1 result")
    (doc,) = result_names(pg)
    assert doc.startswith("ltxtable.pdf: ") and doc.endswith(" · 3 pages"), doc
    shot(pg, "document")
    ctx.close()


def test_page_hits_outline_their_matched_blocks(browser: Any, doc_server: LiveServer) -> None:
    """Issue 15.3: a page hit (the default) shows its matched blocks highlighted on the page's thumbnail,
    drawn where the blocks are on the picture (inside the letterboxed page, not the card's frame)."""
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = ctx.new_page()
    pg.goto(doc_server.url + "/")
    pg.fill("#q", "longtable")
    pg.click("#search-btn")
    wait_results(pg, "text query")
    wait_until(pg, "document.querySelectorAll('#results .hit .region').length > 0")
    shot(pg, "matched-blocks")
    boxes = pg.evaluate("""Array.from(document.querySelectorAll('#results .hit .thumb')).flatMap((t) => {
        const img = t.querySelector('img'), f = t.getBoundingClientRect();
        const s = Math.min(f.width / img.naturalWidth, f.height / img.naturalHeight);
        const pic = {x: f.x + (f.width - img.naturalWidth * s) / 2, y: f.y + (f.height - img.naturalHeight * s) / 2,
                     w: img.naturalWidth * s, h: img.naturalHeight * s};
        return Array.from(t.querySelectorAll('.region')).map((r) => {
          const b = r.getBoundingClientRect();
          return {pic, b: {x: b.x, y: b.y, w: b.width, h: b.height}};
        });
      })""")
    assert boxes, "no matched block drawn"
    for one in boxes:
        pic, b = one["pic"], one["b"]
        assert b["w"] > 0 and b["h"] > 0
        assert pic["x"] - 1 <= b["x"] and b["x"] + b["w"] <= pic["x"] + pic["w"] + 1, one
        assert pic["y"] - 1 <= b["y"] and b["y"] + b["h"] <= pic["y"] + pic["h"] + 1, one
    ctx.close()
