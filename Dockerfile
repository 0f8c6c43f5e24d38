# mfa-whois in a container: one image for every process of the Procfile.
#   docker build -t mfa-whois .
#   docker run --env-file .env -p 8000:8000 mfa-whois                 # web (serve --no-scheduler)
#   docker run --env-file .env mfa-whois mfa-whois clock              # the one scheduler
#   docker run --env-file .env mfa-whois mfa-whois migrate            # before a deploy
# With SQLite instead of PostgreSQL, mount a volume and point DATABASE_URL into it:
#   docker run -v whois-data:/data -e DATABASE_URL=sqlite:////data/mfa-whois.db ... mfa-whois serve

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY phoneindex ./phoneindex
COPY jobs ./jobs
COPY bot ./bot
COPY teams ./teams
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PORT=8000
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --create-home --home-dir /home/whois whois \
    && mkdir /data && chown whois /data
USER whois
WORKDIR /home/whois
EXPOSE 8000
# 200 while the database answers (a stale index is still healthy: it is shown and alerted).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
CMD ["mfa-whois", "serve", "--no-scheduler"]
