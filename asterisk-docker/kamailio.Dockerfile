# The cluster's SIP front: Debian's Kamailio (dispatcher module), configured by
# `ivr kamailio render` from config/kamailio/kamailio.cfg (the kamailio-config service).
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends kamailio \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 5060/udp 5060/tcp
# -DD: stay in the foreground; -E: log to stderr (docker logs)
CMD ["kamailio", "-f", "/etc/kamailio/kamailio.cfg", "-DD", "-E", "-m", "256", "-M", "16"]
