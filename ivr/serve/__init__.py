"""The serving layer: `ivr serve` (app), the HTTP app it mounts the channels on, the live menu trees.

Everything that runs for the life of the controller and watches files or signals lives
here, on top of the composition root; channels see only the ports it implements.
"""
