"""`GET /api/docs`: Swagger UI from the files of a pinned Python package (fastapi-offline ships
the swagger-ui dist), never a CDN, so the docs work offline and under our CSP (no inline
script: the page loads `swagger-init.js`, a file of this package)."""
from __future__ import annotations

import html
import pathlib

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_PATH = "/api/docs"
#: swagger-ui-bundle.js, swagger-ui.css, favicon.png of the installed package
SWAGGER_DIR = pathlib.Path(fastapi_offline.__file__).parent / "static"
INIT_JS = pathlib.Path(__file__).parent / "static" / "swagger-init.js"


def docs_page(*, title: str, openapi_url: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} – docs</title>
<link rel="icon" href="{DOCS_PATH}/static/favicon.png">
<link rel="stylesheet" href="{DOCS_PATH}/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{html.escape(openapi_url)}"></div>
<script src="{DOCS_PATH}/static/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/swagger-init.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """The docs page, its start script and the package's Swagger UI files (create the app
    with docs_url=None so FastAPI's CDN page is not registered)."""
    page = docs_page(title=app.title, openapi_url=app.openapi_url or "/api/openapi.json")

    async def swagger_ui() -> HTMLResponse:
        return HTMLResponse(page)

    async def swagger_init() -> FileResponse:
        return FileResponse(INIT_JS, media_type="text/javascript")

    app.add_api_route(DOCS_PATH, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{DOCS_PATH}/swagger-init.js", swagger_init, methods=["GET"], include_in_schema=False)
    app.mount(f"{DOCS_PATH}/static", StaticFiles(directory=SWAGGER_DIR), name="swagger-ui")
