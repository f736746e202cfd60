"""Everything that starts or talks to infrastructure: embedded broker and Redis, topic bootstrap."""
