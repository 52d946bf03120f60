"""Benchmark: a page without a filler through api/prerender.PrerenderMiddleware, with its
cache of rewritten pages and without it (`cache_pages=0`: every request moves the scripts,
hashes and gzips the page again, as before the cache), in the same run.

    .venv/bin/python bench/bench_prerender.py [--requests 2000] [--rounds 5] [--page built.html]

The middleware alone, called in-process around an ASGI app that answers every request with
the same HTML page (no server, no other middleware, no socket): --page a page of Reflex's
build (`.web/build/client/index.html`), else a page of the same shape made here (React
Router's start-up script, 30 modulepreload hints, ~40 KB of markup). For each encoding
(identity, gzip) and variant, the median of --rounds rounds of --requests requests (the
variants' rounds take turns): wall-clock and CPU µs per request, requests/s (wall-clock);
then the ratio uncached/cached of the CPU time, the steadier figure on a shared machine.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import asyncio
import pathlib
import random
import statistics
import string
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from booking_app.api.prerender import CACHE_PAGES, PrerenderMiddleware  # noqa: E402


def made_page() -> str:
    """A page shaped like the build's: preload hints, stylesheet, markup, start-up script."""
    modules = [f"/assets/chunk-{n:02d}-Bx{n:03d}qZ.js" for n in range(27)]
    head = "".join(f'<link rel="modulepreload" href="{src}"/>' for src in
                   ["/assets/manifest-ac313719.js", "/assets/entry.client-BcBPaK_9.js", "/assets/root-BrqjldWq.js",
                    *modules])
    rng = random.Random(22)  # texts and class hashes that compress like a page's (about 5:1)
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9))) for _ in range(400)]
    card = ('<div class="rt-Card rt-r-size-2 rt-variant-surface css-{css}"><div class="rt-Flex rt-r-fd-column '
            'rt-r-gap-2"><h2 dir="auto" class="rt-Heading rt-r-size-4">{title}</h2><p class="rt-Text '
            'rt-r-size-2">{text}</p><span class="rt-Badge rt-r-size-1 rt-variant-soft">Room</span>'
            '<a href="/service?id={n}" class="rt-Button rt-r-size-2 rt-variant-solid">Book</a></div></div>')
    body = "".join(card.format(n=n, css="".join(rng.choices(string.ascii_lowercase + string.digits, k=6)),
                               title=" ".join(rng.choices(words, k=3)).title(),
                               text=" ".join(rng.choices(words, k=40)) + ".")
                   for n in range(60))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charSet="utf-8"/>' + head +
        '<link href="/assets/__reflex_global_styles-CHh6nM92.css" rel="stylesheet" type="text/css"/></head>'
        '<body><div id="app-root"><main>' + body + '</main></div>'
        '<script>window.__reactRouterContext = {"ssr":false};</script>'
        '<script type="module" async="">import "/assets/manifest-ac313719.js";\n'
        'import * as route0 from "/assets/root-BrqjldWq.js";\n'
        'import * as route1 from "/assets/_index-BfGCawze.js";\n  \n'
        '  window.__reactRouterRouteModules = {"root":route0,"routes/_index":route1};\n\n'
        'import("/assets/entry.client-BcBPaK_9.js");</script></body></html>'
    )


def static_page(body: bytes):
    """An ASGI app answering every request with `body`, the way a static file is sent."""
    headers = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               (b"etag", b'"0123456789abcdef"'), (b"last-modified", b"Sun, 06 Dec 2026 12:00:00 GMT")]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def measure(middleware, encoding: bytes, requests: int) -> tuple[float, float, int]:
    """`requests` GETs of / (after one to warm up) → (wall µs, CPU µs per request, bytes sent)."""
    scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
             "headers": [(b"host", b"bench"), (b"accept-encoding", encoding)]}
    sent = [0]

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.body":
            sent[0] = len(message.get("body", b""))

    await middleware(scope, receive, send)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(requests):
        await middleware(scope, receive, send)
    return (time.perf_counter() - t0) / requests * 1e6, (time.process_time() - c0) / requests * 1e6, sent[0]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--page", type=pathlib.Path, help="a built page (default: one made here)")
    ap.add_argument("--quick", action="store_true", help="a tiny workload (the test suite's)")
    args = ap.parse_args()
    if args.quick:
        args.requests, args.rounds = 20, 1
    body = args.page.read_bytes() if args.page else made_page().encode()
    print(f"page: {args.page or 'made here'}, {len(body):,} bytes; {args.rounds} rounds of {args.requests} requests")
    print()
    print(f"{'encoding':<9} {'variant':<9} {'wall us':>9} {'CPU us':>8} {'requests/s':>11} {'bytes sent':>11}")
    print("-" * 62)
    ratios = {}
    for encoding in ("identity", "gzip"):
        middlewares = {"uncached": PrerenderMiddleware(static_page(body), cache_pages=0),
                       "cached": PrerenderMiddleware(static_page(body), cache_pages=CACHE_PAGES)}
        rounds: dict[str, list[tuple[float, float, int]]] = {variant: [] for variant in middlewares}
        for _ in range(args.rounds):  # the variants take turns: both see the machine's load alike
            for variant, middleware in middlewares.items():
                rounds[variant].append(asyncio.run(measure(middleware, encoding.encode(), args.requests)))
        cpu = {}
        for variant, runs in rounds.items():
            wall, cpu[variant] = (statistics.median(r[i] for r in runs) for i in (0, 1))
            print(f"{encoding:<9} {variant:<9} {wall:>9.1f} {cpu[variant]:>8.1f} {1e6 / wall:>11,.0f} "
                  f"{runs[0][2]:>11,}")
        ratios[encoding] = cpu["uncached"] / cpu["cached"]
    print()
    for encoding, ratio in ratios.items():
        print(f"ratio uncached/cached, CPU per request ({encoding}): {ratio:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
