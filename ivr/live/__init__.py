"""The live configuration: menu trees and routing rules, validated and swapped whole on reload.

Channels read :meth:`current` through small ports (:class:`ivr.flow.ports.CurrentTree`, a
routing config callable); the serving layer decides when to reload (SIGHUP, ``ivr reload``,
a changed file) and runs the parsing off the event loop (:class:`Reloader`).
"""
