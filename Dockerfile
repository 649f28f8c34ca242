# One image for every role; the command picks the role (edge run, bridge run, cloud api, ...).
# Built by `make images` (scripts/images.sh), FROM the project's own Debian bookworm base
# (debootstrap --variant=minbase, docker import): the context is the wheel built from this
# repo (dist/), its dependencies' wheels (wheels/) and the committed model bundles. Nothing
# secret is copied in; no index, no network, no credentials in the build.
#   docker run --rm edgecloud:0.1.0 --help
# GPU nodes: EDGECLOUD_IMAGE_EXTRAS=edge,sync,cloud,gpu make images
ARG BASE=edgecloud-base:bookworm
FROM ${BASE} AS runtime
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/edgecloud/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends python3 ca-certificates >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --home-dir /var/lib/edgecloud edgecloud \
 && mkdir -p /var/lib/edgecloud && chown edgecloud /var/lib/edgecloud

# The dependencies, in their own stage: its venv is copied into the image as one layer that
# stays cached until the set of wheels changes (not at every code change), and the wheel files
# themselves stay out of the image.
FROM runtime AS deps
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
 && python3 -m venv /opt/edgecloud/venv
COPY wheels/ /tmp/wheels/
RUN pip install -q --no-index --no-deps /tmp/wheels/*.whl

FROM runtime
COPY --from=deps /opt/edgecloud/venv /opt/edgecloud/venv
COPY dist/ /tmp/dist/
RUN pip install -q --no-index --no-deps /tmp/dist/*.whl && rm -rf /tmp/dist \
 && edgecloud --help >/dev/null
COPY models/bundles /opt/edgecloud/models/bundles
WORKDIR /var/lib/edgecloud
USER 10001
ENTRYPOINT ["edgecloud"]
CMD ["--help"]
