"""The framework floor for bench_http.py: a minimal FastAPI endpoint doing one INSERT."""
from __future__ import annotations

import contextlib
import os

from fastapi import FastAPI
from psycopg_pool import ConnectionPool

_pool: ConnectionPool | None = None


@contextlib.asynccontextmanager
async def _lifespan(_app: FastAPI):
    # one pool per process, opened before the first request: made lazily, concurrent first
    # requests each made one, and the spares' garbage collection, in one of their own
    # threads, failed at exit ("cannot join current thread")
    global _pool
    url = os.environ["FLOOR_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
    _pool = ConnectionPool(url, min_size=2, max_size=int(os.environ.get("DB_POOL_SIZE", "10")), open=True)
    try:
        yield
    finally:
        _pool.close()


app = FastAPI(lifespan=_lifespan)


@app.post("/insert", status_code=201)
def insert(body: dict) -> dict:
    assert _pool is not None
    with _pool.connection() as conn:
        row = conn.execute("INSERT INTO bench_floor (payload) VALUES (%s) RETURNING id", (str(body)[:200],)).fetchone()
    return {"id": row[0]}
