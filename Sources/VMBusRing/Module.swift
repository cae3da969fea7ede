// VMBusRing: see docs/ARCHITECTURE.md
