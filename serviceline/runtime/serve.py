"""One service's process: uvicorn's factory builds the service its environment names."""

from fastapi import FastAPI
from pydantic_settings import BaseSettings, SettingsConfigDict

from serviceline.model.lines import current_line


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICELINE_", extra="ignore")

    # the line's service this process runs
    service: str


def create_app() -> FastAPI:
    line = current_line()
    return line.service(ServeSettings().service).create_app(topology=line.topology)
