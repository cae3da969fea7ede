// VMBusHost: see docs/ARCHITECTURE.md
