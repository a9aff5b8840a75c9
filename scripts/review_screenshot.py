"""Screenshot Label Studio's labeling page for the first task of a `hardneg review export` folder
(docs/img/review-labeling.png). Starts a throwaway Label Studio (tests/label_studio_server.py), logs
in with headless Chromium through Playwright, creates the project, picks 'hard' and shoots.

Playwright is not a hardneg dependency: run this from a throwaway venv with the system Chromium, and
with label-studio on PATH (see docs/review.md, "The screenshot")."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from label_studio_server import running_label_studio  # noqa: E402

OWNER = "annotator@example.com"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("review", type=Path, help="folder written by `hardneg review export`")
    parser.add_argument("output", type=Path, help="PNG to write")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium executable")
    parser.add_argument("--size", default="1280x860", help="viewport, WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as folder, running_label_studio(Path(folder), OWNER, password) as base:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(base + "/user/login/")
            page.fill("input[name=email]", OWNER)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_load_state("networkidle")
            csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
            headers = {"X-CSRFToken": csrf, "Referer": base + "/"}  # the browser's session calls the API
            config = (args.review / "labeling_config.xml").read_text(encoding="utf-8")
            answer = page.request.post(
                base + "/api/projects/",
                headers=headers,
                data={"title": "hardneg review", "label_config": config},
            )
            if not answer.ok:
                sys.exit(
                    f"{args.review / 'labeling_config.xml'}: Label Studio refused it: {answer.text()[:300]}"
                )
            project = answer.json()["id"]
            tasks = json.loads((args.review / "tasks.json").read_text(encoding="utf-8"))
            answer = page.request.post(f"{base}/api/projects/{project}/import", headers=headers, data=tasks)
            if not answer.ok:
                sys.exit(f"{args.review / 'tasks.json'}: Label Studio refused it: {answer.text()[:300]}")
            page.goto(f"{base}/projects/{project}/data?labeling=1")  # the labeling stream, first task
            page.get_by_role("radio", name="hard").click(timeout=120_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(args.output))
            browser.close()
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
