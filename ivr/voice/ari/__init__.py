"""The ARI driver: a Stasis application that runs the same engine sessions as FastAGI."""
