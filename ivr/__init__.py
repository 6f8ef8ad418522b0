"""ivr: telephony self-service on Asterisk.

Layers, highest first; imports only go downwards, and peers on one line never import each
other (checked by import-linter, ``[tool.importlinter]`` in pyproject.toml):

- ``ivr.cli``: the ``ivr`` command.
- ``ivr.serve`` (``ivr serve``: listeners, reload, file watch) | ``ivr.tools`` (simulate, diff, graph).
- ``ivr.composition``: the one place that builds adapters and wires them.
- ``ivr.runtime`` (local Asterisk, Kannel) | ``ivr.harness`` (the call robots).
- Channels and desks: ``ivr.voice`` | ``ivr.ussd`` | ``ivr.sms`` | ``ivr.agent`` | ``ivr.metrics`` | ``ivr.live``.
- Adapters: ``ivr.crm`` (caller-session start, directories, actions) | ``ivr.routing``; below them ``ivr.journey``.
- ``ivr.flow``: the pure engine (menu model, state machine): input in, actions out, no I/O.
- ``ivr.config`` (YAML with line:col, the reader, templates) | ``ivr.settings``; ``ivr.errors``, ``ivr.deadlines``.

See docs/architecture.md.
"""

__version__ = "0.1.0"
