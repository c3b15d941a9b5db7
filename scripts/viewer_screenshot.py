"""Screenshot of the web viewer (for the README): serve a bundle on 127.0.0.1, open an example in Chromium.

Usage: python scripts/viewer_screenshot.py BUNDLE [--background CACHE] [--example PVC] [--out docs/figures/viewer.png]
       python scripts/viewer_screenshot.py starter --record FILE.hea --record FILE.dat --class SNR --out ...

Needs Debian's chromium and the playwright Python package (both installed by .ci/run).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("--background", action="append", default=[])
    parser.add_argument("--example", default="PVC")
    parser.add_argument("--examples", default=None, help="a PTB-XL folder: real examples (serve --examples)")
    parser.add_argument("--record", action="append", default=[], help="upload these files instead of an example")
    parser.add_argument("--class", dest="class_name", default=None, help="class to explain (default: --example)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--out", default="docs/figures/viewer.png")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from conftest import RunningServer
    from ecglens.serve import ServeConfig, create_app
    from test_browser import FLAGS

    server = RunningServer(
        create_app(
            ServeConfig(args.bundle, "cpu", background_caches=tuple(args.background), examples_root=args.examples)
        )
    )
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            page = browser.new_page(viewport={"width": args.width, "height": 900})
            page.goto(server.url)
            if args.record:
                page.set_input_files("#file-input", args.record)
            else:
                page.click(f"#examples button >> text={args.example}")
            page.locator("#ecg .annotation-text").nth(11).wait_for()
            page.select_option("#class-select", args.class_name or args.example)
            page.check("#gradcam-toggle")
            page.wait_for_selector("#ecg[data-gradcam='on'], #ecg[data-gradcam='empty']")
            page.locator("#shap-bars .point").nth(11).wait_for()
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        server.stop()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
