# Kannel (bearerbox + smsbox) from Debian's package, configured from config/kannel/.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends kannel \
 && rm -rf /var/lib/apt/lists/*
CMD ["sh", "-c", "bearerbox /etc/kannel/kannel.conf & exec smsbox /etc/kannel/kannel.conf"]
