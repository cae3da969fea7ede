// VMBusGuest: see docs/ARCHITECTURE.md
