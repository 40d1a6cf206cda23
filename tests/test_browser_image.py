"""The Image page in a real browser: upload a picture, see the all-heads grid, download an overlay PNG; a bad file
shows an error, not a traceback; markup in a file name is shown literally."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser import assert_inert, wait_idle, wait_image_loaded

pytestmark = pytest.mark.browser


ROOT = Path(__file__).resolve().parents[1]


def open_image_page(page, url: str) -> None:
    page.goto(f"{url}/Image", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Image attention").wait_for(timeout=120_000)
    wait_idle(page, 240_000)


def upload(page, path: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))


def test_upload_shows_grid_and_downloads_overlay(app_server, browser_page, artifacts, tmp_path):
    page = browser_page
    open_image_page(page, app_server)
    picture = tmp_path / "coffee-upload.png"
    Image.open(ROOT / "assets" / "examples" / "coffee.jpg").save(picture)
    upload(page, picture)
    # The result's own description, not the uploader's file chip (which shows at once, while the example's
    # result is still on the page): the upload has been run.
    page.locator('[data-testid="stCaptionContainer"]', has_text="coffee-upload.png (PNG").first.wait_for(
        timeout=240_000)
    page.get_by_text("all 72 heads", exact=False).first.wait_for(timeout=120_000)
    wait_idle(page, 240_000)
    grid = page.locator('[data-testid="stImage"] img').nth(0)
    wait_image_loaded(page, grid)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(artifacts / "image_page.png"), full_page=True)

    with page.expect_download() as dl:
        page.get_by_role("button", name="Focused overlay (PNG)").click()
    img = Image.open(io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert img.format == "PNG" and img.mode == "RGB" and max(img.size) == 640

    with page.expect_download() as dl:
        page.get_by_role("button", name="All heads (PNG)").click()
    grid_png = Image.open(io.BytesIO(Path(dl.value.path()).read_bytes()))
    assert grid_png.width > 6 * 96 and grid_png.height > 12 * 60

    # Click patch (row 4, column 10) of the 16x16 grid on the picture: its attention replaces [CLS]'s.
    chosen = page.get_by_role("heading", name="All heads: attention of patch (4, 10)")
    picker = page.locator('[data-testid="stPlotlyChart"] .nsewdrag').first
    for attempt in range(3):  # a click that lands while the page still moves or Plotly redraws is lost: aim again
        wait_idle(page)
        picker.scroll_into_view_if_needed()
        box = picker.bounding_box()
        x, y = box["x"] + box["width"] * 10.5 / 16, box["y"] + box["height"] * 4.5 / 16
        page.mouse.move(x, y)
        page.wait_for_timeout(200)  # Plotly needs a hover before it reports a click on a point
        page.mouse.click(x, y)
        try:
            chosen.wait_for(timeout=15_000 * (attempt + 1))
            break
        except PlaywrightTimeout:
            continue
    chosen.wait_for(timeout=1_000)


def test_bad_upload_shows_error(app_server, browser_page, tmp_path):
    page = browser_page
    open_image_page(page, app_server)
    bad = tmp_path / "not-a-picture.png"
    bad.write_text("hello, I am text")
    upload(page, bad)
    alert = page.locator('[data-testid="stAlert"]', has_text="not an image")
    alert.first.wait_for(timeout=120_000)
    assert page.locator('[data-testid="stException"]').count() == 0


@pytest.mark.parametrize(("name", "data"), [("notes.txt", b"hello, I am text\n"),
                                            ("paper.pdf", b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n")],
                         ids=["txt", "pdf"])
def test_upload_of_another_file_type_says_what_to_upload(app_server, browser_page, tmp_path, name, data):
    """Not refused by the uploader itself (Streamlit then shows its reason only in a hover tooltip and the page keeps
    the example's result): the page says in view that it is not an image and what to upload instead."""
    page = browser_page
    open_image_page(page, app_server)
    bad = tmp_path / name
    bad.write_bytes(data)
    upload(page, bad)
    alert = page.locator('[data-testid="stAlert"]', has_text="not an image")
    alert.first.wait_for(timeout=120_000)
    assert alert.first.is_visible() and "Upload PNG, JPEG, WebP, BMP, GIF" in alert.first.inner_text()
    wait_idle(page)
    assert page.locator('[data-testid="stCaptionContainer"]', has_text="cat.jpg").count() == 0  # no stale result


def test_markup_in_an_uploaded_file_name_is_literal(app_server, browser_page):
    """The Image page names the uploaded file in a Markdown caption: its name must show as typed, not as bold text,
    a colour, maths or a link."""
    from tests.image_files import encode, halves

    page = browser_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{app_server}/Image", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Image attention").wait_for(timeout=120_000)
    wait_idle(page, 240_000)
    name = "**bold** _it_ :red[RED] $x^2$ [link](https:evil.example) <img src=x onerror=alert(1)>.png"
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        {"name": name, "mimeType": "image/png", "buffer": encode(halves((96, 64)), "PNG")})
    caption = page.locator('[data-testid="stCaptionContainer"]', has_text="(PNG, 96×64").first
    caption.wait_for(timeout=240_000)
    wait_idle(page, 240_000)
    assert caption.text_content().startswith(name + " (PNG, 96×64")
    assert caption.locator("a, .katex, em, [style*='color']").count() == 0
    assert caption.locator("strong").first.text_content() == name  # the name is bold as a whole, nothing inside it
    assert_inert(page, dialogs)
