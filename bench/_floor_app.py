"""The framework floor for bench_http.py: a minimal FastAPI endpoint doing one INSERT."""
from __future__ import annotations

import contextlib
import os

from fastapi import FastAPI
from psycopg_pool import ConnectionPool

_pool: ConnectionPool | None = None


@contextlib.asynccontextmanager
async def _lifespan(_app: FastAPI):
    yield
    if _pool is not None:  # closed here, not by the garbage collector in a pool thread at exit
        _pool.close()


app = FastAPI(lifespan=_lifespan)


def pool() -> ConnectionPool:
    global _pool
    if _pool is None:
        url = os.environ["FLOOR_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        _pool = ConnectionPool(url, min_size=2, max_size=int(os.environ.get("DB_POOL_SIZE", "10")), open=True)
    return _pool


@app.post("/insert", status_code=201)
def insert(body: dict) -> dict:
    with pool().connection() as conn:
        row = conn.execute("INSERT INTO bench_floor (payload) VALUES (%s) RETURNING id", (str(body)[:200],)).fetchone()
    return {"id": row[0]}
