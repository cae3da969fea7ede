// VMBusTestSupport: see docs/ARCHITECTURE.md
