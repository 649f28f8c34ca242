# One image for every role; the command picks the role (edge run, bridge run, cloud api, ...).
# Build: docker build -t edgecloud:0.1.0 .   (GPU nodes: --build-arg EXTRAS=edge,sync,cloud,gpu)
FROM python:3.11-slim-bookworm
ARG EXTRAS=edge,sync,cloud
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --system --uid 10001 --home /var/lib/edgecloud edgecloud \
 && mkdir -p /var/lib/edgecloud && chown edgecloud /var/lib/edgecloud
WORKDIR /opt/edgecloud
COPY pyproject.toml README.md ./
COPY src ./src
COPY models/bundles ./models/bundles
RUN pip install ".[${EXTRAS}]"
USER 10001
ENTRYPOINT ["edgecloud"]
CMD ["--help"]
