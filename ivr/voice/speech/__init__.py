"""Spoken input: the recogniser port, its Vosk client and server, and listening on a call."""
