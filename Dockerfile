# syntax=docker/dockerfile:1
# One image for web, worker and beat. The default command serves the web app with
# gunicorn; docker-compose.yml runs worker and beat with the Procfile's commands.

# The Python of the Nix shell (nixpkgs 26.05: 3.13).
ARG PYTHON_VERSION=3.13

# --- builder: wheels for every dependency ----------------------------------------
FROM python:${PYTHON_VERSION}-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /build
# Only pyproject.toml: this layer and the wheels are rebuilt when the dependencies
# change, not when the source does. The requirements are the project's dependencies
# plus its `prod` extra, i.e. what `pip install '.[prod]'` installs.
COPY pyproject.toml ./
RUN python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["prod"]))' > requirements.txt \
    && pip wheel --wheel-dir /wheels --requirement requirements.txt

# --- final image: the wheels installed, the source, no build tools ------------------
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=config.settings.prod \
    RUN_DIR=/var/lib/conveyor

# The wheels are mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/build,target=/build \
    --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --requirement /build/requirements.txt

# The processes run as an unprivileged user; only RUN_DIR (beat's schedule) is theirs
# to write, the source stays read-only.
RUN groupadd --system --gid 10001 conveyor \
    && useradd --system --uid 10001 --gid conveyor --no-log-init --no-create-home \
       --home-dir /var/lib/conveyor conveyor \
    && install -d -o conveyor -g conveyor /var/lib/conveyor

WORKDIR /app
# The project is run from its source tree (settings locate .run and staticfiles
# relative to it), not installed into site-packages.
COPY . .

# Static files for the admin. Production settings insist on a secret key: this one
# exists only during this step.
RUN SECRET_KEY=collectstatic-only-build-time-placeholder-key ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput

# Numeric, so that runtimes can verify it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 8000
CMD ["gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
