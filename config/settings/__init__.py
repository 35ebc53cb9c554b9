"""Settings: ``base`` holds everything; ``dev``, ``test`` and ``prod`` change what differs."""
