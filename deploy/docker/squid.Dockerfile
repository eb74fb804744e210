# Squid 5.7 built with OpenSSL (Debian 12 squid-openssl), for the compose file.
# The configuration is mounted at /etc/squid/squid.conf.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends squid-openssl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 3128
# -N: foreground, so the container runtime supervises Squid itself.
ENTRYPOINT ["squid", "-N", "-f", "/etc/squid/squid.conf"]
