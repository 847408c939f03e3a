# One image for every service of the line: compose gives each container its command and settings.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies (and the build backend) first, read from pyproject.toml: this layer is rebuilt
# only when that file changes, not at every change to the code.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); \
print('\n'.join(p['build-system']['requires'] + p['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt
# the services keep their data in PostgreSQL; the dashboard keeps its drift history in .state
RUN useradd --system --no-create-home serviceline \
    && install --directory --owner serviceline .state

COPY README.md ./
COPY serviceline serviceline
COPY lines lines
RUN pip install --no-deps --no-build-isolation --editable .

USER serviceline
