"""The pure core of upbit-ws: no asyncio, no clock, no sockets.

Time comes in as ``now`` (seconds, float, from the shell's one clock); the core returns
bytes to send, events and deadlines. A test enforces that nothing here imports asyncio.
"""
