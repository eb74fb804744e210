# Squid 5.7 built with OpenSSL (Debian 12 squid-openssl), for the compose file.
# The configuration is mounted at /etc/squid/squid.conf.
# By digest (see Dockerfile next to this one for how to check or update it).
FROM debian:12.12-slim@sha256:d5d3f9c23164ea16f31852f95bd5959aad1c5e854332fe00f7b3a20fcc9f635c
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends squid-openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 3128
# -N: foreground, so the container runtime supervises Squid itself.
ENTRYPOINT ["squid", "-N", "-f", "/etc/squid/squid.conf"]
