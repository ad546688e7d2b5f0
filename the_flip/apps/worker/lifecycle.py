"""Process-wide state of a running consumer (see consumer.py)."""

import threading

# Set when the consumer is asked to stop (SIGTERM/SIGINT): running transcodes are cancelled
# (ffmpeg killed, video back in line) and no new task is taken.
STOPPING = threading.Event()
# Set when the consumer is recycling (max tasks reached): no new task is taken, the running
# one finishes normally.
DRAINING = threading.Event()
