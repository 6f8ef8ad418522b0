"""ivr: telephony self-service on Asterisk.

Layers (imports only go downwards):
- ``ivr.flow``: menu model, YAML loading/validation, the pure call-flow engine.
- ``ivr.crm``, ``ivr.journey``: customer data, routing rules, journey store, context tokens.
- ``ivr.voice`` (FastAGI/AMI/ARI) and ``ivr.gateway`` (HTTP): drive the engine.
- ``ivr.runtime`` and ``ivr.harness``: tooling for the local Asterisk root and test calls.
- ``ivr.cli``: the ``ivr`` command.
"""

__version__ = "0.1.0"
