# The ivr controller (`ivr serve`): FastAGI for Asterisk, HTTP for USSD/SMS, agents, metrics.
FROM python:3.11-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends espeak-ng sox \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/ivr
COPY pyproject.toml README.md ./
COPY ivr ./ivr
RUN pip install --no-cache-dir .

# config/, dialplan/ and sounds/ are mounted from the repo by compose.yaml
ENV IVR_HOME=/opt/ivr
EXPOSE 4573/tcp 8080/tcp
CMD ["ivr", "serve"]
