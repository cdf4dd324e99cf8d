"""The ceiling: a bare FastAPI app with one trivial endpoint, served with the same uvicorn
settings as the services. Every result is reported as a ratio to its requests per second."""

from fastapi import FastAPI

app = FastAPI(title="ceiling")


@app.get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}
